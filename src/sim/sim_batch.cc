// SimBatches: the simulator's OpenAI Batch API and Anthropic Message Batches.
#include "sim/sim_batch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

#include "sim/sim_anthropic.h"
#include "sim/sim_openai.h"
#include "sim/sim_wire.h"

namespace retort {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::size_t kMaxOpenAILines = 50000;
constexpr std::size_t kMaxAnthropicRequests = 100000;
constexpr std::size_t kMaxReportedErrors = 100;

int Idx(SimBatchApi api) { return api == SimBatchApi::kOpenAI ? 0 : 1; }

// splitmix64's finaliser: a bijection, so distinct inputs give distinct ids.
std::uint64_t Mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t Fnv1a(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string Hex16(std::uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// "2024-08-20T18:37:24.100000Z": RFC 3339 UTC with microseconds.
std::string Rfc3339Micros(Millis wall_ms) {
  const std::time_t secs = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03lld000Z", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(wall_ms % 1000));
  return buf;
}

void OpenAIError(httplib::Response& res, int status, const std::string& message,
                 const std::string& type = "invalid_request_error", const std::string& code = "",
                 const std::string& param = "") {
  res.status = status;
  res.set_content(OpenAIErrorBody(message, type, code, param), "application/json");
}

const char* AnthropicType(int status) {
  switch (status) {
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 500: return "api_error";
    case 503: return "overloaded_error";
    default: return "invalid_request_error";
  }
}

// Serves `body` without copying it (it can be hundreds of MiB).
void ServeShared(httplib::Response& res, std::shared_ptr<const std::string> body, const char* type) {
  if (body->empty()) {  // httplib 0.11 takes a provider of length 0 for "length unknown" and spins on it
    res.set_content("", type);
    return;
  }
  res.set_content_provider(body->size(), type,
                           [body](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                             return sink.write(body->data() + offset, length);
                           });
}

bool SimulatedFailure(const SimulatorOptions& o, const SimRequest& r, int* status, std::string* msg) {
  if (!o.fail_status_for_model.empty() && r.model == "bad-model") {
    *status = std::stoi(o.fail_status_for_model);
    *msg = "simulated failure for model 'bad-model'";
    return true;
  }
  if (!o.fail_status_for_prompt.empty() &&
      std::any_of(r.messages.begin(), r.messages.end(),
                  [](const Message& m) { return m.content.find("bad-prompt") != std::string::npos; })) {
    *status = std::stoi(o.fail_status_for_prompt);
    *msg = "simulated failure for a prompt containing 'bad-prompt'";
    return true;
  }
  return false;
}

// Parses ?limit= in [1, hi] (default 20). False (400 written by the caller) when bad.
bool ParseLimit(const httplib::Request& req, int hi, int* limit) {
  *limit = 20;
  if (!req.has_param("limit")) return true;
  const std::string s = req.get_param_value("limit");
  if (s.empty() || s.size() > 7 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *limit = std::stoi(s);
  return *limit >= 1 && *limit <= hi;
}

}  // namespace

struct SimBatches::File {
  std::string id, filename, purpose;
  Millis created_wall = 0;
  std::shared_ptr<const std::string> content;

  std::string Json() const {
    return SimDump(ojson{{"id", id},
                         {"object", "file"},
                         {"bytes", content->size()},
                         {"created_at", created_wall / 1000},
                         {"filename", filename},
                         {"purpose", purpose}});
  }
};

// One request of a batch; what it will give when processed is fixed at creation.
struct BatchItem {
  enum class Outcome { kAnswer, kHttpError, kInvalid, kLineError };
  std::string custom_id;
  SimRequest req;
  Outcome outcome = Outcome::kAnswer;
  int status = 200;
  std::string message;
  bool ok() const { return outcome == Outcome::kAnswer; }
};

enum class End { kCompleted, kFailed, kExpired, kCancelled };

struct SimBatches::Batch {
  SimBatchApi api = SimBatchApi::kOpenAI;
  std::string id;
  std::int64_t ordinal = 0;  // creation ordinal over both APIs, from 0
  Millis created_mono = 0, created_wall = 0;
  double complete_ms = 0, window_ms = 0;
  bool expire_first = false;
  // OpenAI only.
  std::string input_file_id, endpoint, completion_window, model;
  ojson metadata;             // null when absent
  ojson validation_errors;    // array; empty when the file is valid
  std::vector<BatchItem> items;
  std::vector<std::size_t> order;          // processing (and output) order: indices into items
  std::vector<std::int64_t> failed_prefix; // failures among the first k of `order`

  std::mutex mu;
  std::optional<double> cancel_at;  // GUARDED_BY(mu): ms after creation
  bool materialized = false;        // GUARDED_BY(mu); the fields below are set with it
  std::string output_file_id, error_file_id;
  std::int64_t completed = 0, failed = 0;  // OpenAI counts at the end
  std::int64_t succeeded = 0, errored = 0, canceled = 0, expired = 0;  // Anthropic counts at the end
  std::int64_t input_tokens = 0, output_tokens = 0, reasoning_tokens = 0;
  std::shared_ptr<const std::string> results;  // Anthropic results JSONL

  bool valid() const { return validation_errors.empty(); }
  double ValidatingMs() const { return api == SimBatchApi::kOpenAI ? 0.1 * complete_ms : 0; }
  double FinalizingMs() const { return api == SimBatchApi::kOpenAI ? 0.9 * complete_ms : complete_ms; }
  double CancelDelayMs() const { return std::min(300.0, complete_ms / 4); }

  // How the batch ends given the cancel so far: kind, when, and when progress stops.
  struct Plan {
    End kind = End::kCompleted;
    double end_ms = 0, freeze_ms = 0, interrupt_ms = kInf;
  };
  Plan MakePlan() const {
    Plan p;
    if (!valid()) {
      p.kind = End::kFailed;
      p.end_ms = p.freeze_ms = ValidatingMs();
    } else {
      const double expire = std::min(expire_first ? complete_ms / 2 : kInf, window_ms);
      if (expire < complete_ms) {
        p.kind = End::kExpired;
        p.end_ms = p.freeze_ms = p.interrupt_ms = expire;
      } else {
        p.end_ms = p.freeze_ms = complete_ms;
      }
    }
    if (cancel_at) {
      p.kind = End::kCancelled;
      p.freeze_ms = p.interrupt_ms = *cancel_at;
      p.end_ms = *cancel_at + CancelDelayMs();
    }
    return p;
  }
  // Requests done by `t` ms after creation (processing is linear between the two phases).
  std::size_t DoneAt(double t) const {
    if (!valid()) return 0;
    const double from = ValidatingMs(), to = FinalizingMs();
    const double f = std::clamp((t - from) / (to - from), 0.0, 1.0);
    return std::min(items.size(), static_cast<std::size_t>(std::floor(f * static_cast<double>(items.size()) + 1e-9)));
  }
  double Since(Millis now) const { return static_cast<double>(now - created_mono); }
  std::int64_t Unix(double rel_ms) const {
    return (created_wall + static_cast<Millis>(std::llround(rel_ms))) / 1000;
  }
};

SimBatches::SimBatches(const SimulatorOptions& opts, Clock* clock, AuthFn auth, AnswerFn answer)
    : opts_(opts), clock_(clock), auth_(std::move(auth)), answer_(std::move(answer)) {}

SimBatches::~SimBatches() = default;

std::string SimBatches::NextHex() { return Hex16(Mix64(next_hex_++ ^ (opts_.seed * 0x2545f4914f6cdd1dULL))); }

void SimBatches::FillStats(SimulatorStats* s) const {
  s->batch_files_uploaded = files_uploaded_;
  s->batches_created = batches_created_;
  s->batch_requests = batch_requests_;
  s->batches_cancelled = batches_cancelled_;
  s->batch_requests_repeated = requests_repeated_;
}

void SimBatches::Register(httplib::Server& svr) {
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  auto wrap = [this](SimBatchApi api, std::function<void(Req, Res)> f) {
    return [this, api, f](Req req, Res res) {
      const std::string rid = "req_sim" + NextHex();
      res.set_header(api == SimBatchApi::kOpenAI ? "x-request-id" : "request-id", rid);
      if (!auth_(api, req, res)) return;
      f(req, res);
    };
  };
  const auto oa = SimBatchApi::kOpenAI, an = SimBatchApi::kAnthropic;
  svr.Post("/v1/files", wrap(oa, [this](Req q, Res r) { UploadFile(q, r); }));
  svr.Get(R"(/v1/files/([^/]+))", wrap(oa, [this](Req q, Res r) { GetFile(q, r, false); }));
  svr.Get(R"(/v1/files/([^/]+)/content)", wrap(oa, [this](Req q, Res r) { GetFile(q, r, true); }));
  svr.Post("/v1/batches", wrap(oa, [this](Req q, Res r) { CreateOpenAI(q, r); }));
  svr.Get("/v1/batches", wrap(oa, [this](Req q, Res r) { ListBatches(SimBatchApi::kOpenAI, q, r); }));
  svr.Get(R"(/v1/batches/([^/]+))", wrap(oa, [this](Req q, Res r) { GetBatch(SimBatchApi::kOpenAI, q, r); }));
  svr.Post(R"(/v1/batches/([^/]+)/cancel)", wrap(oa, [this](Req q, Res r) { CancelBatch(SimBatchApi::kOpenAI, q, r); }));
  svr.Post("/v1/messages/batches", wrap(an, [this](Req q, Res r) { CreateAnthropic(q, r); }));
  svr.Get("/v1/messages/batches", wrap(an, [this](Req q, Res r) { ListBatches(SimBatchApi::kAnthropic, q, r); }));
  svr.Get(R"(/v1/messages/batches/([^/]+))", wrap(an, [this](Req q, Res r) { GetBatch(SimBatchApi::kAnthropic, q, r); }));
  svr.Post(R"(/v1/messages/batches/([^/]+)/cancel)",
           wrap(an, [this](Req q, Res r) { CancelBatch(SimBatchApi::kAnthropic, q, r); }));
  svr.Get(R"(/v1/messages/batches/([^/]+)/results)", wrap(an, [this](Req q, Res r) { Results(q, r); }));
}

bool SimBatches::UploadFault(SimBatchApi api, httplib::Response& res) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (uploads_seen_++ >= opts_.batch_upload_5xx) return false;
  }
  res.status = 503;
  if (api == SimBatchApi::kOpenAI) {
    res.set_content(OpenAIErrorBody("The server is temporarily unavailable (simulated).", "server_error", ""),
                    "application/json");
  } else {
    res.set_content(AnthropicErrorBody("overloaded_error", "Overloaded (simulated)",
                                       res.get_header_value("request-id")),
                    "application/json");
  }
  return true;
}

// ---- OpenAI files ----------------------------------------------------------------------------

void SimBatches::UploadFile(const httplib::Request& req, httplib::Response& res) {
  if (UploadFault(SimBatchApi::kOpenAI, res)) return;
  if (!req.is_multipart_form_data()) {
    return OpenAIError(res, 400, "POST /v1/files needs a multipart/form-data body");
  }
  if (!req.has_file("purpose") || req.get_file_value("purpose").content != "batch") {
    return OpenAIError(res, 400, "'purpose' must be 'batch'", "invalid_request_error", "invalid_purpose");
  }
  if (!req.has_file("file")) return OpenAIError(res, 400, "'file' is required");
  httplib::MultipartFormData part = req.get_file_value("file");
  if (part.content.size() > kMaxBody) {
    return OpenAIError(res, 413, "File is larger than the 256 MiB the simulator accepts.");
  }
  auto f = std::make_shared<File>();
  f->id = "file-sim" + NextHex();
  f->filename = part.filename;
  f->purpose = "batch";
  f->created_wall = clock_->WallMs();
  f->content = std::make_shared<const std::string>(std::move(part.content));
  {
    std::lock_guard<std::mutex> lock(mu_);
    files_[f->id] = f;
  }
  ++files_uploaded_;
  res.set_content(f->Json(), "application/json");
}

void SimBatches::GetFile(const httplib::Request& req, httplib::Response& res, bool content) {
  std::shared_ptr<const File> f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(req.matches[1]);
    if (it != files_.end()) f = it->second;
  }
  if (!f) return OpenAIError(res, 404, "No such File object: " + std::string(req.matches[1]));
  if (!content) return res.set_content(f->Json(), "application/json");
  ServeShared(res, f->content, "application/octet-stream");
}

