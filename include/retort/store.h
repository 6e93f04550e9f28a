// Store: the SQLite corpus database (prompt sets, runs, jobs, responses, exports).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "retort/clock.h"
#include "retort/corpus.h"
#include "retort/status.h"

namespace retort {

enum class Durability { kNormal, kFull };  // SQLite synchronous=NORMAL (default) or FULL

struct StoreOptions {
  // Path of the database file; created (with parent directory required to exist) on first use.
  std::string path;
  // SQLite `synchronous` level. NORMAL in WAL mode loses at most the last commits on power loss,
  // never on a process crash; FULL survives power loss too.
  Durability durability = Durability::kNormal;
  // How long a statement waits for another process's lock before failing with IOError.
  int busy_timeout_ms = 10000;
  // Open read-only (status queries). No migration is applied; an old schema is an error.
  bool read_only = false;
  // Clock for stored timestamps. nullptr = SystemClock().
  Clock* clock = nullptr;
  // SQLite page cache of this connection in MiB (PRAGMA cache_size). 0 = SQLite's default
  // (2 MiB). Bulk import raises it: B-tree pages of the unique indexes stay cached, which is
  // most of its speed; the cost is resident memory up to this size.
  int cache_mib = 0;
  // Checkpoint the WAL on a thread of its own after each commit instead of inside the commit
  // that crosses SQLite's threshold (bulk import: the writer goes on while pages are copied and
  // synced). Same durability: committed transactions are in the WAL either way.
  bool background_checkpoints = false;
};

struct PromptSetInfo {
  std::int64_t id = 0;
  std::string name;
  std::int64_t prompts = 0;
  Millis created_at_ms = 0;
};

// What a harvest is: set + teacher + generation parameters. Stored with the run.
struct RunSpec {
  std::string name;
  std::string set;
  std::string provider = "openai-chat";
  std::vector<std::string> base_urls;  // without credentials
  std::string model;
  GenerationParams params;
  // "online" (one request per job, as they go) or "batch" (the provider's batch API; see
  // batch_harvest.h). Fixed at creation: a batch run's open batches are its in-flight requests.
  std::string mode = "online";
};

// Frozen: stored as text in runs.state.
enum class RunState { kCreated, kRunning, kPaused, kStopped, kCancelled, kDone };
const char* RunStateName(RunState s);  // "created", "running", "paused", "stopped", "cancelled", "done"

struct JobCounts {
  std::int64_t pending = 0, leased = 0, done = 0, failed = 0;
  std::int64_t total() const { return pending + leased + done + failed; }
};

struct RunInfo {
  std::int64_t id = 0;
  RunSpec spec;
  RunState state = RunState::kCreated;
  std::string stop_reason;
  Millis created_at_ms = 0, updated_at_ms = 0;
  std::string lock_owner;     // "host:pid:nonce" of the harvester holding the run, or ""
  Millis lock_heartbeat_ms = 0;
  bool tls_insecure = false;  // some harvest of this run skipped TLS verification (--insecure)
};

// Totals over a run's stored responses.
struct RunTotals {
  JobCounts jobs;
  // Token sums below are over the answers this run paid for; `reused` answers were copied from
  // identical requests of other runs (see Store::ReuseAnswers) and cost nothing.
  std::int64_t reused = 0;
  std::int64_t prompt_tokens = 0, completion_tokens = 0, reasoning_tokens = 0;
  std::int64_t response_bytes = 0;           // sum of raw body sizes
  Millis first_received_ms = 0, last_received_ms = 0;  // 0 when no response
};

// A job handed to the harvester, with the prompt it sends.
struct LeasedJob {
  std::int64_t id = 0;
  std::int64_t prompt_id = 0;
  int sample = 0;
  int attempts = 0;  // error attempts already used
  std::vector<Message> messages;
};

// One state change of a job, applied by the group-commit writer.
struct JobUpdate {
  enum class Kind {
    kDone,        // store `response`; the job becomes done (never overwritten once done)
    kRetryLater,  // back to pending at next_attempt_at_ms, attempts = `attempts`, last_error = `error`
    kFailed,      // permanent failure: error, error_status, error_body kept
    kRelease,     // back to pending unchanged (cancelled, 429, shutdown): no attempt used
  };
  Kind kind = Kind::kDone;
  std::int64_t job_id = 0;
  ResponseRecord response;        // kDone
  int attempts = 0;               // kRetryLater, kFailed
  Millis next_attempt_at_ms = 0;  // kRetryLater
  std::string error;              // kRetryLater, kFailed
  int error_status = 0;           // kFailed (0 = not HTTP)
  std::string error_body;         // kFailed
};

// A stored response with its prompt, for export.
struct ExportRow {
  std::int64_t job_id = 0;
  int sample = 0;
  Prompt prompt;
  ResponseRecord response;
};

// A stored response with its prompt, as views into the store's current row: what an export
// reads (Store::ForEachResponseView). Valid only during the callback it is passed to.
struct ExportRowView {
  int sample = 0;
  std::string_view prompt_key;
  std::string_view messages_json;            // as stored: canonical JSON array (MessagesToJson)
  std::string_view metadata_json;            // canonical JSON object, or "" when absent
  std::string_view content;
  std::optional<std::string_view> reasoning;
  std::string_view finish_reason;
  bool reused = false;                       // copied from another run's identical request
  const std::vector<TokenLogprob>* logprobs = nullptr;  // decoded; empty unless asked for
  Millis received_at_ms = 0;
};

// Optional, costly columns of Store::ForEachResponse.
struct ResponseColumns {
  bool raw_body = true;  // ResponseRecord::raw_body (the largest column by far)
  bool logprobs = true;  // ResponseRecord::logprobs (decoded from compact JSON)
};

// One failed job, for status reports.
struct FailedJobInfo {
  std::int64_t job_id = 0;
  std::string prompt_key;
  int sample = 0;
  std::string error;
  int error_status = 0;
};

// A page request of the response browser (Store::BrowseResponses): keyset pagination by job
// id, never OFFSET, so a page costs the same at the start and at the end of a million rows.
struct BrowseQuery {
  // false: the run's answered jobs (state done, with a response); true: its failed jobs.
  bool failed = false;
  // Keyset cursor: only jobs with a larger id (0 = from the start). Pass BrowsePage::next_after.
  std::int64_t after_job_id = 0;
  // Rows returned at most (REQUIRES: 1..1000).
  int limit = 50;
  // Only answers with this finish reason ("" = any; ignored for failed jobs).
  std::string finish_reason;
  // Only rows whose prompt (its stored JSON messages) or answer contain this text, ASCII case
  // ignored ("" = any).
  std::string text;
  // Rows examined at most by one call (REQUIRES: >= limit): a filter that matches rarely ends
  // the page early with a cursor to go on from, instead of scanning the whole run.
  int max_scanned = 20000;
};

// One row of the response browser.
struct BrowseRow {
  std::int64_t job_id = 0;
  int sample = 0;
  std::string prompt_key;
  std::string messages_json;  // as stored: canonical JSON array of {"role","content"}
  // Answered jobs:
  std::string content;
  std::optional<std::string> reasoning;
  std::string finish_reason;
  std::optional<std::int64_t> prompt_tokens, completion_tokens, reasoning_tokens;
  double latency_ms = 0;
  int http_status = 0;
  Millis received_at_ms = 0;
  // Failed jobs:
  std::string error;
  int error_status = 0;  // 0 = not an HTTP error
  int attempts = 0;
};

struct BrowsePage {
  std::vector<BrowseRow> rows;  // in job id order
  // The cursor of the next page (BrowseQuery::after_job_id), or 0 when the run has no more rows.
  std::int64_t next_after = 0;
  std::int64_t scanned = 0;  // rows examined
};

// The host name used in run-lock owner ids ("host:pid:nonce").
std::string RunLockHostName();
// A fresh owner id "host:pid:[role-]nonce" for this process (`role` names the tool, e.g.
// "batch-file"; "" for a harvest).
std::string RunLockOwnerId(const std::string& role = "");
// Whether the harvester that holds a run lock may still be alive: false when it ran on this host
// and its pid is gone; true otherwise (other hosts are judged by the heartbeat).
bool RunLockHolderAlive(const std::string& owner);

// One provider batch of a batch run (`retort harvest --mode batch`), as recorded step by step.
struct BatchRecord {
  std::int64_t id = 0;  // local id
  std::int64_t run_id = 0;
  int round = 1, part = 1;
  std::string provider;
  // Frozen: "written" (input file on disk), "uploaded" (file_id known), "creating" (create sent,
  // batch id not known yet), "created" (batch_id known), "ended" (the provider's terminal state),
  // "ingested" (its results are stored; its jobs still pending may go into a later round).
  std::string step = "written";
  std::string input_path;
  std::int64_t requests = 0, bytes = 0;
  std::string tag;  // metadata naming the run and part: how a crashed create is found again
  std::string file_id, batch_id;  // provider ids; "" = not known yet
  std::string provider_status;    // as last polled ("" = never)
  std::string counts_json;        // the provider's request counts as last polled ("" = never)
  std::string output_file_id, error_file_id;
  std::string error;              // why the batch failed or could not be created ("" = none)
  Millis create_started_ms = 0;   // when the create call was first sent (0 = not yet)
  Millis created_at_ms = 0, updated_at_ms = 0;
};

enum class ImportOutcome { kInserted, kDuplicate, kKeyConflict };

struct ExportInfo {
  std::int64_t id = 0;
  std::string run;
  std::string out_dir;
  std::string options_json;
  std::string state;  // frozen: running|done|failed
  std::string manifest_json;
  std::string error;
  Millis started_at_ms = 0, finished_at_ms = 0;
};

// The corpus database. Safe for concurrent use: one connection behind a mutex; writes are
// serialized. After a failed commit the store is fail-stopped: every later write returns the
// same IOError (nothing is guessed about what reached the disk); reopen to recover.
class Store {
 public:
  // Opens (creating if missing) and migrates. Errors: IOError (cannot open / disk),
  // FailedPrecondition (written by a newer retort: names both schema versions),
  // Corruption (not a retort database / integrity failure).
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& opts);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The schema version this binary writes, and the database's.
  static int LatestSchemaVersion();
  int SchemaVersion();
  const std::string& path() const;

