// Harvester: runs a harvest (a run's jobs -> teacher -> store), exactly once, rate-aware.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "retort/clock.h"
#include "retort/log.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// Every option of `retort harvest`. Declared once in the option table (HarvestOptionTable):
// the CLI flag `--max-tokens`, the config-file key `max-tokens` and the service's JSON field
// `max_tokens` all come from that table.
struct HarvestOptions {
  // Prompt set to harvest and the run's name. Re-using a run name resumes that run.
  std::string set;
  std::string run;
  // Provider adapter: "openai-chat" (default) or "anthropic-messages".
  std::string provider = "openai-chat";
  // Teacher base URLs (repeatable = replicas). openai-chat: ".../v1" (the path /chat/completions
  // is appended); anthropic-messages: the host root (/v1/messages is appended). Empty = from
  // OPENAI_BASE_URL / ANTHROPIC_BASE_URL.
  std::vector<std::string> base_urls;
  std::string model;
  // Environment variable holding the API key ("" = the provider's default, e.g. OPENAI_API_KEY).
  // The key itself is never stored, logged or shown.
  std::string api_key_env;
  // Generation parameters (stored with the run).
  GenerationParams params;
  // Hard ceiling on requests in flight; the adaptive limiter stays at or below it.
  int concurrency = 64;
  // Total time one request may take, from connecting to its last byte, seconds (a server that
  // trickles bytes cannot hold a request open longer).
  double timeout_s = 600;
  // Longest silence while a request waits for its next byte, seconds; 0 = --timeout.
  double idle_timeout_s = 0;
  // TLS: CA bundle path, or skip verification (explicit only).
  std::string ca_file;
  bool insecure = false;
  // Rate limits per minute (0 = learn from the provider's headers): requests, combined tokens
  // (prompt + max_tokens at request time for openai-chat), and Anthropic's separate input
  // (ITPM) and output (OTPM) token limits.
  double rpm = 0;
  double tpm = 0;
  double itpm = 0;
  double otpm = 0;
  // Error attempts per job before it fails (429s do not count).
  int max_attempts = 8;
  // Budgets: stop cleanly when the next request could cross one. 0 = none.
  std::int64_t max_requests = 0;
  std::int64_t max_total_tokens = 0;
  double max_cost = 0;
  // Prices in currency units per million tokens (for cost accounting and --max-cost).
  double price_input = 0;
  double price_output = 0;
  // Seconds an unreachable teacher (connection refused / DNS / TLS handshake) is retried before
  // the run stops; meanwhile no job uses up an attempt.
  double unreachable_timeout_s = 600;
  // Seconds to wait for in-flight requests on a graceful stop before abandoning them.
  double shutdown_timeout_s = 30;
  // Fail fast: stop early, jobs left pending, when the first answers are all the same
  // non-retryable refusal (a mistyped --model, a --base-url without /v1) or when the teacher
  // refuses connections before it ever answered (a wrong port). false = --no-fail-fast.
  bool fail_fast = true;
  // Fill a job from the answer to an identical canonical request (provider, model, messages,
  // generation parameters, sample) stored by another run of the database, without a request.
  // false = --no-reuse.
  bool reuse = true;
  // On resume: failed jobs go back to pending (attempts reset, their errors kept in history).
  bool retry_failed = false;
  // On resume: the run may take a new model while none of its jobs is done.
  bool allow_model_change = false;
  // "online" (a request per job) or "batch" (the provider's batch API at batch prices: OpenAI
  // Batch API, Anthropic Message Batches; see batch_harvest.h). Stored with the run.
  std::string mode = "online";
  // Batch mode: rounds of submission; a round resubmits only the jobs still without an answer
  // (expired, cancelled, retryable errors).
  int batch_max_rounds = 3;
  // Batch mode: requests and bytes per batch at most (0 = the provider's documented limit:
  // OpenAI 50,000 / 200 MB, Anthropic 100,000 / 256 MB).
  std::int64_t batch_max_requests = 0;
  std::int64_t batch_max_bytes = 0;
  // Batch mode: longest wait between two polls of a batch, seconds (polls start at 1 s and
  // back off to this).
  double batch_poll_s = 60;
  // Batch mode: ask the provider to cancel the run's open batches, store what they finished,
  // submit nothing new.
  bool cancel_batches = false;
  // Seed of the retry jitter.
  std::uint64_t jitter_seed = 0x5eed;

