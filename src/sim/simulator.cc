// Simulator: the built-in teacher (HTTP plumbing, rate limits and fault injection).
#include "sim/simulator.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>

#include "sim/sim_anthropic.h"
#include "sim/sim_batch.h"
#include "sim/sim_limiter.h"
#include "sim/sim_openai.h"
#include "sim/sim_server.h"

namespace retort {
namespace {

// --answer-style boxed: " The answer is \\boxed{N}." after every untruncated answer, N being the
// last integer of the last user message.
void AppendBoxedAnswers(const SimRequest& r, SimCompletion* c) {
  std::string last_user;
  for (const Message& m : r.messages)
    if (m.role == "user") last_user = m.content;
  size_t end = last_user.find_last_of("0123456789");
  if (end == std::string::npos) return;
  size_t begin = end;
  while (begin > 0 && last_user[begin - 1] >= '0' && last_user[begin - 1] <= '9') --begin;
  if (begin > 0 && last_user[begin - 1] == '-') --begin;
  const std::string n = last_user.substr(begin, end - begin + 1);
  for (SimChoice& ch : c->choices) {
    if (ch.truncated) continue;
    for (const std::string& t : {std::string(" The"), std::string(" answer"), std::string(" is"),
                                " \\boxed{" + n + "}."}) {
      ch.answer_tokens.push_back(t);
      ch.answer += t;
      ++c->completion_tokens;
    }
  }
}

// --answer-style json: {"answer":"<words>","words":N} instead of every untruncated answer.
void JsonAnswers(SimCompletion* c) {
  for (SimChoice& ch : c->choices) {
    if (ch.truncated) continue;
    ch.answer = "{\"answer\":\"" + ch.answer + "\",\"words\":" + std::to_string(ch.answer_tokens.size()) + "}";
    ch.answer_tokens = {ch.answer};
  }
}

}  // namespace

namespace {

enum class Api { kOpenAI, kAnthropic };
enum class Fault { kNone, k5xx, kReset, kTruncate, kMalformed, kHang };

// splitmix64 -> uniform double in [0, 1). Own generator so sequences are identical on
// every standard library.
double NextUniform(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

const char* AnthropicErrorType(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 500: return "api_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return "invalid_request_error";
  }
}

// Sets header `key` to `val`, replacing earlier values (httplib's set_header appends).
void PutHeader(httplib::Response& res, const std::string& key, const std::string& val) {
  res.headers.erase(key);
  res.set_header(key, val);
}

bool IsProbability(double p) { return p >= 0 && p <= 1; }

// The largest chat request body accepted (413 above).
constexpr std::size_t kMaxChatBody = std::size_t{32} << 20;

}  // namespace

Status SimulatorOptions::Validate() const {
  if (host.empty()) return Status::InvalidArgument("host must not be empty");
  if (port < 0 || port > 65535) return Status::InvalidArgument("port must be in 0..65535");
  if (!(latency_ms >= 0) || !(latency_jitter_ms >= 0) || !(token_latency_ms >= 0) || !(hang_ms >= 0)) {
    return Status::InvalidArgument("latencies and hang_ms must be >= 0");
  }
  if (rpm < 0 || tpm < 0 || itpm < 0 || otpm < 0) {
    return Status::InvalidArgument("rpm, tpm, itpm and otpm must be >= 0");
  }
  const std::optional<SimLimitModel> model = ParseSimLimitModel(limit_model);
  if (!model) return Status::InvalidArgument("limit_model must be sliding, bucket or calendar");
  if (!(limit_window_s > 0) || !std::isfinite(limit_window_s) || limit_window_s > 3600) {
    return Status::InvalidArgument("limit_window_s must be in (0, 3600]");
  }
  if (*model == SimLimitModel::kSliding && rpm > 0 && static_cast<double>(rpm) * limit_window_s / 60 < 1) {
    return Status::InvalidArgument("rpm x limit_window_s / 60 must be >= 1: a window must hold a request");
  }
  if (token_count != "max_tokens" && token_count != "actual") {
    return Status::InvalidArgument("token_count must be max_tokens or actual");
  }
  for (double p : {fail_5xx, fail_reset, fail_truncate, fail_malformed, fail_hang}) {
    if (!IsProbability(p)) return Status::InvalidArgument("fault probabilities must be in [0, 1]");
  }
  if (fail_5xx + fail_reset + fail_truncate + fail_malformed + fail_hang > 1.0 + 1e-9) {
    return Status::InvalidArgument("fault probabilities must sum to at most 1");
  }
  if (reasoning != "none" && reasoning != "reasoning" && reasoning != "reasoning_content" &&
      reasoning != "think") {
    return Status::InvalidArgument("reasoning must be none, reasoning, reasoning_content or think");
  }
  if (min_words < 1 || max_words < min_words) {
    return Status::InvalidArgument("need 1 <= min_words <= max_words");
  }
  if (answer_style != "words" && answer_style != "boxed" && answer_style != "json")
    return Status::InvalidArgument("answer_style must be words, boxed or json");
  if (threads < 1 || threads > 4096) return Status::InvalidArgument("threads must be in 1..4096");
  for (const std::string* s : {&fail_status_for_model, &fail_status_for_prompt}) {
    if (s->empty()) continue;
    const bool digits = s->size() == 3 && std::isdigit(static_cast<unsigned char>((*s)[0])) &&
                        std::isdigit(static_cast<unsigned char>((*s)[1])) &&
                        std::isdigit(static_cast<unsigned char>((*s)[2]));
    if (!digits || std::stoi(*s) < 400 || std::stoi(*s) > 599)
      return Status::InvalidArgument(std::string(s == &fail_status_for_model ? "fail_status_for_model"
                                                                            : "fail_status_for_prompt") +
                                     " must be an HTTP status 400..599");
  }
  if (batch_expire_first < 0 || batch_truncate_first < 0 || batch_upload_5xx < 0)
    return Status::InvalidArgument("batch_expire_first, batch_truncate_first and batch_upload_5xx must be >= 0");
  if (!IsProbability(batch_line_error)) return Status::InvalidArgument("batch_line_error must be in [0, 1]");
  if (!(batch_complete_s > 0) || !std::isfinite(batch_complete_s))
    return Status::InvalidArgument("batch_complete_s must be > 0");
  if (!(batch_window_s > 0) || !std::isfinite(batch_window_s))
    return Status::InvalidArgument("batch_window_s must be > 0");
  return Status::OK();
}

std::string SimulatorStatsJson(const SimulatorStats& s) {
  nlohmann::ordered_json j = {
      {"requests", s.requests},
      {"ok", s.ok},
      {"bad_requests", s.bad_requests},
      {"unauthorized", s.unauthorized},
      {"rate_limited", s.rate_limited},
      {"over_limit_requests", s.over_limit_requests},
      {"faults", {{"5xx", s.fault_5xx}, {"reset", s.fault_reset}, {"truncate", s.fault_truncate},
                  {"malformed", s.fault_malformed}, {"hang", s.fault_hang}}},
      {"prompt_tokens", s.prompt_tokens},
      {"completion_tokens", s.completion_tokens},
      {"max_requests_in_any_window", s.max_requests_in_any_window},
      {"max_tokens_in_any_window", s.max_tokens_in_any_window},
      {"max_requests_in_any_second", s.max_requests_in_any_second},
      {"max_tokens_in_any_second", s.max_tokens_in_any_second},
      {"in_flight", s.in_flight},
      {"in_flight_max", s.in_flight_max},
      {"batch_files_uploaded", s.batch_files_uploaded},
      {"batches_created", s.batches_created},
      {"batch_requests", s.batch_requests},
      {"batches_cancelled", s.batches_cancelled},
      {"batch_requests_repeated", s.batch_requests_repeated}};
  return SimDump(j);
}

struct Simulator::Impl {
  static SimLimits LimitsOf(const SimulatorOptions& o) {
    SimLimits l;
    l.rpm = o.rpm;
    l.tpm = o.tpm;
    l.itpm = o.itpm;
    l.otpm = o.otpm;
    l.model = ParseSimLimitModel(o.limit_model).value_or(SimLimitModel::kSliding);
    l.window_ms = static_cast<Millis>(std::llround(o.limit_window_s * 1000));
    return l;
  }