  // ---- transactions (import's --strict uses one per file) ----
  // Runs `fn` inside BEGIN IMMEDIATE ... COMMIT; rolls back when `fn` returns non-OK.
  // May nest (inner calls use savepoints).
  Status InTransaction(const std::function<Status()>& fn);
  // With StoreOptions::background_checkpoints: waits until `n` background checkpoints have
  // completed (tests), up to `timeout_ms`. False without background checkpoints.
  bool WaitForCheckpoints(int n, int timeout_ms);

  // ---- prompt sets ----
  Result<std::int64_t> CreatePromptSet(const std::string& name);  // or returns the existing id
  Result<PromptSetInfo> GetPromptSet(const std::string& name);    // NotFound
  Result<std::vector<PromptSetInfo>> ListPromptSets();
  // Calls `fn(prompt_key, messages_json)` for every prompt of the set, in insertion order; the
  // views are valid only during the call. `fn` runs with the store lock held, so it must not
  // call into this Store. Stops at the first non-OK from `fn`.
  Status ForEachPromptMessages(std::int64_t set_id,
                               const std::function<Status(std::string_view key, std::string_view messages_json)>& fn);
  // Inserts `prompts` (key, content_hash, messages, metadata set by the caller) with `sources`
  // ("file:line") in one transaction. Inside InTransaction it joins the enclosing transaction
  // without a savepoint (a savepoint copies every page it touches to a statement journal):
  // on an error the rows inserted so far stay in that transaction, so the caller must fail it
  // (return the error from its callback). outcomes[i] says what happened: duplicate content
  // is stored once; the same key with other content is kKeyConflict.
  Status InsertPrompts(std::int64_t set_id, const std::vector<Prompt>& prompts,
                       const std::vector<std::string>& sources, std::vector<ImportOutcome>* outcomes);

