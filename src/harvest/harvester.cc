// Harvester: workers send work items through a replica's limiter and governor to the teacher;
// results go to the single ResultWriter; the JobFeeder keeps the queue full.
#include "retort/harvester.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "harvest/batch_harvester.h"
#include "harvest/concurrency_limiter.h"
#include "harvest/connection_ramp.h"
#include "harvest/job_feeder.h"
#include "harvest/rate_governor.h"
#include "harvest/result_writer.h"
#include "harvest/retry_policy.h"
#include "harvest/run_start.h"
#include "teacher/error_classifier.h"
#include "teacher/http_transport.h"
#include "teacher/provider.h"

namespace retort {

namespace {

constexpr Millis kHeartbeatMs = 2'000;
constexpr std::size_t kMaxErrorBody = 64 * 1024;
// New connections to one replica: the first kConnectionBurst at once, then one per spacing (see
// ConnectionRamp).
constexpr Millis kConnectionSpacingMs = 10;
constexpr int kConnectionBurst = 4;
// Stall check: a request waiting for its first response byte longer than kStallFactor x the
// median of the last kStallSamples answers (and at least kStallMinMs) is stalled.
constexpr std::size_t kStallSamples = 32;
constexpr std::size_t kStallMinSamples = 8;
constexpr double kStallFactor = 8.0;
constexpr double kStallMinMs = 2000.0;
// Fail fast: this many answers that all refuse the same way (one non-retryable status), before
// any success, stop the run as a systematic error; so does any mix of 4x as many refusals.
constexpr int kFailFastRefusals = 5;
// A teacher that never answered and refuses connections for this long stops the run (one that
// answered before is retried for --unreachable-timeout).
constexpr Millis kNeverAnsweredUnreachableMs = 2'000;


// Rough token estimate used to reserve TPM before the real usage is known.
std::int64_t EstimatePromptTokens(const std::vector<Message>& msgs) {
  std::int64_t chars = 0;
  for (const Message& m : msgs) chars += static_cast<std::int64_t>(m.content.size());
  return chars / 4 + 4 * static_cast<std::int64_t>(msgs.size()) + 1;
}

// The host:port part of a URL, never userinfo, path or query.
std::string UrlHost(const std::string& url) {
  size_t s = url.find("://");
  size_t start = s == std::string::npos ? 0 : s + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string host = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  size_t at = host.rfind('@');
  return at == std::string::npos ? host : host.substr(at + 1);
}

// The one line a systematic refusal stops the run with: what was answered, the likely cause and
// the fix. The jobs are all pending, so the fixed command resumes the run.
std::string RefusalMessage(const std::string& base_url, const std::string& host, const std::string& model, int status,
                           int count, const std::string& reason) {
  std::string m = "the teacher at " + host + " refused the first " + std::to_string(count) + " requests alike (" +
                  reason + "): ";
  if (status == 404) {
    const bool v1 = base_url.find("/v1") != std::string::npos;
    m += "the model '" + model + "' may not exist there (check --model" +
         (v1 ? ")" : ", and --base-url, which for openai-chat ends in /v1, e.g. http://127.0.0.1:8000/v1)");
  } else if (status == 400 || status == 422) {
    m += "the request itself is refused: check --model and the generation parameters (--max-tokens, "
         "--temperature, --param ...)";
  } else {
    m += "check --base-url and --provider";
  }
  return m + ". Every job is still pending: fix the option and re-run (a run's model changes only with "
             "--allow-model-change, before any job is done); --no-fail-fast turns this check off";
}

// The one line for a teacher that refused connections before it ever answered.
std::string NeverAnsweredMessage(const std::string& host, Millis for_ms, const std::string& reason) {
  std::string why = "is it running, and is the port in --base-url right?";
  if (reason.find("resolve") != std::string::npos) why = "is the host name in --base-url right?";
  else if (reason.find("TLS") != std::string::npos)
    why = "does it speak https (or plain http), and is its certificate trusted (--ca-file)?";
  return "the teacher at " + host + " has refused every connection for " + std::to_string((for_ms + 500) / 1000) +
         " s and never answered (" + reason + "): " + why +
         " Every job is still pending: fix --base-url and re-run the same command";
}

}  // namespace

enum class ReplicaSignal { kHealthy, kOverloaded, kUnreachable };

// One teacher replica: its own limits and health.
struct Replica {
  std::string base_url;
  std::string host;
  std::unique_ptr<RateGovernor> governor;
  std::unique_ptr<ConcurrencyLimiter> limiter;
  std::unique_ptr<ConnectionRamp> ramp;
  std::mutex mu;
  int consecutive_failures = 0;     // GUARDED_BY(mu): overload failures in a row
  int consecutive_connect_failures = 0;  // GUARDED_BY(mu)
  Millis unreachable_since_ms = 0;  // GUARDED_BY(mu): first connect failure since the last success
  Millis last_ok_ms = 0;            // GUARDED_BY(mu)
  Millis out_until_ms = 0;          // GUARDED_BY(mu): taken out of rotation until then
  Millis cooldown_ms = 0;           // GUARDED_BY(mu)
  bool probing = false;             // GUARDED_BY(mu): one probe request after a cooldown
  std::deque<double> recent_starts; // GUARDED_BY(mu): time to the first response byte of recent answers, ms
  // Connections to close after their current request, so that the server's threads can take
  // up connections it has left waiting (see Harvester::Impl::CheckStalls).
  std::atomic<int> retire{0};
};

struct Harvester::Impl {
  Store* store;
  HarvestOptions opts;
  LogSink* log;
  Clock* clock;
  HarvestObserver* observer;

  std::unique_ptr<BatchHarvester> batch;  // --mode batch: the whole harvest is its

  std::unique_ptr<Provider> provider;
  std::string api_key;
  std::string api_key_env;
  HeaderList headers;
  RunInfo run;
  std::string owner;
  std::vector<std::unique_ptr<Replica>> replicas;
  std::unique_ptr<RetryPolicy> retry;
  std::unique_ptr<ResultWriter> writer;
  std::unique_ptr<JobFeeder> feeder;

  // Stop state.
  std::mutex stop_mu;
  std::condition_variable stop_cv;   // wakes waiters on stop, slot release, governor change, completion
  bool stopping = false;             // GUARDED_BY(stop_mu)
  // Bumped by GovernorChanged() under stop_mu (so a waiter cannot miss it); read lock-free on
  // the request path.
  std::atomic<std::uint64_t> governor_epoch{0};
  int slot_waiters = 0;              // GUARDED_BY(stop_mu): workers in AcquireReplica's wait
  std::atomic<std::uint64_t> releases{0};  // slots released so far (AcquireReplica's lost-wake check)
  bool aborting = false;             // GUARDED_BY(stop_mu)
  std::string stop_reason;           // GUARDED_BY(stop_mu)
  Status stop_status;                // GUARDED_BY(stop_mu): why the run must stop (auth, storage)