// ---- creation --------------------------------------------------------------------------------

void SimBatches::Add(const std::shared_ptr<Batch>& b) {
  std::lock_guard<std::mutex> lock(mu_);
  b->ordinal = next_ordinal_++;
  b->expire_first = b->ordinal < opts_.batch_expire_first;
  b->id = (b->api == SimBatchApi::kOpenAI ? "batch_sim" : "msgbatch_sim") + NextHex();
  b->created_mono = clock_->NowMs();
  b->created_wall = clock_->WallMs();
  b->complete_ms = opts_.batch_complete_s * 1000;
  b->window_ms = opts_.batch_window_s * 1000;
  // The processing (= output) order: a seeded shuffle, reversed if it kept the input order.
  const std::size_t n = b->items.size();
  b->order.resize(n);
  for (std::size_t i = 0; i < n; ++i) b->order[i] = i;
  std::uint64_t st = Mix64(opts_.seed ^ Mix64(static_cast<std::uint64_t>(b->ordinal)));
  for (std::size_t i = n; i > 1; --i) {
    st = Mix64(st);
    std::swap(b->order[i - 1], b->order[st % i]);
  }
  if (n > 1 && std::is_sorted(b->order.begin(), b->order.end())) std::reverse(b->order.begin(), b->order.end());
  // Per-request outcomes: line errors are drawn from (seed, creation ordinal, custom_id).
  b->failed_prefix.assign(n + 1, 0);
  for (std::size_t k = 0; k < n; ++k) {
    BatchItem& it = b->items[b->order[k]];
    if (it.ok() && opts_.batch_line_error > 0) {
      const std::uint64_t h = Mix64(opts_.seed ^ Mix64(static_cast<std::uint64_t>(b->ordinal) + 0x51ed27) ^
                                    Mix64(Fnv1a(it.custom_id)));
      if (static_cast<double>(h >> 11) * 0x1.0p-53 < opts_.batch_line_error) {
        it.outcome = BatchItem::Outcome::kLineError;
        it.status = 500;
        it.message = "The server had an error while processing your request (simulated).";
      }
    }
    b->failed_prefix[k + 1] = b->failed_prefix[k] + (it.ok() ? 0 : 1);
  }
  batches_[b->id] = b;
  order_[Idx(b->api)].push_back(b);
  ++batches_created_;
  if (b->valid()) batch_requests_ += static_cast<std::int64_t>(n);
}