  // ---- runs ----
  // Creates the run (state created) or checks that `spec` matches the stored one (FailedPrecondition
  // naming the first differing field; base_urls may change), then creates any missing jobs
  // (one per prompt x sample). Returns the run. A run's identity is its set, provider, model and
  // generation parameters: they decide what its answers are. With `allow_model_change` the model
  // may change while none of the run's jobs is done (the jobs' keys follow it).
  Result<RunInfo> CreateOrResumeRun(const RunSpec& spec, bool allow_model_change = false);
  Result<RunInfo> GetRun(const std::string& name);  // NotFound
  Result<std::vector<RunInfo>> ListRuns();
  Status SetRunState(std::int64_t run_id, RunState state, const std::string& stop_reason);
  // Records for good that a harvest of the run skipped TLS certificate verification.
  Status MarkRunTlsInsecure(std::int64_t run_id);
  Result<JobCounts> CountJobs(std::int64_t run_id);
  Result<RunTotals> Totals(std::int64_t run_id);
  // Totals without the job counts (`jobs` left zero): one row, whatever the run's size. Counting
  // the jobs walks the run's index entries (about 0.1 s per million jobs).
  Result<RunTotals> ResponseTotals(std::int64_t run_id);
  Result<std::vector<FailedJobInfo>> RecentFailures(std::int64_t run_id, int limit);
  // Returns the run's failed jobs to pending with their attempts reset; each one's error, status,
  // body and attempts are kept in job_errors. Returns how many.
  Result<std::int64_t> RetryFailedJobs(std::int64_t run_id);
  // Errors of a job's earlier failures that --retry-failed moved to history, oldest first.
  Result<std::vector<std::string>> JobErrorHistory(std::int64_t job_id);
  // Fills the run's pending jobs whose canonical request (job key: provider, model, messages,
  // generation parameters, sample) another run has answered: the answer is copied (reused_from =
  // the answering job) and the job becomes done, in one transaction. Returns how many.
  Result<std::int64_t> ReuseAnswers(std::int64_t run_id);
  // The service's saved start options of a run (a JSON object, never a secret), replaced on each
  // save. LoadRunOptions: NotFound when none were saved (e.g. a run started by `retort harvest`).
  Status SaveRunOptions(std::int64_t run_id, const std::string& options_json);
  Result<std::string> LoadRunOptions(std::int64_t run_id);