  explicit Impl(const SimulatorOptions& o)
      : opts(o),
        clock(o.clock != nullptr ? o.clock : SystemClock()),
        limiter(LimitsOf(o), clock),
        batches(o, clock, [this](SimBatchApi a, const httplib::Request& q, httplib::Response& r) {
                  return Authorized(a == SimBatchApi::kOpenAI ? Api::kOpenAI : Api::kAnthropic, q, r,
                                    r.get_header_value(a == SimBatchApi::kOpenAI ? "x-request-id" : "request-id"));
                }, [this](SimBatchApi a, const SimRequest& r) { return BatchAnswer(a, r); }),
        fault_state(o.seed),
        latency_state(o.seed ^ 0x6a09e667f3bcc909ULL) {}

  // Counts one chat request in flight for as long as it lives.
  struct InFlight {
    explicit InFlight(Impl* i) : impl(i) {
      const std::int64_t now = ++impl->in_flight;
      std::int64_t prev = impl->in_flight_max.load();
      while (now > prev && !impl->in_flight_max.compare_exchange_weak(prev, now)) {
      }
    }
    ~InFlight() { --impl->in_flight; }
    Impl* impl;
  };

  // Waits `ms` of real time or until Stop(). False when stopping.
  bool Wait(double ms) {
    std::unique_lock<std::mutex> lock(mu);
    if (ms > 0) {
      cv.wait_for(lock, std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000)),
                  [this] { return stopping; });
    }
    return !stopping;
  }

  Fault DrawFault(double* latency) {
    std::lock_guard<std::mutex> lock(rng_mu);
    *latency = opts.latency_ms + opts.latency_jitter_ms * NextUniform(latency_state);
    double u = NextUniform(fault_state);
    const std::pair<double, Fault> table[] = {{opts.fail_5xx, Fault::k5xx},
                                              {opts.fail_reset, Fault::kReset},
                                              {opts.fail_truncate, Fault::kTruncate},
                                              {opts.fail_malformed, Fault::kMalformed},
                                              {opts.fail_hang, Fault::kHang}};
    for (const auto& [p, f] : table) {
      if (u < p) return f;
      u -= p;
    }
    return Fault::kNone;
  }

  // Drops the request's connection: no response reaches the client.
  void Abort(httplib::Response& res) {
    SimHttpServer::AbortSocket(SimHttpServer::CurrentSocket());
    res.status = 503;  // never reaches the client: the socket is shut down
    res.set_header("Connection", "close");
  }

  void SetError(Api api, httplib::Response& res, int status, const std::string& type,
                const std::string& code, const std::string& message, const std::string& rid) {
    res.status = status;
    if (api == Api::kOpenAI) {
      res.set_content(OpenAIErrorBody(message, type, code), "application/json");
    } else {
      res.set_content(AnthropicErrorBody(type, message, rid), "application/json");
    }
  }

  // x-ratelimit-{limit,remaining,reset}-{requests,tokens} (OpenAI: the reset a Go duration) or
  // anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}
  // (an RFC 3339 instant, whole seconds rounded up), for each limited dimension.
  void SetLimitHeaders(Api api, const SimLimitSnapshot& s, httplib::Response& res) {
    auto put = [&](const char* what, const SimLimitState& st) {
      if (st.limit <= 0) return;
      if (api == Api::kOpenAI) {
        PutHeader(res, std::string("x-ratelimit-limit-") + what, std::to_string(st.limit));
        PutHeader(res, std::string("x-ratelimit-remaining-") + what, std::to_string(st.remaining));
        PutHeader(res, std::string("x-ratelimit-reset-") + what, GoDuration(st.reset_ms));
      } else {
        const std::string base = std::string("anthropic-ratelimit-") + what;
        PutHeader(res, base + "-limit", std::to_string(st.limit));
        PutHeader(res, base + "-remaining", std::to_string(st.remaining));
        PutHeader(res, base + "-reset", Rfc3339(s.wall_now_ms + st.reset_ms));
      }
    };
    put("requests", s.requests);
    put("tokens", s.tokens);
    if (api == Api::kAnthropic) {
      put("input-tokens", s.input_tokens);
      put("output-tokens", s.output_tokens);
    }
  }

  std::int64_t LimitNamed(const std::string& name) const {
    if (name == "requests") return opts.rpm;
    if (name == "tokens") return opts.tpm;
    if (name == "input_tokens") return opts.itpm;
    return opts.otpm;
  }

  void RateLimited(Api api, const SimAdmission& a, httplib::Response& res, const std::string& rid) {
    ++rate_limited;
    ++over_limit_requests;
    // A fractional Retry-After (seconds), as both providers' SDKs parse it; OpenAI also sends ms.
    res.set_header("retry-after", DecimalSeconds(std::max<Millis>(1, a.retry_after_ms)));
    if (api == Api::kOpenAI) res.set_header("retry-after-ms", std::to_string(a.retry_after_ms));
    const std::string limit = std::to_string(LimitNamed(a.limit));
    std::string msg = "Rate limit reached for " + a.limit + " (simulated): limit " + limit + " per min.";
    if (a.too_large) msg = "Request too large for " + a.limit + " per min (simulated): limit " + limit + ".";
    if (api == Api::kOpenAI) {
      SetError(api, res, 429, a.limit, "rate_limit_exceeded", msg, rid);
    } else {
      SetError(api, res, 429, "rate_limit_error", "", msg, rid);
    }
  }

  SimulatorStats Snapshot() const {
    SimulatorStats s;
    s.requests = requests;
    s.ok = ok;
    s.bad_requests = bad_requests;
    s.unauthorized = unauthorized;
    s.rate_limited = rate_limited;
    s.over_limit_requests = over_limit_requests;
    s.fault_5xx = fault_5xx;
    s.fault_reset = fault_reset;
    s.fault_truncate = fault_truncate;
    s.fault_malformed = fault_malformed;
    s.fault_hang = fault_hang;
    s.prompt_tokens = prompt_tokens;
    s.completion_tokens = completion_tokens;
    s.max_requests_in_any_window = limiter.MaxRequestsInWindow();
    s.max_tokens_in_any_window = limiter.MaxTokensInWindow();
    s.max_requests_in_any_second = limiter.MaxRequestsInAnySecond();
    s.max_tokens_in_any_second = limiter.MaxTokensInAnySecond();
    s.in_flight = in_flight;
    s.in_flight_max = in_flight_max;
    batches.FillStats(&s);
    return s;
  }

  // The api_key check of every endpoint: false (401 written, counted) for a missing or wrong key.
  bool Authorized(Api api, const httplib::Request& req, httplib::Response& res, const std::string& rid) {
    if (opts.api_key.empty()) return true;
    const std::string want = api == Api::kOpenAI ? "Bearer " + opts.api_key : opts.api_key;
    const std::string got = req.get_header_value(api == Api::kOpenAI ? "Authorization" : "x-api-key");
    if (got == want) return true;
    ++unauthorized;
    SetError(api, res, 401, api == Api::kOpenAI ? "invalid_request_error" : "authentication_error",
             "invalid_api_key", "Incorrect API key provided", rid);
    return false;
  }

  // The completion the chat endpoint generates for `r` (answer style and reasoning included).
  SimCompletion Generate(Api api, const SimRequest& r) const {
    const bool with_reasoning = api == Api::kOpenAI ? opts.reasoning != "none" : r.thinking;
    SimCompletion c = SimGenerate(r, with_reasoning, opts.min_words, opts.max_words);
    if (opts.answer_style == "boxed") AppendBoxedAnswers(r, &c);
    if (opts.answer_style == "json") JsonAnswers(&c);
    return c;
  }

  // A batch request's answer: the non-streaming body the chat endpoint would send.
  SimBatchAnswer BatchAnswer(SimBatchApi api, const SimRequest& r) const {
    const SimCompletion c = Generate(api == SimBatchApi::kOpenAI ? Api::kOpenAI : Api::kAnthropic, r);
    SimBatchAnswer a;
    a.body = api == SimBatchApi::kOpenAI ? OpenAIResponseBody(r, c, opts.reasoning) : AnthropicResponseBody(r, c);
    a.input_tokens = c.prompt_tokens;
    a.output_tokens = c.completion_tokens;
    a.reasoning_tokens = c.reasoning_tokens;
    return a;
  }

  void Respond(Api api, const SimRequest& r, const SimCompletion& c, Fault fault,
               std::shared_ptr<InFlight> flight, httplib::Response& res);
  void Handle(Api api, const httplib::Request& req, httplib::Response& res);

  SimulatorOptions opts;
  Clock* clock;
  SimLimiter limiter;
  SimBatches batches;  // its handlers only run while svr does
  SimHttpServer svr;
  std::thread listener;
  std::atomic<bool> listen_returned{false};
  int port = 0;

  std::mutex stop_mu;    // serialises Stop()
  bool stopped = false;  // GUARDED_BY(stop_mu)
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // GUARDED_BY(mu)

  std::mutex rng_mu;
  std::uint64_t fault_state;    // GUARDED_BY(rng_mu)
  std::uint64_t latency_state;  // GUARDED_BY(rng_mu)

  std::atomic<std::int64_t> next_request_id{1};
  std::atomic<std::int64_t> requests{0}, ok{0}, bad_requests{0}, rate_limited{0},
      over_limit_requests{0}, fault_5xx{0}, fault_reset{0}, fault_truncate{0}, fault_malformed{0},
      fault_hang{0}, unauthorized{0}, prompt_tokens{0}, completion_tokens{0}, in_flight{0}, in_flight_max{0};
};