void SimBatches::CreateOpenAI(const httplib::Request& req, httplib::Response& res) {
  const json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return OpenAIError(res, 400, "request body must be a JSON object");
  for (const char* k : {"input_file_id", "endpoint", "completion_window"}) {
    if (!body.contains(k) || !body[k].is_string()) {
      return OpenAIError(res, 400, std::string("'") + k + "' is required and must be a string", "invalid_request_error",
                         "", k);
    }
  }
  auto b = std::make_shared<Batch>();
  b->api = SimBatchApi::kOpenAI;
  b->input_file_id = body["input_file_id"].get<std::string>();
  b->endpoint = body["endpoint"].get<std::string>();
  b->completion_window = body["completion_window"].get<std::string>();
  if (b->endpoint != "/v1/chat/completions") {
    return OpenAIError(res, 400, "'endpoint' must be /v1/chat/completions (the only endpoint the simulator batches)");
  }
  if (b->completion_window != "24h") return OpenAIError(res, 400, "'completion_window' must be '24h'");
  auto md = body.find("metadata");
  if (md != body.end() && !md->is_null()) {
    bool ok = md->is_object() && md->size() <= 16;
    if (ok) {
      for (const auto& [k, v] : md->items()) ok = ok && v.is_string();
    }
    if (!ok) return OpenAIError(res, 400, "'metadata' must be an object of at most 16 string values");
    b->metadata = ojson::parse(md->dump());
  }
  std::shared_ptr<const File> f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(b->input_file_id);
    if (it != files_.end() && it->second->purpose == "batch") f = it->second;
  }
  if (!f) return OpenAIError(res, 404, "No such File object: " + b->input_file_id);

  // Validate the file now; a bad file turns the batch `failed` after the validating phase.
  b->validation_errors = ojson::array();
  auto fail = [&](const char* code, const std::string& msg, std::size_t line) {
    if (b->validation_errors.size() < kMaxReportedErrors) {
      b->validation_errors.push_back({{"code", code}, {"message", msg}, {"param", nullptr}, {"line", line}});
    }
  };
  const std::string& text = *f->content;
  std::unordered_set<std::string> ids;
  std::size_t line = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view sv(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (!sv.empty() && sv.back() == '\r') sv.remove_suffix(1);
    if (line > kMaxOpenAILines) {
      fail("too_many_requests", "The input file has more than 50000 requests.", line);
      break;
    }
    const json j = json::parse(sv, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      fail("invalid_json_line", "This line is not a JSON object.", line);
      continue;
    }
    auto cid = j.find("custom_id");
    if (cid == j.end() || !cid->is_string()) {
      fail("missing_custom_id", "'custom_id' must be a string.", line);
      continue;
    }
    if (!ids.insert(cid->get<std::string>()).second) {
      fail("duplicate_custom_id", "The custom_id '" + cid->get<std::string>() + "' is not unique in the file.", line);
      continue;
    }
    auto method = j.find("method");
    if (method == j.end() || *method != "POST") {
      fail("invalid_method", "'method' must be 'POST'.", line);
      continue;
    }
    auto url = j.find("url");
    if (url == j.end() || !url->is_string() || *url != b->endpoint) {
      fail("invalid_url", "'url' must be the batch's endpoint " + b->endpoint + ".", line);
      continue;
    }
    auto rb = j.find("body");
    if (rb == j.end() || !rb->is_object()) {
      fail("invalid_body", "'body' must be an object.", line);
      continue;
    }
    Result<SimRequest> r = ParseOpenAIRequest(rb->dump());
    if (!r.ok()) {
      fail("invalid_body", r.status().message(), line);
      continue;
    }
    if (b->model.empty()) b->model = r.value().model;
    if (r.value().model != b->model) {
      fail("mismatched_model", "Every request of a batch must use the same model (" + b->model + ").", line);
      continue;
    }
    BatchItem item;
    item.custom_id = cid->get<std::string>();
    item.req = std::move(r.value());
    int status = 0;
    if (SimulatedFailure(opts_, item.req, &status, &item.message)) {
      item.outcome = BatchItem::Outcome::kHttpError;
      item.status = status;
    }
    b->items.push_back(std::move(item));
  }
  if (line == 0) fail("empty_file", "The input file has no requests.", 0);
  if (!b->valid()) b->items.clear();
  Add(b);
  std::lock_guard<std::mutex> lock(b->mu);
  res.set_content(Render(*b, b->created_mono, req), "application/json");
}