  // ---- the run lock: one harvester per run ----
  // Takes the lock for `owner` unless another owner heartbeated within `stale_after_ms`
  // (FailedPrecondition naming the holder). `owner_alive` may declare a holder dead earlier
  // (e.g. same host, pid gone).
  Status AcquireRunLock(std::int64_t run_id, const std::string& owner, Millis stale_after_ms,
                        const std::function<bool(const std::string&)>& owner_alive);
  Status HeartbeatRunLock(std::int64_t run_id, const std::string& owner);
  Status ReleaseRunLock(std::int64_t run_id, const std::string& owner);

  // ---- jobs (harvest) ----
  // Returns leased jobs to pending (call after taking the run lock). Returns how many.
  Result<std::int64_t> ResetLeasedJobs(std::int64_t run_id);
  // Leases up to `limit` pending jobs whose next attempt is due at `wall_now_ms`, in id order.
  Result<std::vector<LeasedJob>> LeaseJobs(std::int64_t run_id, int limit, Millis wall_now_ms);
  // Batch files (retort batch-file): calls `fn` for every pending job of the run in id order,
  // in pages of 1024 read under the lock (fn runs unlocked, so it may write elsewhere). The job
  // key is the canonical request hash (the batch line's custom_id).
  Status ForEachPendingJob(std::int64_t run_id,
                           const std::function<Status(const LeasedJob& job, const std::string& job_key)>& fn);
  // The job of the run with this job key: {id, state}, or nullopt when there is none.
  Result<std::optional<std::pair<std::int64_t, JobState>>> FindJobByKey(std::int64_t run_id, const std::string& key);
  // Earliest next_attempt_at of pending jobs, or nullopt when none is pending.
  Result<std::optional<Millis>> NextPendingAt(std::int64_t run_id);
  // Applies a batch of job updates in ONE transaction (group commit). A kDone for a job that
  // is already done changes nothing (exactly once). Fail-stop on commit failure.
  Status ApplyJobUpdates(std::int64_t run_id, const std::vector<JobUpdate>& updates);