void Simulator::Impl::Handle(Api api, const httplib::Request& req, httplib::Response& res) {
  auto flight = std::make_shared<InFlight>(this);
  ++requests;
  const std::string rid = "req_sim" + std::to_string(next_request_id++);
  res.set_header(api == Api::kOpenAI ? "x-request-id" : "request-id", rid);
  const std::string invalid = "invalid_request_error";
  if (opts.limit_headers) SetLimitHeaders(api, limiter.Peek(), res);  // replaced after admission
  if (!Authorized(api, req, res, rid)) return;
  if (req.body.size() > kMaxChatBody) {
    ++bad_requests;
    SetError(api, res, 413, api == Api::kOpenAI ? invalid : "request_too_large", "", "request body too large", rid);
    return;
  }
  if (api == Api::kAnthropic && !req.has_header("anthropic-version")) {
    ++bad_requests;
    SetError(api, res, 400, invalid, "", "anthropic-version: header is required", rid);
    return;
  }
  Result<SimRequest> parsed =
      api == Api::kOpenAI ? ParseOpenAIRequest(req.body) : ParseAnthropicRequest(req.body);
  if (!parsed.ok()) {
    ++bad_requests;
    SetError(api, res, 400, invalid, "", parsed.status().message(), rid);
    return;
  }
  const SimRequest& r = parsed.value();
  if (!opts.fail_status_for_model.empty() && r.model == "bad-model") {
    ++bad_requests;
    const int status = std::stoi(opts.fail_status_for_model);
    SetError(api, res, status, api == Api::kOpenAI ? invalid : AnthropicErrorType(status),
             "simulated_failure", "simulated failure for model 'bad-model'", rid);
    return;
  }
  if (!opts.fail_status_for_prompt.empty() &&
      std::any_of(r.messages.begin(), r.messages.end(),
                  [](const Message& m) { return m.content.find("bad-prompt") != std::string::npos; })) {
    ++bad_requests;
    const int status = std::stoi(opts.fail_status_for_prompt);
    SetError(api, res, status, api == Api::kOpenAI ? invalid : AnthropicErrorType(status),
             "simulated_failure", "simulated failure for a prompt containing 'bad-prompt'", rid);
    return;
  }
  const SimCompletion c = Generate(api, r);
  double latency = 0;
  const Fault fault = DrawFault(&latency);
  const bool produces = fault == Fault::kNone || fault == Fault::kTruncate || fault == Fault::kMalformed;
  const std::int64_t produced = produces ? c.completion_tokens : 0;
  std::int64_t charged = produced;
  if (opts.token_count == "max_tokens" && r.max_tokens) {
    charged = *r.max_tokens > INT64_MAX / r.n ? INT64_MAX - c.prompt_tokens : *r.max_tokens * r.n;
  }
  SimCost cost;
  cost.tokens = c.prompt_tokens + charged;
  cost.input = c.prompt_tokens;
  cost.output = charged;
  const SimAdmission a = limiter.Admit(cost);
  if (opts.limit_headers) SetLimitHeaders(api, a.snapshot, res);
  if (!a.admitted) {
    RateLimited(api, a, res, rid);
    return;
  }
  prompt_tokens += c.prompt_tokens;
  if (produces) completion_tokens += c.completion_tokens;
  const bool answered = Wait(latency);
  limiter.SettleOutput(a.ticket, answered ? produced : 0);  // the output is known now
  if (!answered) {
    Abort(res);
    return;
  }
  switch (fault) {
    case Fault::k5xx:
      ++fault_5xx;
      if (api == Api::kOpenAI) {
        SetError(api, res, 500, "server_error", "",
                 "The server had an error while processing your request (simulated).", rid);
      } else {
        SetError(api, res, 529, "overloaded_error", "", "Overloaded", rid);
      }
      return;
    case Fault::kReset:
      ++fault_reset;
      Abort(res);
      return;
    case Fault::kHang:
      ++fault_hang;
      Wait(opts.hang_ms);
      Abort(res);
      return;
    case Fault::kMalformed:
      ++fault_malformed;
      if (r.stream) {
        res.set_content("data: {\"id\": simulated malformed event\n\ndata: [DONE]\n\n", "text/event-stream");
      } else {
        res.set_content("<html><body>simulated malformed response</body></html>", "application/json");
      }
      return;
    case Fault::kTruncate:
      ++fault_truncate;
      [[fallthrough]];
    case Fault::kNone:
      Respond(api, r, c, fault, std::move(flight), res);
      return;
  }
}