void SimBatches::CreateAnthropic(const httplib::Request& req, httplib::Response& res) {
  const std::string rid = res.get_header_value("request-id");
  auto bad = [&](int status, const std::string& msg) {
    res.status = status;
    res.set_content(AnthropicErrorBody(AnthropicType(status), msg, rid), "application/json");
  };
  if (UploadFault(SimBatchApi::kAnthropic, res)) return;
  if (req.body.size() > kMaxBody) return bad(413, "Request exceeds the maximum size of 256 MiB.");
  const json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return bad(400, "request body is not a JSON object");
  auto reqs = body.find("requests");
  if (reqs == body.end() || !reqs->is_array()) return bad(400, "requests: Field required (an array)");
  if (reqs->empty()) return bad(400, "requests: must not be empty");
  if (reqs->size() > kMaxAnthropicRequests) return bad(400, "requests: at most 100000 requests per batch");
  static const std::regex kId("^[a-zA-Z0-9_-]{1,64}$");
  auto b = std::make_shared<Batch>();
  b->api = SimBatchApi::kAnthropic;
  b->validation_errors = ojson::array();
  std::unordered_set<std::string> ids;
  for (std::size_t i = 0; i < reqs->size(); ++i) {
    const json& r = (*reqs)[i];
    const std::string where = "requests." + std::to_string(i);
    if (!r.is_object()) return bad(400, where + ": must be an object");
    auto cid = r.find("custom_id");
    if (cid == r.end() || !cid->is_string() || !std::regex_match(cid->get<std::string>(), kId)) {
      return bad(400, where + ".custom_id: must match ^[a-zA-Z0-9_-]{1,64}$");
    }
    if (!ids.insert(cid->get<std::string>()).second) {
      return bad(400, where + ".custom_id: duplicate custom_id '" + cid->get<std::string>() + "'");
    }
    auto params = r.find("params");
    if (params == r.end() || !params->is_object()) return bad(400, where + ".params: must be an object");
    BatchItem item;
    item.custom_id = cid->get<std::string>();
    // Params are validated "asynchronously": a bad one becomes an errored result.
    Result<SimRequest> parsed = ParseAnthropicRequest(params->dump());
    if (!parsed.ok()) {
      item.outcome = BatchItem::Outcome::kInvalid;
      item.status = 400;
      item.message = parsed.status().message();
    } else {
      item.req = std::move(parsed.value());
      int status = 0;
      if (SimulatedFailure(opts_, item.req, &status, &item.message)) {
        item.outcome = BatchItem::Outcome::kHttpError;
        item.status = status;
      }
    }
    b->items.push_back(std::move(item));
  }
  Add(b);
  std::lock_guard<std::mutex> lock(b->mu);
  res.set_content(Render(*b, b->created_mono, req), "application/json");
}