  // Checks ranges and combinations. InvalidArgument names the flag.
  Status Validate() const;
  // The run these options create or resume (what Store::CreateOrResumeRun takes).
  RunSpec Spec() const;
};

// One option of the table: flag name without dashes ("max-tokens"), help text, and whether it
// takes a value or repeats. `apply` parses the text value into the options.
struct HarvestOptionSpec {
  const char* name;
  const char* help;
  enum class Kind { kString, kInt, kDouble, kBool, kList } kind;
  std::function<Status(HarvestOptions&, const std::string&)> apply;
  std::function<std::string(const HarvestOptions&)> default_text;  // shown in --help; "" = none
};
const std::vector<HarvestOptionSpec>& HarvestOptionTable();

// Live counters of a harvest. Plain values; a snapshot.
struct HarvestProgress {
  std::int64_t total_jobs = 0, done = 0, failed = 0, pending = 0;
  std::int64_t reused = 0;  // of `done`: filled from other runs' identical requests, without a request
  std::int64_t requests = 0, retries = 0, rate_limited = 0, errors = 0;
  std::int64_t in_flight = 0;
  int concurrency_limit = 0;
  double rpm_effective = 0, tpm_effective = 0;  // governor's current rates (0 = unlimited)
  std::int64_t prompt_tokens = 0, completion_tokens = 0, reasoning_tokens = 0;
  double cost = 0;
  double elapsed_s = 0;
  double requests_per_s = 0, tokens_per_s = 0;  // recent rates
  double eta_s = -1;                            // -1 = unknown
  std::int64_t bytes_stored = 0;
  std::string state;                            // "running", "stopping", "done", "stopped"
  std::string last_error;
};

// How a harvest ended.
struct HarvestSummary {
  RunState final_state = RunState::kStopped;
  std::string stop_reason;  // "" when done
  HarvestProgress progress;
};

// The exit status of `retort harvest` (documented in its --help and the README).
inline constexpr int kHarvestExitDone = 0;          // every job done
inline constexpr int kHarvestExitError = 1;         // could not harvest: database, run lock, run parameters
inline constexpr int kHarvestExitUsage = 2;         // bad flags or options, unknown prompt set
inline constexpr int kHarvestExitSomeFailed = 3;    // finished, some jobs failed (--retry-failed retries them)
inline constexpr int kHarvestExitStoppedEarly = 4;  // stopped with jobs pending: budget, signal, teacher
                                                    // unreachable, key or quota refused, systematic error
// `error` is Run()'s error (OK when it returned a summary); `summary` is read when `error` is OK.
int HarvestExitCode(const Status& error, const HarvestSummary& summary);

// Optional hooks for the service and metrics. Called from harvest threads; must be thread-safe.
struct HarvestObserver {
  virtual ~HarvestObserver() = default;
  // outcome: "ok", "retried", "rate_limited", "failed"; latency in seconds.
  virtual void OnRequest(const std::string& outcome, double latency_s) { (void)outcome; (void)latency_s; }
};

// Runs one harvest. Create, then Run() on one thread; Stop()/Progress() from any thread.
class Harvester {
 public:
  // `store` and `log` must outlive the Harvester. `clock` nullptr = SystemClock().
  Harvester(Store* store, HarvestOptions opts, LogSink* log, Clock* clock = nullptr,
            HarvestObserver* observer = nullptr);
  ~Harvester();

  // Harvests until every job is done or failed, a budget is reached, the run must stop
  // (401/403, quota exhausted, storage failure) or Stop() is called. Returns the summary;
  // errors: InvalidArgument (options), NotFound (set), FailedPrecondition (conflicting run
  // parameters, run locked by another harvester), Unauthenticated (401/403: jobs stay pending),
  // IOError (storage: fail-stop).
  Result<HarvestSummary> Run();
  // Graceful stop: no new requests; in-flight ones finish (bounded), results are committed.
  void Stop(const std::string& reason = "stopped by signal");
  // Immediate: abandons in-flight requests (their jobs stay leased -> pending on next start).
  void Abort();
  HarvestProgress Progress() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace retort