void Simulator::Impl::Respond(Api api, const SimRequest& r, const SimCompletion& c, Fault fault,
                              std::shared_ptr<InFlight> flight, httplib::Response& res) {
  const bool truncate = fault == Fault::kTruncate;
  if (!r.stream) {
    auto body = std::make_shared<std::string>(
        api == Api::kOpenAI ? OpenAIResponseBody(r, c, opts.reasoning) : AnthropicResponseBody(r, c));
    if (!truncate) {
      res.set_content(*body, "application/json");
      ++ok;
      return;
    }
    res.set_content_provider(body->size(), "application/json",
                             [body](std::size_t, std::size_t, httplib::DataSink& sink) {
                               sink.write(body->data(), body->size() / 2);
                               return false;  // the connection is closed mid-body
                             });
    return;
  }
  auto events = std::make_shared<std::vector<SimEvent>>(
      api == Api::kOpenAI ? OpenAIStreamEvents(r, c, opts.reasoning) : AnthropicStreamEvents(r, c));
  const std::size_t end = truncate ? events->size() / 2 : events->size();
  auto next = std::make_shared<std::size_t>(0);
  res.set_header("Cache-Control", "no-cache");
  if (opts.close_after_stream) SimHttpServer::CloseAfterResponse();
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, events, next, end, truncate, flight](std::size_t, httplib::DataSink& sink) {
        if (*next >= end) {
          if (truncate) return false;  // cut the stream: no terminating chunk
          sink.done();
          ++ok;
          return true;
        }
        std::string out;
        if (opts.token_latency_ms <= 0) {
          for (; *next < end; ++*next) out += (*events)[*next].text;
        } else {
          const SimEvent& ev = (*events)[*next];
          if (ev.token && !Wait(opts.token_latency_ms)) return false;
          out = ev.text;
          ++*next;
        }
        return sink.write(out.data(), out.size());
      });
}