// ---- state -----------------------------------------------------------------------------------

void SimBatches::Materialize(Batch& b) {
  b.materialized = true;
  const Batch::Plan plan = b.MakePlan();
  if (plan.kind == End::kFailed) return;
  const std::size_t done = b.DoneAt(plan.freeze_ms);
  const bool openai = b.api == SimBatchApi::kOpenAI;
  std::string out, err;
  std::vector<std::string> ok_ids;
  for (std::size_t k = 0; k < b.order.size(); ++k) {
    const BatchItem& it = b.items[b.order[k]];
    const std::string cid = SimDump(ojson(it.custom_id));
    if (k < done && it.ok()) {
      const SimBatchAnswer a = answer_(b.api, it.req);
      ok_ids.push_back(it.custom_id);
      b.input_tokens += a.input_tokens;
      b.output_tokens += a.output_tokens;
      b.reasoning_tokens += a.reasoning_tokens;
      if (openai) {
        ++b.completed;
        out += "{\"id\":\"batch_req_" + NextHex() + "\",\"custom_id\":" + cid +
               ",\"response\":{\"status_code\":200,\"request_id\":\"req_" + NextHex() + "\",\"body\":" + a.body +
               "},\"error\":null}\n";
      } else {
        ++b.succeeded;
        out += "{\"custom_id\":" + cid + ",\"result\":{\"type\":\"succeeded\",\"message\":" + a.body + "}}\n";
      }
    } else if (k < done) {
      const bool retryable = it.outcome == BatchItem::Outcome::kLineError;
      if (openai) {
        ++b.failed;
        const std::string ebody = retryable ? OpenAIErrorBody(it.message, "server_error", "")
                                            : OpenAIErrorBody(it.message, "invalid_request_error", "simulated_failure");
        err += "{\"id\":\"batch_req_" + NextHex() + "\",\"custom_id\":" + cid + ",\"response\":{\"status_code\":" +
               std::to_string(it.status) + ",\"request_id\":\"req_" + NextHex() + "\",\"body\":" + ebody +
               "},\"error\":null}\n";
      } else {
        ++b.errored;
        out += "{\"custom_id\":" + cid + ",\"result\":{\"type\":\"errored\",\"error\":" +
               AnthropicErrorBody(retryable ? "api_error" : "invalid_request_error", it.message,
                                  "req_sim" + NextHex()) +
               "}}\n";
      }
    } else {
      const bool cancelled = plan.kind == End::kCancelled;
      if (openai) {
        err += "{\"id\":\"batch_req_" + NextHex() + "\",\"custom_id\":" + cid + ",\"response\":null,\"error\":" +
               (cancelled ? "{\"code\":\"batch_cancelled\",\"message\":\"This request was cancelled before it was "
                            "executed.\"}"
                          : "{\"code\":\"batch_expired\",\"message\":\"This request could not be executed before the "
                            "completion window expired.\"}") +
               "}\n";
      } else {
        ++(cancelled ? b.canceled : b.expired);
        out += "{\"custom_id\":" + cid + ",\"result\":{\"type\":\"" + (cancelled ? "canceled" : "expired") + "\"}}\n";
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : ok_ids) {
    if (!succeeded_[Idx(b.api)].insert(id).second) ++requests_repeated_;
  }
  if (!out.empty() && truncated_ < opts_.batch_truncate_first) {
    ++truncated_;
    std::size_t cut = out.size() / 2;
    if (cut > 0 && out[cut - 1] == '\n') ++cut;  // in the middle of a line, never at its end
    out.resize(cut);
  }
  if (!openai) {
    b.results = std::make_shared<const std::string>(std::move(out));
    return;
  }
  auto add = [&](std::string content, const char* suffix) {
    auto f = std::make_shared<File>();
    f->id = "file-sim" + NextHex();
    f->filename = b.id + suffix;
    f->purpose = "batch_output";
    f->created_wall = b.created_wall + static_cast<Millis>(std::llround(plan.end_ms));
    f->content = std::make_shared<const std::string>(std::move(content));
    files_[f->id] = f;
    return f->id;
  };
  b.output_file_id = add(std::move(out), "_output.jsonl");
  if (!err.empty()) b.error_file_id = add(std::move(err), "_error.jsonl");
}

std::string SimBatches::Render(Batch& b, Millis now, const httplib::Request& req) {
  const double t = b.Since(now);
  const Batch::Plan plan = b.MakePlan();
  const bool ended = t >= plan.end_ms;
  if (ended && !b.materialized) Materialize(b);
  const bool cancelling = b.cancel_at && t >= *b.cancel_at;
  const std::size_t done = b.DoneAt(std::min(t, plan.freeze_ms));
  const std::int64_t total = static_cast<std::int64_t>(b.items.size());
  auto at = [&](bool set, double rel) { return set ? ojson(b.Unix(rel)) : ojson(nullptr); };

  if (b.api == SimBatchApi::kAnthropic) {
    const char* status = ended ? "ended" : cancelling ? "canceling" : "in_progress";
    ojson counts = {{"processing", ended ? 0 : total}, {"succeeded", ended ? b.succeeded : 0},
                    {"errored", ended ? b.errored : 0}, {"canceled", ended ? b.canceled : 0},
                    {"expired", ended ? b.expired : 0}};
    std::string host = req.get_header_value("Host");
    if (host.empty()) host = req.local_addr + ":" + std::to_string(req.local_port);
    ojson j = {{"id", b.id},
               {"type", "message_batch"},
               {"processing_status", status},
               {"request_counts", std::move(counts)},
               {"ended_at", ended ? ojson(Rfc3339Micros(b.created_wall + std::llround(plan.end_ms))) : ojson(nullptr)},
               {"created_at", Rfc3339Micros(b.created_wall)},
               {"expires_at", Rfc3339Micros(b.created_wall + std::llround(b.window_ms))},
               {"cancel_initiated_at",
                cancelling ? ojson(Rfc3339Micros(b.created_wall + std::llround(*b.cancel_at))) : ojson(nullptr)},
               {"archived_at", nullptr},
               {"results_url", ended ? ojson("http://" + host + "/v1/messages/batches/" + b.id + "/results")
                                     : ojson(nullptr)}};
    return SimDump(j);
  }

  const char* status;
  if (ended) {
    status = plan.kind == End::kCompleted ? "completed"
             : plan.kind == End::kFailed  ? "failed"
             : plan.kind == End::kExpired ? "expired"
                                          : "cancelled";
  } else if (cancelling) {
    status = "cancelling";
  } else if (!b.valid() || t < b.ValidatingMs()) {
    status = "validating";
  } else {
    status = t < b.FinalizingMs() ? "in_progress" : "finalizing";
  }
  const double ran = std::min(t, plan.interrupt_ms);
  std::int64_t completed = 0, failed = 0;
  if (ended) {
    completed = b.completed;
    failed = b.failed;
  } else {
    failed = b.failed_prefix.empty() ? 0 : b.failed_prefix[done];
    completed = static_cast<std::int64_t>(done) - failed;
  }
  ojson usage = {{"input_tokens", b.input_tokens},
                 {"input_tokens_details", {{"cached_tokens", 0}}},
                 {"output_tokens", b.output_tokens},
                 {"output_tokens_details", {{"reasoning_tokens", b.reasoning_tokens}}},
                 {"total_tokens", b.input_tokens + b.output_tokens}};
  ojson j = {
      {"id", b.id},
      {"object", "batch"},
      {"endpoint", b.endpoint},
      {"model", b.model.empty() ? ojson(nullptr) : ojson(b.model)},
      {"errors", b.valid() ? ojson(nullptr) : ojson{{"object", "list"}, {"data", b.validation_errors}}},
      {"input_file_id", b.input_file_id},
      {"completion_window", b.completion_window},
      {"status", status},
      {"output_file_id", ended && !b.output_file_id.empty() ? ojson(b.output_file_id) : ojson(nullptr)},
      {"error_file_id", ended && !b.error_file_id.empty() ? ojson(b.error_file_id) : ojson(nullptr)},
      {"created_at", b.created_wall / 1000},
      {"in_progress_at", at(b.valid() && ran >= b.ValidatingMs(), b.ValidatingMs())},
      {"expires_at", b.Unix(b.window_ms)},
      {"finalizing_at", at(b.valid() && ran >= b.FinalizingMs(), b.FinalizingMs())},
      {"completed_at", at(ended && plan.kind == End::kCompleted, plan.end_ms)},
      {"failed_at", at(ended && plan.kind == End::kFailed, plan.end_ms)},
      {"expired_at", at(ended && plan.kind == End::kExpired, plan.end_ms)},
      {"cancelling_at", at(cancelling, b.cancel_at.value_or(0))},
      {"cancelled_at", at(ended && plan.kind == End::kCancelled, plan.end_ms)},
      {"request_counts", {{"total", total}, {"completed", completed}, {"failed", failed}}},
      {"usage", std::move(usage)},
      {"metadata", b.metadata}};
  return SimDump(j);
}

// ---- poll, list, cancel, results -------------------------------------------------------------

std::shared_ptr<SimBatches::Batch> SimBatches::Find(SimBatchApi api, const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = batches_.find(id);
  if (it == batches_.end() || it->second->api != api) return nullptr;
  return it->second;
}

namespace {
void NotFound(SimBatchApi api, httplib::Response& res, const std::string& id) {
  if (api == SimBatchApi::kOpenAI) return OpenAIError(res, 404, "No batch found with id '" + id + "'.");
  res.status = 404;
  res.set_content(AnthropicErrorBody("not_found_error", "No batch found with id '" + id + "'.",
                                     res.get_header_value("request-id")),
                  "application/json");
}
}  // namespace

void SimBatches::GetBatch(SimBatchApi api, const httplib::Request& req, httplib::Response& res) {
  std::shared_ptr<Batch> b = Find(api, req.matches[1]);
  if (!b) return NotFound(api, res, req.matches[1]);
  std::lock_guard<std::mutex> lock(b->mu);
  res.set_content(Render(*b, clock_->NowMs(), req), "application/json");
}

void SimBatches::CancelBatch(SimBatchApi api, const httplib::Request& req, httplib::Response& res) {
  std::shared_ptr<Batch> b = Find(api, req.matches[1]);
  if (!b) return NotFound(api, res, req.matches[1]);
  std::lock_guard<std::mutex> lock(b->mu);
  const Millis now = clock_->NowMs();
  const double t = b->Since(now);
  if (t >= b->MakePlan().end_ms) {
    Render(*b, now, req);  // materialises the output if this is the first look at the end
    const std::string msg = "Batch " + b->id + " has already ended and cannot be cancelled.";
    if (api == SimBatchApi::kOpenAI) return OpenAIError(res, 409, msg);
    res.status = 409;
    res.set_content(AnthropicErrorBody("invalid_request_error", msg, res.get_header_value("request-id")),
                    "application/json");
    return;
  }
  if (!b->cancel_at) {
    b->cancel_at = t;
    ++batches_cancelled_;
  }
  res.set_content(Render(*b, now, req), "application/json");
}

void SimBatches::ListBatches(SimBatchApi api, const httplib::Request& req, httplib::Response& res) {
  const bool openai = api == SimBatchApi::kOpenAI;
  int limit = 20;
  const std::string rid = res.get_header_value("request-id");
  auto bad = [&](const std::string& msg) {
    if (openai) return OpenAIError(res, 400, msg);
    res.status = 400;
    res.set_content(AnthropicErrorBody("invalid_request_error", msg, rid), "application/json");
  };
  if (!ParseLimit(req, openai ? 100 : 1000, &limit)) {
    return bad(openai ? "'limit' must be an integer in 1..100" : "limit: must be an integer in 1..1000");
  }
  const std::string after = req.get_param_value(openai ? "after" : "after_id");
  const std::string before = openai ? "" : req.get_param_value("before_id");
  if (!after.empty() && !before.empty()) return bad("after_id and before_id are mutually exclusive");
  std::vector<std::shared_ptr<Batch>> all;  // newest first
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.assign(order_[Idx(api)].rbegin(), order_[Idx(api)].rend());
  }
  auto pos = [&](const std::string& id) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < all.size(); ++i)
      if (all[i]->id == id) return i;
    return std::nullopt;
  };
  std::size_t from = 0, to = all.size();
  bool has_more = false;
  if (!before.empty()) {
    const auto p = pos(before);
    if (!p) return bad("before_id: unknown batch id '" + before + "'");
    to = *p;
    from = to > static_cast<std::size_t>(limit) ? to - limit : 0;
    has_more = from > 0;
  } else {
    if (!after.empty()) {
      const auto p = pos(after);
      if (!p) return bad(std::string(openai ? "after" : "after_id") + ": unknown batch id '" + after + "'");
      from = *p + 1;
    }
    to = std::min(all.size(), from + static_cast<std::size_t>(limit));
    has_more = to < all.size();
  }
  const Millis now = clock_->NowMs();
  std::string data = "[";
  for (std::size_t i = from; i < to; ++i) {
    std::lock_guard<std::mutex> lock(all[i]->mu);
    if (i > from) data += ",";
    data += Render(*all[i], now, req);
  }
  data += "]";
  const std::string first = from < to ? SimDump(ojson(all[from]->id)) : "null";
  const std::string last = from < to ? SimDump(ojson(all[to - 1]->id)) : "null";
  const std::string more = has_more ? "true" : "false";
  if (openai) {
    res.set_content("{\"object\":\"list\",\"data\":" + data + ",\"first_id\":" + first + ",\"last_id\":" + last +
                        ",\"has_more\":" + more + "}",
                    "application/json");
  } else {
    res.set_content("{\"data\":" + data + ",\"has_more\":" + more + ",\"first_id\":" + first + ",\"last_id\":" + last +
                        "}",
                    "application/json");
  }
}

void SimBatches::Results(const httplib::Request& req, httplib::Response& res) {
  std::shared_ptr<Batch> b = Find(SimBatchApi::kAnthropic, req.matches[1]);
  if (!b) return NotFound(SimBatchApi::kAnthropic, res, req.matches[1]);
  std::shared_ptr<const std::string> results;
  {
    std::lock_guard<std::mutex> lock(b->mu);
    Render(*b, clock_->NowMs(), req);
    results = b->results;
  }
  if (!results) {
    res.status = 400;
    res.set_content(AnthropicErrorBody("invalid_request_error",
                                       "Batch " + b->id + " is still processing; results are available once it has ended.",
                                       res.get_header_value("request-id")),
                    "application/json");
    return;
  }
  ServeShared(res, results, "application/binary");
}

}  // namespace retort