  // Requests in flight, for Abort() and the stall check.
  struct LiveRequest {
    HttpTransport* transport;
    Replica* rep;
    bool stalled;  // already counted by CheckStalls
  };
  std::mutex transports_mu;
  std::vector<LiveRequest> live_requests;  // GUARDED_BY(transports_mu)

  // Counters.
  std::atomic<std::int64_t> requests{0}, retries{0}, rate_limited{0}, errors{0}, in_flight{0};
  std::atomic<std::int64_t> done{0}, failed{0}, prompt_tokens{0}, completion_tokens{0}, reasoning_tokens{0};
  std::atomic<std::int64_t> bytes_stored{0};
  std::atomic<std::int64_t> reserved_tokens{0};   // estimates of requests in flight
  std::int64_t total_jobs = 0, done_at_start = 0, failed_at_start = 0;
  std::int64_t tokens_at_start = 0;
  double cost_at_start = 0;
  Millis started_ms = 0;
  // Set (release) once Setup() and the start time are written; Snapshot() reads nothing before it.
  std::atomic<bool> ready{false};
  mutable std::mutex progress_mu;
  mutable std::deque<std::pair<Millis, std::pair<std::int64_t, std::int64_t>>> rate_samples;  // (t, (done, tokens))
  std::mutex last_error_mu;
  std::string last_error;
  std::int64_t reused_at_start = 0;  // jobs of the run filled from other runs' answers

  // Fail fast (see HoldRefusal and OnRetryable).
  std::atomic<bool> answered{false};   // some HTTP response arrived in this harvest
  std::atomic<bool> succeeded{false};  // some request succeeded in this harvest
  std::mutex fail_fast_mu;
  std::map<int, int> refusals;         // GUARDED_BY(fail_fast_mu): HTTP status -> refusals before a success
  int refusals_total = 0;              // GUARDED_BY(fail_fast_mu)
  int fail_fast_threshold = kFailFastRefusals;  // fewer when the run has fewer jobs to do

  Impl(Store* s, HarvestOptions o, LogSink* l, Clock* c, HarvestObserver* obs)
      : store(s), opts(std::move(o)), log(l ? l : NullLogSink()), clock(c ? c : SystemClock()), observer(obs) {}

  void Log(LogLevel level, std::int64_t job, int attempt, std::string msg) {
    log->Write(LogLine{level, opts.run, job, attempt, std::move(msg)});
  }

  bool Stopping() {
    std::lock_guard lk(stop_mu);
    return stopping;
  }

  void RequestStop(const std::string& reason, Status why = Status::OK()) {
    {
      std::lock_guard lk(stop_mu);
      if (!stopping) {
        stopping = true;
        stop_reason = reason;
      }
      if (!why.ok() && stop_status.ok()) stop_status = why;
    }
    stop_cv.notify_all();  // the supervisor in Run() stops the feeder
  }

  // Waits until `deadline_ms` (monotonic) or a stop. Returns false when stopping.
  // Waits until `deadline_ms`, a stop, or a governor change after `epoch` (see GovernorChanged).
  // False when stopping.
  bool WaitUntil(Millis deadline_ms, std::uint64_t epoch) {
    std::unique_lock lk(stop_mu);
    Millis now = clock->NowMs();
    if (deadline_ms > now)
      stop_cv.wait_for(lk, std::chrono::milliseconds(deadline_ms - now),
                       [&] { return stopping || governor_epoch != epoch; });
    return !stopping;
  }
  std::uint64_t GovernorEpoch() const { return governor_epoch.load(); }
  // A governor's probe was reported, or a response gave back part of what its grant reserved:
  // workers refused meanwhile may ask again now (instead of at the retry time they were given).
  void GovernorChanged() {
    {
      std::lock_guard lk(stop_mu);
      ++governor_epoch;
    }
    stop_cv.notify_all();
  }

  double Cost(std::int64_t in, std::int64_t out) const {
    return (static_cast<double>(in) * opts.price_input + static_cast<double>(out) * opts.price_output) / 1e6;
  }

  Status Setup();
  TransportOptions TransportFor(Replica& r);
  // `on_wait` runs (unlocked) before the caller first blocks for a slot: a worker without a
  // slot closes its connections (see CloseConnections).
  Replica* AcquireReplica(const std::function<void()>& on_wait);
  // Returns a slot and reports the outcome. `wake`: wake workers waiting for a slot (false when
  // the caller will try to keep the slot for its next item, see Process).
  void ReleaseReplica(Replica* r, LimiterOutcome outcome, double latency_ms, bool wake = true);
  void WakeSlotWaiters();
  // Gives up a slot a worker kept from its last item (see Process).
  void DropCarried(Replica*& carried);
  void MarkReplica(Replica* r, ReplicaSignal signal);
  bool ReserveBudget(std::int64_t prompt_est, std::int64_t completion_est);
  void Worker();