Simulator::Simulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Simulator::~Simulator() { Stop(); }

int Simulator::port() const { return impl_->port; }

Result<std::unique_ptr<Simulator>> Simulator::Start(const SimulatorOptions& opts) {
  RETORT_RETURN_IF_ERROR(opts.Validate());
  auto impl = std::make_unique<Impl>(opts);
  Impl* p = impl.get();
  SimHttpServer& svr = p->svr;
  const int threads = opts.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  svr.set_tcp_nodelay(true);
  svr.set_keep_alive_max_count(100000);
  svr.set_keep_alive_timeout(60);
  // Batch uploads take up to 256 MiB (plus multipart framing); chat bodies stay at kMaxChatBody.
  svr.set_payload_max_length(SimBatches::kMaxBody + (1u << 20));
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(OpenAIErrorBody("simulator internal error", "server_error", ""), "application/json");
  });
  auto openai = [p](const httplib::Request& req, httplib::Response& res) { p->Handle(Api::kOpenAI, req, res); };
  svr.Post("/v1/chat/completions", openai);
  svr.Post("/chat/completions", openai);
  svr.Post("/v1/messages", [p](const httplib::Request& req, httplib::Response& res) {
    p->Handle(Api::kAnthropic, req, res);
  });
  p->batches.Register(svr);
  svr.Get("/sim/stats", [p](const httplib::Request&, httplib::Response& res) {
    res.set_content(SimulatorStatsJson(p->Snapshot()), "application/json");
  });
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });

  if (opts.port == 0) {
    p->port = svr.bind_to_any_port(opts.host);
    if (p->port <= 0) return Status::IOError("cannot bind " + opts.host + ":0");
  } else {
    if (!svr.bind_to_port(opts.host, opts.port)) {
      return Status::IOError("cannot bind " + opts.host + ":" + std::to_string(opts.port));
    }
    p->port = opts.port;
  }
  if (!svr.WidenListenBacklog()) return Status::IOError("cannot listen on " + opts.host + ":" + std::to_string(p->port));
  p->listener = std::thread([p] {
    p->svr.listen_after_bind();
    p->listen_returned = true;
  });
  // Bounded wait until the accept loop runs (so Stop() can end it).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!svr.is_running() && !p->listen_returned && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::unique_ptr<Simulator> sim(new Simulator(std::move(impl)));
  if (!sim->impl_->svr.is_running()) {
    sim->Stop();
    return Status::IOError("simulator did not start listening");
  }
  return sim;
}

void Simulator::Stop() {
  Impl& p = *impl_;
  std::lock_guard<std::mutex> guard(p.stop_mu);
  if (p.stopped) return;
  p.stopped = true;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.stopping = true;
  }
  p.cv.notify_all();
  // Wake idle keep-alive and reading workers, then end the accept loop.
  p.svr.DropConnections();
  p.svr.stop();
  if (p.listener.joinable()) p.listener.join();
}

SimulatorStats Simulator::Stats() const { return impl_->Snapshot(); }

}  // namespace retort