  // ---- batch harvests ----
  // ForEachPendingJob without the jobs that an open batch (not yet ingested) carries.
  Status ForEachBatchableJob(std::int64_t run_id,
                             const std::function<Status(const LeasedJob& job, const std::string& job_key)>& fn);
  // Records a new batch (rec.id is set) and the jobs it carries, in one transaction.
  // FailedPrecondition when the run already has that round and part.
  Status RecordBatch(BatchRecord* rec, const std::vector<std::int64_t>& job_ids);
  // Stores the mutable fields of a recorded batch (step, provider ids, status, counts, error).
  Status UpdateBatch(const BatchRecord& rec);
  // The run's batches in (round, part) order.
  Result<std::vector<BatchRecord>> ListBatches(std::int64_t run_id);

  // ---- response browser (retort serve's dashboard) ----
  // One page of the run's answered (or failed) jobs, filtered; see BrowseQuery.
  Result<BrowsePage> BrowseResponses(std::int64_t run_id, const BrowseQuery& q);
  // The answered job `job_id` of the run with its raw stored body in *raw_body (may be null).
  // NotFound when the run has no answer for that job.
  Result<BrowseRow> GetResponse(std::int64_t run_id, std::int64_t job_id, std::string* raw_body);

  // ---- export ----
  // Calls `fn` for every stored response of the run, ordered by (prompt key, sample).
  // Streams: memory does not grow with the run. Stops at the first non-OK from `fn`.
  Status ForEachResponse(std::int64_t run_id, const std::function<Status(const ExportRow&)>& fn);
  // The same, reading only the columns `cols` asks for: a column left out is not read from the
  // database (an export never needs the raw body), and stays empty in the ExportRow.
  Status ForEachResponse(std::int64_t run_id, const ResponseColumns& cols,
                         const std::function<Status(const ExportRow&)>& fn);
  // The same in pages of at most 1024 rows, in order; `fn` may move the rows out of *page.
  // The store lock is not held while `fn` runs, so another thread may consume the pages.
  Status ForEachResponsePage(std::int64_t run_id, const ResponseColumns& cols,
                             const std::function<Status(std::vector<ExportRow>* page)>& fn);
  // The export's hot path: the same rows in the same order, as views into the current row
  // (no copies, no allocation per row), reading only the columns an export uses; logprobs
  // only when `with_logprobs`. Corruption when stored logprobs do not decode. `fn` runs with
  // the store lock held (the lock is released between pages of 1024 rows), so it must not call
  // into this Store.
  Status ForEachResponseView(std::int64_t run_id, bool with_logprobs,
                             const std::function<Status(const ExportRowView&)>& fn);
  Result<std::int64_t> BeginExport(std::int64_t run_id, const std::string& out_dir, const std::string& options_json);
  Status FinishExport(std::int64_t export_id, bool ok, const std::string& manifest_json, const std::string& error);
  Result<ExportInfo> GetExport(std::int64_t export_id);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace retort