  // One connection per replica, owned by a worker.
  using Transports = std::vector<std::unique_ptr<HttpTransport>>;
  // One attempt at one work item, as it moves through the stages of Process.
  struct Attempt {
    WorkItem item;
    int number = 0;  // the attempt number of the item's first job (1-based)
    Replica* rep = nullptr;
    std::size_t replica_index = 0;
    ChatRequest req;
    std::int64_t prompt_est = 0, completion_est = 0;
    GovernorGrant grant;  // the governor's grant, handed back when the attempt is reported
    HttpResponse resp;
    std::unique_ptr<StreamAssembler> assembler;  // --stream only
    Status stream_status;
    std::optional<double> first_token_ms;
    Result<ChatResponse> parsed = Status::Corruption("no body");
    Millis wall_now = 0;
    std::int64_t est() const { return prompt_est + completion_est; }
    TokenCost cost() const { return {prompt_est, completion_est}; }
  };
  // A worker with nothing to send closes its connections: an idle keep-alive connection holds
  // a worker thread of thread-per-connection servers (llama.cpp's, cpp-httplib's) that another
  // client's connection may be queued behind.
  static void CloseConnections(Transports& transports) {
    for (auto& t : transports)
      if (t) t->CloseIdle();
  }
  // `carried`: a slot this worker kept from its previous item (used, or dropped when the limit
  // went down), and on return the slot it keeps for the next one.
  void Process(WorkItem item, Transports& transports, Replica*& carried);
  bool Grant(Attempt& a, Transports& transports, Replica*& carried);
  bool Send(Attempt& a, Transports& transports);
  void ParseBody(Attempt& a);
  void OnSuccess(Attempt& a, const RateLimitSnapshot& limits);
  void OnRateLimited(Attempt& a, const Classification& c, const RateLimitSnapshot& limits);
  void OnRetryable(Attempt& a, const Classification& c);
  void OnJobFailed(Attempt& a, const Classification& c);
  bool HoldRefusal(Attempt& a, const Classification& c);
  void OnStopRun(Attempt& a, const Classification& c);
  void Resolve(const WorkItem& item, JobUpdate::Kind kind, int attempts, Millis next_at, const std::string& error,
               int status, const std::string& body);
  void OnCommit(const std::vector<JobUpdate>& batch, const Status& st);
  void CheckStalls();
  HarvestProgress Snapshot() const;
};

Status Harvester::Impl::Setup() {
  RETORT_RETURN_IF_ERROR(opts.Validate());
  Result<std::unique_ptr<Provider>> p = MakeProvider(opts.provider);
  if (!p.ok()) return p.status().WithContext("--provider");
  provider = std::move(*p);
  api_key_env = opts.api_key_env.empty() ? std::string(provider->DefaultApiKeyEnv()) : opts.api_key_env;
  const char* key = std::getenv(api_key_env.c_str());
  api_key = key ? key : "";
  headers = provider->RequestHeaders(api_key);

  for (const std::string& url : opts.base_urls) {
    auto rep = std::make_unique<Replica>();
    rep->base_url = url;
    rep->host = UrlHost(url);
    GovernorOptions g;
    g.rpm = opts.rpm;
    g.tpm = opts.tpm;
    g.itpm = opts.itpm;
    g.otpm = opts.otpm;
    // OpenAI counts max_tokens against the token limit at request time; Anthropic corrects to usage.
    g.tpm_completion = opts.provider == "anthropic-messages" ? CompletionCharge::kActual : CompletionCharge::kReserved;
    rep->governor = std::make_unique<RateGovernor>(g, clock);
    ConcurrencyOptions c;
    c.max = opts.concurrency;
    rep->limiter = std::make_unique<ConcurrencyLimiter>(c, clock);
    rep->ramp = std::make_unique<ConnectionRamp>(kConnectionSpacingMs, kConnectionBurst, clock);
    // Validate the URL (and the proxy and CA settings) now, so a typo fails before anything is sent.
    Result<std::unique_ptr<HttpTransport>> probe = HttpTransport::Create(TransportFor(*rep));
    if (!probe.ok()) return probe.status().WithContext("--base-url");
    if ((*probe)->Route() != "direct")
      Log(LogLevel::kInfo, 0, 0, "connections to the teacher at " + rep->host + " go through the " + (*probe)->Route());
    if (!api_key.empty() && IsCleartextToRemote(url))
      Log(LogLevel::kWarn, 0, 0,
          "the API key from $" + api_key_env + " is sent to " + rep->host +
              " over plain http://: anyone on the network path can read it; use https://");
    replicas.push_back(std::move(rep));
  }
  // The run starts only once the settings above are known to be usable: a typo in the URL, the
  // proxy or the CA file does not create or lock the run.
  Result<RunStart> start = StartRun(store, opts, "");
  if (!start.ok()) return start.status();
  run = start->run;
  owner = start->owner;
  if (start->reset > 0)
    Log(LogLevel::kInfo, 0, 0, std::to_string(start->reset) + " jobs in flight at the last stop returned to pending");
  if (opts.retry_failed)
    Log(LogLevel::kInfo, 0, 0,
        "--retry-failed: " + std::to_string(start->retried) +
            " failed jobs returned to pending (their errors are kept in history)");
  if (start->reused > 0)
    Log(LogLevel::kInfo, 0, 0,
        std::to_string(start->reused) + " jobs filled from identical requests answered by other runs, without a "
                                        "request (--no-reuse sends them)");
  Result<RunTotals> totals = store->Totals(run.id);
  if (!totals.ok()) return totals.status();
  total_jobs = totals->jobs.total();
  done_at_start = totals->jobs.done;
  failed_at_start = totals->jobs.failed;
  reused_at_start = totals->reused;
  fail_fast_threshold =
      static_cast<int>(std::clamp<std::int64_t>(totals->jobs.pending + totals->jobs.leased, 1, kFailFastRefusals));
  tokens_at_start = totals->prompt_tokens + totals->completion_tokens;
  cost_at_start = Cost(totals->prompt_tokens, totals->completion_tokens);
  if (opts.insecure) {
    Log(LogLevel::kWarn, 0, 0,
        "--insecure: the teacher's TLS certificate is not verified; recorded with the run (retort status shows it)");
    RETORT_RETURN_IF_ERROR(store->MarkRunTlsInsecure(run.id));
  }
  RetryOptions ro;
  ro.max_attempts = opts.max_attempts;
  retry = std::make_unique<RetryPolicy>(ro, opts.jitter_seed);
  return Status::OK();
}

TransportOptions Harvester::Impl::TransportFor(Replica& r) {
  TransportOptions t;
  t.base_url = r.base_url;
  t.timeout_s = opts.timeout_s;
  t.idle_timeout_s = opts.idle_timeout_s;
  t.ca_file = opts.ca_file;
  t.insecure = opts.insecure;
  Replica* rep = &r;
  t.before_connect = [this, rep] {
    for (Millis at = rep->ramp->TryOpen(); at != 0; at = rep->ramp->TryOpen()) {
      if (!WaitUntil(at, GovernorEpoch())) return rep->ramp->ForceOpen();  // stopping: no more waiting
    }
  };
  t.after_close = [rep] { rep->ramp->Closed(); };
  return t;
}

// Picks the healthy replica with the most headroom and takes a concurrency slot on it.
// Blocks until one is free; nullptr when stopping.
Replica* Harvester::Impl::AcquireReplica(const std::function<void()>& on_wait) {
  bool closed = false;
  for (;;) {
    const std::uint64_t seen = releases.load();
    Replica* best = nullptr;
    int best_room = -1;
    Millis now = clock->NowMs();
    Millis soonest_back = 0;
    for (auto& r : replicas) {
      {
        std::lock_guard lk(r->mu);
        if (r->out_until_ms > now) {
          soonest_back = soonest_back ? std::min(soonest_back, r->out_until_ms) : r->out_until_ms;
          continue;
        }
        if (r->cooldown_ms > 0 && r->probing) continue;  // one probe at a time while recovering
      }
      int room = r->limiter->limit() - r->limiter->in_flight();
      if (room > best_room) {
        best_room = room;
        best = r.get();
      }
    }
    if (best && best_room > 0 && best->limiter->TryAcquire()) {
      std::lock_guard lk(best->mu);
      if (best->cooldown_ms > 0) best->probing = true;
      return best;
    }
    if (!closed && on_wait) {
      closed = true;
      on_wait();
      continue;  // look again: a slot may have come free meanwhile
    }
    std::unique_lock lk(stop_mu);
    if (stopping) return nullptr;
    if (releases.load() != seen) continue;  // a slot came free since we looked: look again
    Millis wait = 50;
    if (!best && soonest_back) wait = std::max<Millis>(1, soonest_back - now);
    ++slot_waiters;
    stop_cv.wait_for(lk, std::chrono::milliseconds(wait));
    --slot_waiters;
    if (stopping) return nullptr;
  }
}

// Wakes waiters only when someone waits for a slot (or the run is stopping and Run() waits for
// the last requests): a wake-up per request would cost a context switch per request.
void Harvester::Impl::ReleaseReplica(Replica* r, LimiterOutcome outcome, double latency_ms, bool wake) {
  r->limiter->Release(outcome, latency_ms);
  ++releases;
  if (wake) WakeSlotWaiters();
}

void Harvester::Impl::DropCarried(Replica*& carried) {
  if (!carried) return;
  ReleaseReplica(carried, LimiterOutcome::kIgnore, 0);
  carried = nullptr;
}

void Harvester::Impl::WakeSlotWaiters() {
  bool wake;
  {
    std::lock_guard lk(stop_mu);
    wake = slot_waiters > 0 || stopping;
  }
  if (wake) stop_cv.notify_all();
}

// Replica health (a circuit breaker): after 3 consecutive connection failures, or 5 consecutive
// overload failures (5xx, timeouts, resets), a replica is taken out of rotation for a cooldown
// (1 s doubling to 30 s); after the cooldown one probe request decides whether it is back.
// With every replica out, workers wait: an unreachable teacher uses up no job's attempts.
void Harvester::Impl::MarkReplica(Replica* r, ReplicaSignal signal) {
  std::lock_guard lk(r->mu);
  r->probing = false;
  const Millis now = clock->NowMs();
  if (signal == ReplicaSignal::kHealthy) {
    if (r->cooldown_ms > 0) Log(LogLevel::kInfo, 0, 0, "teacher " + r->host + " is reachable again");
    r->consecutive_failures = 0;
    r->consecutive_connect_failures = 0;
    r->cooldown_ms = 0;
    r->unreachable_since_ms = 0;
    r->last_ok_ms = now;
    return;
  }
  if (signal == ReplicaSignal::kUnreachable) {
    ++r->consecutive_connect_failures;
    if (!r->unreachable_since_ms) r->unreachable_since_ms = now;
  } else {
    ++r->consecutive_failures;
  }
  if (r->out_until_ms > now) return;  // already out: requests sent before the cooldown began
  if (r->consecutive_connect_failures >= 3 || r->consecutive_failures >= 5 || r->cooldown_ms > 0) {
    r->cooldown_ms = r->cooldown_ms ? std::min<Millis>(r->cooldown_ms * 2, 30'000) : 1'000;
    r->out_until_ms = now + r->cooldown_ms;
    r->consecutive_failures = 0;
    Log(LogLevel::kWarn, 0, 0,
        "teacher " + r->host + (signal == ReplicaSignal::kUnreachable ? " is unreachable" : " keeps failing") +
            ": out of rotation for " + std::to_string(r->cooldown_ms) + " ms, then one probe request");
  }
}

// Reserves budget for one request; false (and a clean stop) when it could cross a budget.
bool Harvester::Impl::ReserveBudget(std::int64_t prompt_est, std::int64_t completion_est) {
  const std::int64_t n = requests.fetch_add(1) + 1;
  if (opts.max_requests > 0 && n > opts.max_requests) {
    requests.fetch_sub(1);
    RequestStop("budget: --max-requests " + std::to_string(opts.max_requests) + " reached");
    return false;
  }
  const std::int64_t est = prompt_est + completion_est;
  const std::int64_t reserved = reserved_tokens.fetch_add(est) + est;
  if (opts.max_total_tokens > 0) {
    std::int64_t used = tokens_at_start + prompt_tokens.load() + completion_tokens.load();
    if (used + reserved > opts.max_total_tokens) {
      reserved_tokens.fetch_sub(est);
      requests.fetch_sub(1);
      RequestStop("budget: --max-total-tokens " + std::to_string(opts.max_total_tokens) +
                  " would be exceeded by the next request");
      return false;
    }
  }
  if (opts.max_cost > 0) {
    double spent = cost_at_start + Cost(prompt_tokens.load(), completion_tokens.load());
    // In-flight reservations are priced at the output price (the dearer side, typically).
    double pending = Cost(0, reserved) > Cost(reserved, 0) ? Cost(0, reserved) : Cost(reserved, 0);
    if (spent + pending > opts.max_cost) {
      reserved_tokens.fetch_sub(est);
      requests.fetch_sub(1);
      RequestStop("budget: --max-cost " + std::to_string(opts.max_cost) + " would be exceeded by the next request");
      return false;
    }
  }
  return true;
}

void Harvester::Impl::Resolve(const WorkItem& item, JobUpdate::Kind kind, int attempts, Millis next_at,
                              const std::string& error, int status, const std::string& body) {
  for (const LeasedJob& j : item.jobs) {
    JobUpdate u;
    u.kind = kind;
    u.job_id = j.id;
    u.attempts = attempts;
    u.next_attempt_at_ms = next_at;
    u.error = error;
    u.error_status = status;
    u.error_body = body.size() > kMaxErrorBody ? body.substr(0, kMaxErrorBody) : body;
    Status st = writer->Enqueue(std::move(u));
    if (!st.ok()) RequestStop("storage failure", st);
  }
}

void Harvester::Impl::OnCommit(const std::vector<JobUpdate>& batch, const Status& st) {
  if (!st.ok()) {
    Log(LogLevel::kError, 0, 0, "commit failed: " + st.ToString());
    RequestStop("storage failure", st);
    return;
  }
  for (const JobUpdate& u : batch) {
    if (u.kind == JobUpdate::Kind::kDone) {
      ++done;
      bytes_stored += static_cast<std::int64_t>(u.response.raw_body.size());
    } else if (u.kind == JobUpdate::Kind::kFailed) {
      ++failed;
    }
  }
  if (feeder) feeder->Resolved(static_cast<std::int64_t>(batch.size()));
}

void Harvester::Impl::Worker() {
  Transports transports(replicas.size());
  Replica* carried = nullptr;  // a slot kept from the last item, with its warm connection
  for (;;) {
    std::optional<WorkItem> item = feeder->Pop([&] {
      DropCarried(carried);
      CloseConnections(transports);
    });
    if (!item) {
      DropCarried(carried);
      // The run may be complete: wake the supervisor now, not at its next tick. Taking the
      // lock first means the supervisor is either before its check or already waiting.
      { std::lock_guard lk(stop_mu); }
      stop_cv.notify_all();
      return;
    }
    Process(std::move(*item), transports, carried);
  }
}

// Process: one attempt for one work item, through its stages. Grant takes a replica slot and
// a governor grant; Send reserves budget and sends; ParseBody reads a 2xx body; the outcome of
// ClassifyAttempt picks the handler that resolves the item (store, re-queue, retry, fail, stop).
void Harvester::Impl::Process(WorkItem item, Transports& transports, Replica*& carried) {
  Attempt a;
  a.item = std::move(item);
  a.number = a.item.jobs.front().attempts + 1;
  if (!Grant(a, transports, carried)) return;
  // Every path below reports the grant to the governor; once the probe is reported, wake the
  // workers it held back.
  struct ProbeReported {
    Impl* m;
    bool probe;
    ~ProbeReported() {
      if (probe) m->GovernorChanged();
    }
  } probe_reported{this, a.grant.probe};
  if (!Send(a, transports)) return;
  if (a.resp.error == TransportError::kNone) answered.store(true);
  ParseBody(a);
  const Classification c = ClassifyAttempt(a.resp, a.parsed.ok() ? Status::OK() : a.parsed.status(), *provider,
                                           a.wall_now);
  const RateLimitSnapshot limits = provider->ReadLimits(a.resp.headers, a.wall_now);
  switch (c.outcome) {
    case AttemptOutcome::kSuccess: OnSuccess(a, limits); break;
    case AttemptOutcome::kRateLimited: OnRateLimited(a, c, limits); break;
    case AttemptOutcome::kRetry: OnRetryable(a, c); break;
    case AttemptOutcome::kFailJob: OnJobFailed(a, c); break;
    case AttemptOutcome::kStopRun: OnStopRun(a, c); break;
  }
  // A connection the server serves, closed now, frees one of its threads for a connection it
  // left waiting.
  int pending = a.rep->retire.load();
  while (pending > 0 && !a.rep->retire.compare_exchange_weak(pending, pending - 1)) {
  }
  if (pending > 0) transports[a.replica_index]->CloseIdle();
  // Keep the slot (and the warm connection) for the next item while the limit allows: the set
  // of busy workers, and so of open connections, stays as small as the limit instead of the
  // slots rotating through every worker's connection.
  if (!Stopping() && a.rep->limiter->TryAcquire()) carried = a.rep;
  if (a.rep->limiter->in_flight() < a.rep->limiter->limit()) WakeSlotWaiters();
}

// Takes a concurrency slot on a replica, builds the request and waits for the replica's
// governor to grant it. False when stopping (the item is released, nothing is held).
bool Harvester::Impl::Grant(Attempt& a, Transports& transports, Replica*& carried) {
  const LeasedJob& first = a.item.jobs.front();
  if (carried) {
    bool usable = carried->limiter->in_flight() <= carried->limiter->limit();
    {
      std::lock_guard lk(carried->mu);
      usable = usable && carried->out_until_ms <= clock->NowMs() && carried->cooldown_ms == 0;
    }
    std::swap(a.rep, carried);
    if (!usable) DropCarried(a.rep);
  }
  if (!a.rep) a.rep = AcquireReplica([&] { CloseConnections(transports); });
  if (!a.rep) {
    Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
    return false;
  }
  while (replicas[a.replica_index].get() != a.rep) ++a.replica_index;
  ChatRequest& req = a.req;
  req.model = opts.model;
  req.messages = first.messages;
  req.params = run.spec.params;
  req.n = static_cast<int>(a.item.jobs.size());
  if (req.n == 1 && req.params.seed && run.spec.params.samples > 1) req.params.seed = *req.params.seed + first.sample;
  a.prompt_est = EstimatePromptTokens(req.messages);
  a.completion_est = (req.params.max_tokens ? *req.params.max_tokens : 512) * req.n;

  for (;;) {
    // A stop (fail fast, cancel, budget) sends nothing more, even when a slot and a grant are
    // free at once: the items already popped go back to pending.
    if (Stopping()) {
      ReleaseReplica(a.rep, LimiterOutcome::kIgnore, 0);
      Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
      return false;
    }
    const std::uint64_t epoch = GovernorEpoch();
    const GovernorGrant grant = a.rep->governor->TryAcquire(a.cost());
    if (grant.granted) {
      a.grant = grant;
      return true;
    }
    if (!WaitUntil(grant.retry_at_ms, epoch)) {
      ReleaseReplica(a.rep, LimiterOutcome::kIgnore, 0);
      Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
      return false;
    }
  }
}

// Reserves budget, builds the body and sends it on this worker's connection to the replica.
// False when the item was resolved without a response (budget reached, a request that cannot be
// built): the grant and the slot are returned.
bool Harvester::Impl::Send(Attempt& a, Transports& transports) {
  Replica* rep = a.rep;
  if (!ReserveBudget(a.prompt_est, a.completion_est)) {
    rep->governor->OnFailure(a.grant);
    ReleaseReplica(rep, LimiterOutcome::kIgnore, 0);
    Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
    return false;
  }
  auto give_up = [&](const std::string& why, const Status& st) {
    reserved_tokens -= a.est();
    rep->governor->OnFailure(a.grant);
    ReleaseReplica(rep, LimiterOutcome::kIgnore, 0);
    RequestStop(why, st);
    Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
    return false;
  };
  Result<std::string> body = provider->BuildRequestBody(a.req);
  if (!body.ok()) return give_up("cannot build request", body.status());
  std::unique_ptr<HttpTransport>& slot = transports[a.replica_index];
  if (!slot) {
    Result<std::unique_ptr<HttpTransport>> tr = HttpTransport::Create(TransportFor(*rep));
    if (!tr.ok()) return give_up("bad base URL", tr.status());
    slot = std::move(*tr);
  }
  HttpTransport* transport = slot.get();
  {
    std::lock_guard lk(transports_mu);
    live_requests.push_back({transport, rep, false});
  }
  ++in_flight;
  const auto t0 = std::chrono::steady_clock::now();
  std::function<bool(std::string_view)> on_chunk;
  if (a.req.params.stream) {
    a.assembler = provider->NewStreamAssembler(a.req.params.split_think);
    on_chunk = [&](std::string_view chunk) {
      if (!a.stream_status.ok()) return true;
      a.stream_status = a.assembler->Feed(chunk);
      if (!a.first_token_ms && a.assembler->SawFirstToken())
        a.first_token_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      return true;
    };
  }
  // A streamed probe is answered by its headers: the workers it holds back go then, not after
  // the whole answer (which may take minutes).
  std::function<void(const HttpResponse&)> on_head;
  if (a.grant.probe && a.req.params.stream) {
    on_head = [&](const HttpResponse& head) {
      if (head.status < 200 || head.status >= 300) return;
      if (rep->governor->OnProbeHead(a.grant, provider->ReadLimits(head.headers, clock->WallMs()))) GovernorChanged();
    };
  }
  a.resp = transport->Post(provider->Path(), headers, *body, on_chunk, on_head);
  --in_flight;
  {
    std::lock_guard lk(transports_mu);
    live_requests.erase(std::find_if(live_requests.begin(), live_requests.end(),
                                     [&](const LiveRequest& l) { return l.transport == transport; }));
  }
  reserved_tokens -= a.est();
  a.wall_now = clock->WallMs();
  return true;
}

// Parses a 2xx body (or finishes the stream) into a.parsed; leaves it an error otherwise.
void Harvester::Impl::ParseBody(Attempt& a) {
  if (a.resp.error != TransportError::kNone || a.resp.status < 200 || a.resp.status >= 300) return;
  if (a.req.params.stream) {
    a.parsed = a.stream_status.ok() ? a.assembler->Finish() : Result<ChatResponse>(a.stream_status);
  } else {
    a.parsed = provider->ParseResponse(a.resp.body, a.req.params.split_think);
  }
  if (a.parsed.ok() && a.parsed->choices.size() < a.item.jobs.size())
    a.parsed = Status::Corruption("expected " + std::to_string(a.item.jobs.size()) + " choices, got " +
                                  std::to_string(a.parsed->choices.size()));
}

void Harvester::Impl::OnSuccess(Attempt& a, const RateLimitSnapshot& limits) {
  Replica* rep = a.rep;
  const HttpResponse& resp = a.resp;
  const ChatResponse& cr = *a.parsed;
  if (rep->governor->OnResponse(a.grant, cr.usage, limits)) GovernorChanged();
  ReleaseReplica(rep, LimiterOutcome::kOk, resp.latency_ms, false);
  if (resp.response_start_ms >= 0) {
    std::lock_guard lk(rep->mu);
    rep->recent_starts.push_back(resp.response_start_ms);
    if (rep->recent_starts.size() > kStallSamples) rep->recent_starts.pop_front();
  }
  MarkReplica(rep, ReplicaSignal::kHealthy);
  succeeded.store(true);
  if (cr.usage.prompt_tokens > 0) prompt_tokens += cr.usage.prompt_tokens;
  if (cr.usage.completion_tokens > 0) completion_tokens += cr.usage.completion_tokens;
  if (cr.usage.reasoning_tokens > 0) reasoning_tokens += cr.usage.reasoning_tokens;
  if (observer) observer->OnRequest("ok", resp.latency_ms / 1000.0);
  std::string request_id;
  for (const auto& [k, v] : resp.headers)
    if (k == "x-request-id" || k == "request-id") request_id = v;
  for (size_t i = 0; i < a.item.jobs.size(); ++i) {
    const ChatChoice& ch = cr.choices[i];
    JobUpdate u;
    u.kind = JobUpdate::Kind::kDone;
    u.job_id = a.item.jobs[i].id;
    ResponseRecord& r = u.response;
    r.job_id = u.job_id;
    r.raw_body = a.req.params.stream ? cr.assembled_body : resp.body;
    r.content = ch.content;
    r.reasoning = ch.reasoning;
    r.reasoning_source = ch.reasoning_source;
    r.finish_reason = ch.finish_reason;
    if (a.item.jobs.size() == 1 || i == 0) r.usage = cr.usage;  // usage is per request: kept on the first choice
    r.latency_ms = resp.latency_ms;
    r.first_token_ms = a.first_token_ms;
    r.http_status = resp.status;
    r.request_id = request_id;
    r.received_at_ms = a.wall_now;
    r.logprobs = ch.logprobs;
    r.replica = rep->host;
    Status st = writer->Enqueue(std::move(u));
    if (!st.ok()) RequestStop("storage failure", st);
  }
}

// A 429: the governor pauses the replica; the item goes back to the front of the queue with its
// lease and without using an attempt.
void Harvester::Impl::OnRateLimited(Attempt& a, const Classification& c, const RateLimitSnapshot& limits) {
  ++rate_limited;
  a.rep->governor->OnRateLimited(a.grant, c.retry_after_ms, limits);
  ReleaseReplica(a.rep, LimiterOutcome::kIgnore, a.resp.latency_ms, false);
  if (observer) observer->OnRequest("rate_limited", a.resp.latency_ms / 1000.0);
  Log(LogLevel::kDebug, a.item.jobs.front().id, a.number, c.reason);
  if (Stopping()) {
    Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
  } else {
    feeder->PushFront(std::move(a.item));
  }
}

// A retryable failure. A teacher that cannot be reached is the endpoint's fault: the item is
// re-queued without using an attempt (until --unreachable-timeout). Anything else uses an
// attempt and is retried after a backoff, or fails once the attempts are spent.
void Harvester::Impl::OnRetryable(Attempt& a, const Classification& c) {
  Replica* rep = a.rep;
  const HttpResponse& resp = a.resp;
  ++errors;
  rep->governor->OnFailure(a.grant);
  const bool overload = resp.error != TransportError::kNone || resp.status >= 500 || resp.status == 408;
  ReleaseReplica(rep, overload ? LimiterOutcome::kOverload : LimiterOutcome::kIgnore, resp.latency_ms, false);
  {
    std::lock_guard lk(last_error_mu);
    last_error = c.reason;
  }
  if (resp.error == TransportError::kConnect) {
    MarkReplica(rep, ReplicaSignal::kUnreachable);
    if (observer) observer->OnRequest("retried", resp.latency_ms / 1000.0);
    ++retries;
    Millis since = 0;
    {
      std::lock_guard lk(rep->mu);
      since = rep->unreachable_since_ms;
    }
    const Millis unreachable_for = since ? clock->NowMs() - since : 0;
    if (since && opts.fail_fast && !answered.load() && unreachable_for > kNeverAnsweredUnreachableMs &&
        unreachable_for <= static_cast<Millis>(opts.unreachable_timeout_s * 1000)) {
      RequestStop("teacher unreachable", Status::Unavailable(NeverAnsweredMessage(rep->host, unreachable_for, c.reason)));
      Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
    } else if (since && unreachable_for > static_cast<Millis>(opts.unreachable_timeout_s * 1000)) {
      RequestStop("teacher unreachable",
                  Status::Unavailable("the teacher at " + rep->host + " has been unreachable for more than " +
                                      std::to_string(static_cast<long>(opts.unreachable_timeout_s)) + " s (" +
                                      c.reason + "); the remaining jobs are still pending"));
      Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
    } else if (Stopping()) {
      Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
    } else {
      feeder->PushFront(std::move(a.item));
    }
    return;
  }
  MarkReplica(rep, overload ? ReplicaSignal::kOverloaded : ReplicaSignal::kHealthy);
  const std::int64_t job = a.item.jobs.front().id;
  std::optional<Millis> delay = retry->NextDelay(a.number, c.retry_after_ms);
  if (!delay) {
    if (observer) observer->OnRequest("failed", resp.latency_ms / 1000.0);
    Log(LogLevel::kWarn, job, a.number, "giving up after " + std::to_string(a.number) + " attempts: " + c.reason);
    Resolve(a.item, JobUpdate::Kind::kFailed, a.number, 0,
            "gave up after " + std::to_string(a.number) + " attempts; last: " + c.reason, resp.status, "");
  } else {
    ++retries;
    if (observer) observer->OnRequest("retried", resp.latency_ms / 1000.0);
    Log(LogLevel::kDebug, job, a.number, "retry in " + std::to_string(*delay) + " ms: " + c.reason);
    Resolve(a.item, JobUpdate::Kind::kRetryLater, a.number, a.wall_now + *delay, c.reason, resp.status, "");
  }
}

// A non-retryable answer for this job (a 4xx other than auth and rate limits): the job fails,
// with its status and error body kept.
void Harvester::Impl::OnJobFailed(Attempt& a, const Classification& c) {
  if (HoldRefusal(a, c)) return;
  ++errors;
  a.rep->governor->OnFailure(a.grant);
  ReleaseReplica(a.rep, LimiterOutcome::kIgnore, a.resp.latency_ms, false);
  if (observer) observer->OnRequest("failed", a.resp.latency_ms / 1000.0);
  Log(LogLevel::kWarn, a.item.jobs.front().id, a.number, "failed: " + c.reason);
  {
    std::lock_guard lk(last_error_mu);
    last_error = c.reason;
  }
  Resolve(a.item, JobUpdate::Kind::kFailed, a.number, 0, c.reason, a.resp.status, a.resp.body);
}

// Fail fast. Until the first success, a non-retryable refusal does not fail its job: the job
// goes back to pending, unchanged, and the refusal is counted. When the first answers all refuse
// the same way, the fault is the run's options, not the prompts (a mistyped --model answers 404
// to every request): the run stops with the likely cause, every job still pending. Returns
// whether the item was held.
bool Harvester::Impl::HoldRefusal(Attempt& a, const Classification& c) {
  if (!opts.fail_fast || succeeded.load()) return false;
  bool stop = false;
  int same = 0;
  {
    std::lock_guard lk(fail_fast_mu);
    if (succeeded.load()) return false;
    same = ++refusals[a.resp.status];
    ++refusals_total;
    stop = same >= fail_fast_threshold || refusals_total >= 4 * kFailFastRefusals;
  }
  ++errors;
  a.rep->governor->OnFailure(a.grant);
  ReleaseReplica(a.rep, LimiterOutcome::kIgnore, a.resp.latency_ms, false);
  if (observer) observer->OnRequest("failed", a.resp.latency_ms / 1000.0);
  {
    std::lock_guard lk(last_error_mu);
    last_error = c.reason;
  }
  Log(LogLevel::kDebug, a.item.jobs.front().id, a.number, "refused before any success (held, not failed): " + c.reason);
  if (stop) {
    const std::string msg = RefusalMessage(a.rep->base_url, a.rep->host, opts.model, a.resp.status, same, c.reason);
    RequestStop("systematic error: HTTP " + std::to_string(a.resp.status) + " to every request",
                Status::Rejected(msg));
  }
  Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
  return true;
}

// The teacher refuses the whole run (rejected key, exhausted quota): stop, jobs left pending.
void Harvester::Impl::OnStopRun(Attempt& a, const Classification& c) {
  Replica* rep = a.rep;
  const HttpResponse& resp = a.resp;
  ++errors;
  rep->governor->OnFailure(a.grant);
  ReleaseReplica(rep, LimiterOutcome::kIgnore, resp.latency_ms, false);
  if (observer) observer->OnRequest("failed", resp.latency_ms / 1000.0);
  std::string msg;
  if (resp.status == 401 || resp.status == 403) {
    msg = "the teacher at " + rep->host + " answered HTTP " + std::to_string(resp.status) +
          ": the API key was rejected; it is read from $" + api_key_env +
          (api_key.empty() ? " (which is not set)" : "") +
          ". Fix it and re-run the same command: the remaining jobs are still pending";
    RequestStop("authentication failed", Status::Unauthenticated(msg));
  } else {
    msg = "the teacher at " + rep->host + " refused further requests: " + c.reason +
          ". The remaining jobs are still pending; re-run when the quota allows";
    RequestStop("quota exhausted", Status::BudgetExhausted(msg));
  }
  Log(LogLevel::kError, a.item.jobs.front().id, a.number, msg);
  Resolve(a.item, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
}

// A request on a new connection that waits for its first response byte far longer than its
// peers' answers took is on a connection the server has not picked up: thread-per-connection servers
// (llama-server) queue a new connection when each of their threads holds a keep-alive
// connection, and serve it only when one of those closes. For each newly stalled request: the
// replica's concurrency limit decreases (a latency signal the AIMD limiter acts on) and one
// connection is closed after its current request, which frees a server thread for it.
void Harvester::Impl::CheckStalls() {
  for (auto& r : replicas) {
    double threshold;
    {
      std::lock_guard lk(r->mu);
      if (r->recent_starts.size() < kStallMinSamples) continue;
      std::vector<double> v(r->recent_starts.begin(), r->recent_starts.end());
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
      threshold = std::max(kStallMinMs, kStallFactor * v[v.size() / 2]);
    }
    int stalled = 0;
    double longest = 0;
    {
      std::lock_guard lk(transports_mu);
      for (LiveRequest& l : live_requests) {
        if (l.rep != r.get() || l.stalled) continue;
        const double waited = l.transport->AwaitingResponseMs();
        if (waited > threshold) {
          l.stalled = true;
          ++stalled;
          longest = std::max(longest, waited);
        }
      }
    }
    if (stalled == 0) continue;
    r->limiter->Stalled();
    r->retire += stalled;
    Log(LogLevel::kInfo, 0, 0,
        std::to_string(stalled) + " request(s) to " + r->host + " waited " + std::to_string(static_cast<long>(longest)) +
            " ms for a first byte (stall threshold " + std::to_string(static_cast<long>(threshold)) +
            " ms): closing a connection after its request so the server can serve them; concurrency limit now " +
            std::to_string(r->limiter->limit()));
  }
}

HarvestProgress Harvester::Impl::Snapshot() const {
  HarvestProgress p;
  if (!ready.load(std::memory_order_acquire)) return p;  // still setting up
  p.total_jobs = total_jobs;
  p.done = done_at_start + done.load();
  p.failed = failed_at_start + failed.load();
  p.reused = reused_at_start;
  p.pending = std::max<std::int64_t>(0, p.total_jobs - p.done - p.failed);
  p.requests = requests.load();
  p.retries = retries.load();
  p.rate_limited = rate_limited.load();
  p.errors = errors.load();
  p.in_flight = in_flight.load();
  for (const auto& r : replicas) {
    p.concurrency_limit += r->limiter->limit();
    GovernorStats g = r->governor->Stats();
    p.rpm_effective += g.rpm_effective;
    p.tpm_effective += g.tpm_effective;
  }
  p.prompt_tokens = prompt_tokens.load();
  p.completion_tokens = completion_tokens.load();
  p.reasoning_tokens = reasoning_tokens.load();
  p.cost = cost_at_start + Cost(p.prompt_tokens, p.completion_tokens);
  p.bytes_stored = bytes_stored.load();
  const Millis now = clock->NowMs();
  p.elapsed_s = started_ms ? static_cast<double>(now - started_ms) / 1000.0 : 0;
  {
    std::lock_guard lk(progress_mu);
    const std::int64_t d = done.load() + failed.load();
    const std::int64_t tok = p.prompt_tokens + p.completion_tokens;
    rate_samples.push_back({now, {d, tok}});
    while (rate_samples.size() > 2 && now - rate_samples.front().first > 10'000) rate_samples.pop_front();
    const auto& [t0, v0] = rate_samples.front();
    const double dt = static_cast<double>(now - t0) / 1000.0;
    if (dt > 0.2) {  // the rate over the last ~10 s of samples
      p.requests_per_s = static_cast<double>(d - v0.first) / dt;
      p.tokens_per_s = static_cast<double>(tok - v0.second) / dt;
    } else if (p.elapsed_s > 0) {  // no window yet (first sample, or a short run): the average so far
      p.requests_per_s = static_cast<double>(d) / p.elapsed_s;
      p.tokens_per_s = static_cast<double>(tok) / p.elapsed_s;
    }
    if (p.requests_per_s > 0) p.eta_s = static_cast<double>(p.pending) / p.requests_per_s;
  }
  {
    std::lock_guard lk(const_cast<std::mutex&>(last_error_mu));
    p.last_error = last_error;
  }
  return p;
}

int HarvestExitCode(const Status& error, const HarvestSummary& summary) {
  switch (error.code()) {
    case StatusCode::kOk:
      if (summary.final_state != RunState::kDone) return kHarvestExitStoppedEarly;
      return summary.progress.failed > 0 ? kHarvestExitSomeFailed : kHarvestExitDone;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
      return kHarvestExitUsage;
    case StatusCode::kUnavailable:
    case StatusCode::kUnauthenticated:
    case StatusCode::kBudgetExhausted:
    case StatusCode::kRateLimited:
    case StatusCode::kCancelled:
    case StatusCode::kRejected:
      return kHarvestExitStoppedEarly;
    default:
      return kHarvestExitError;
  }
}

Harvester::Harvester(Store* store, HarvestOptions opts, LogSink* log, Clock* clock, HarvestObserver* observer)
    : impl_(std::make_unique<Impl>(store, std::move(opts), log, clock, observer)) {
  if (impl_->opts.mode == "batch") impl_->batch = std::make_unique<BatchHarvester>(store, impl_->opts, impl_->log, impl_->clock);
}
Harvester::~Harvester() = default;

void Harvester::Stop(const std::string& reason) {
  if (impl_->batch) return impl_->batch->Stop(reason);
  impl_->RequestStop(reason);
}

void Harvester::Abort() {
  if (impl_->batch) return impl_->batch->Stop("aborted");
  {
    std::lock_guard lk(impl_->stop_mu);
    impl_->aborting = true;
  }
  impl_->RequestStop("aborted");
  std::lock_guard lk(impl_->transports_mu);
  for (const Impl::LiveRequest& l : impl_->live_requests) l.transport->Cancel();
}

HarvestProgress Harvester::Progress() const {
  if (impl_->batch) return impl_->batch->Progress();
  HarvestProgress p = impl_->Snapshot();
  std::lock_guard lk(impl_->stop_mu);
  p.state = impl_->stopping ? "stopping" : "running";
  return p;
}

Result<HarvestSummary> Harvester::Run() {
  Impl& m = *impl_;
  if (m.batch) return m.batch->Run();
  if (Status s = m.Setup(); !s.ok()) {
    // A step after the run started and took its lock (its totals, recording --insecure): give
    // the lock back, so that `retort serve`, which lives on, can start the run again at once.
    if (!m.owner.empty()) (void)m.store->ReleaseRunLock(m.run.id, m.owner);
    return s;
  }
  m.started_ms = m.clock->NowMs();
  m.ready.store(true, std::memory_order_release);
  RETORT_RETURN_IF_ERROR(m.store->SetRunState(m.run.id, RunState::kRunning, ""));
  m.Log(LogLevel::kInfo, 0, 0,
        "harvesting run '" + m.opts.run + "': " + std::to_string(m.total_jobs - m.done_at_start - m.failed_at_start) +
            " of " + std::to_string(m.total_jobs) + " jobs to do");
  m.writer = std::make_unique<ResultWriter>(m.store, m.run.id, ResultWriterOptions{},
                                            [&m](const std::vector<JobUpdate>& b, const Status& s) { m.OnCommit(b, s); });
  const bool group = m.run.spec.params.n_per_request && m.provider->SupportsN() && m.run.spec.params.samples > 1;
  const int workers = m.opts.concurrency * static_cast<int>(m.replicas.size());
  m.feeder = std::make_unique<JobFeeder>(m.store, m.run.id, std::max(64, 2 * workers), group, m.clock);
  m.feeder->Start();
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) threads.emplace_back([&m] { m.Worker(); });

  // Supervise: heartbeat the lock until the feeder says complete or a stop is requested.
  Millis last_beat = m.clock->NowMs();
  for (;;) {
    {
      std::unique_lock lk(m.stop_mu);
      m.stop_cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return m.stopping || m.feeder->complete(); });
      if (m.stopping) break;
    }
    if (m.feeder->complete()) break;
    if (!m.feeder->status().ok()) {
      m.RequestStop("storage failure", m.feeder->status());
      break;
    }
    m.CheckStalls();
    if (m.clock->NowMs() - last_beat >= kHeartbeatMs) {
      last_beat = m.clock->NowMs();
      Status hb = m.store->HeartbeatRunLock(m.run.id, m.owner);
      if (!hb.ok()) m.RequestStop("lost the run lock", hb);
    }
  }
  // Stop feeding; release what was queued but not sent.
  std::vector<WorkItem> left = m.feeder->Stop();
  {
    std::lock_guard lk(m.stop_mu);
    if (!m.stopping) m.stopping = true;  // completion: wake idle workers
  }
  m.stop_cv.notify_all();
  for (const WorkItem& it : left) m.Resolve(it, JobUpdate::Kind::kRelease, 0, 0, "", 0, "");
  // Wait for in-flight requests, bounded by --shutdown-timeout; then abandon them.
  const Millis deadline = m.clock->NowMs() + static_cast<Millis>(m.opts.shutdown_timeout_s * 1000);
  while (m.in_flight.load() > 0 && m.clock->NowMs() < deadline) {
    std::unique_lock lk(m.stop_mu);
    m.stop_cv.wait_for(lk, std::chrono::milliseconds(20));
  }
  if (m.in_flight.load() > 0) {
    m.Log(LogLevel::kWarn, 0, 0, "abandoning " + std::to_string(m.in_flight.load()) + " requests still in flight");
    std::lock_guard lk(m.transports_mu);
    for (const Impl::LiveRequest& l : m.live_requests) l.transport->Cancel();
  }
  for (std::thread& t : threads) t.join();
  Status wst = m.writer->Flush();
  m.writer.reset();

  HarvestSummary sum;
  sum.progress = m.Snapshot();
  Status why;
  std::string reason;
  {
    std::lock_guard lk(m.stop_mu);
    why = m.stop_status;
    reason = m.stop_reason;
  }
  if (!wst.ok() && why.ok()) why = wst;
  Result<JobCounts> counts = why.ok() ? m.store->CountJobs(m.run.id) : Result<JobCounts>(why);
  const bool finished = counts.ok() && counts->pending == 0 && counts->leased == 0;
  sum.final_state = finished ? RunState::kDone : RunState::kStopped;
  sum.stop_reason = finished ? "" : (reason.empty() ? "stopped" : reason);
  sum.progress.state = finished ? "done" : "stopped";
  if (why.code() != StatusCode::kIOError && why.code() != StatusCode::kCorruption) {
    (void)m.store->SetRunState(m.run.id, sum.final_state, why.ok() ? sum.stop_reason : why.message());
    (void)m.store->ReleaseRunLock(m.run.id, m.owner);
  }
  if (why.code() == StatusCode::kIOError || why.code() == StatusCode::kCorruption)
    return Status(why.code(), "cannot write to the corpus database '" + m.store->path() + "': " + why.message() +
                                  ". The failed batch was rolled back, so nothing partial is stored; free disk "
                                  "space (or fix permissions) and re-run the same command to resume");
  if (!why.ok()) return why;
  return sum;
}

}  // namespace retort
