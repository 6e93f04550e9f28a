// BatchHarvester: batch harvests, step by step, recorded before each next step.
#include "harvest/batch_harvester.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "harvest/batch_ingest.h"
#include "harvest/run_start.h"
#include "teacher/batch_api.h"
#include "teacher/provider.h"

namespace retort {

namespace {

constexpr Millis kHeartbeatMs = 2'000;
constexpr Millis kFirstPollMs = 1'000;
// Consecutive failed calls (connection trouble, 429, 5xx) before the run stops; batches stay
// recorded and the next run goes on from where this one stopped.
constexpr int kMaxCallFailures = 8;
constexpr Millis kMaxCallBackoffMs = 60'000;
// A batch found in the provider's list may be the one a crashed create made if it was created
// this long before our first create call at most (clock skew between us and the provider).
constexpr Millis kCreateSkewMs = 120'000;

// Test hook: RETORT_TEST_CRASH_AT=<point> kills the process with SIGKILL at that point (the
// crash-recovery tests of issue #14). Points: before-upload, after-upload, after-create,
// mid-ingest.
void CrashPoint(const char* point) {
  static const char* at = std::getenv("RETORT_TEST_CRASH_AT");
  if (at != nullptr && std::strcmp(at, point) == 0) ::kill(::getpid(), SIGKILL);
}

std::string Plural(std::int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

struct BatchHarvester::Impl {
  Impl(Store* s, HarvestOptions o, LogSink* l, Clock* c) : store(s), opts(std::move(o)), log(l), clock(c) {}
  Store* store;
  HarvestOptions opts;
  LogSink* log;
  Clock* clock;

  std::unique_ptr<Provider> provider;
  std::unique_ptr<BatchApi> api;
  RunInfo run;
  std::string owner;
  std::string dir;  // where request and result files live
  Millis last_beat = 0;
  int rounds_started = 0;
  std::int64_t submitted = 0;  // requests written into batches by this command
  int call_failures = 0;
  std::map<std::int64_t, Millis> next_poll_at, poll_interval;  // by local batch id

  mutable std::mutex mu;  // guards the fields below
  std::condition_variable cv;
  bool stopping = false;
  std::string stop_reason;
  HarvestProgress progress;

  void Log(LogLevel level, const std::string& msg) {
    if (log) log->Write(LogLine{level, opts.run, 0, 0, msg});
  }
  bool Stopping() {
    std::lock_guard lk(mu);
    return stopping;
  }
  // Waits until `at` (clock ms) or a stop. False when stopping.
  bool WaitUntil(Millis at) {
    std::unique_lock lk(mu);
    while (!stopping) {
      const Millis now = clock->NowMs();
      if (now >= at) return true;
      cv.wait_for(lk, std::chrono::milliseconds(std::min<Millis>(at - now, 200)));
    }
    return false;
  }
  void RequestStop(const std::string& reason) {
    {
      std::lock_guard lk(mu);
      if (!stopping) stop_reason = reason;
      stopping = true;
    }
    cv.notify_all();
  }
  double Cost(std::int64_t in, std::int64_t out) const {
    return (static_cast<double>(in) * opts.price_input + static_cast<double>(out) * opts.price_output) / 1e6;
  }

  Status Setup();
  Status Heartbeat();
  Status Refresh();
  // One step of one batch. Sets *wait_until when the batch has nothing to do before then.
  Status Advance(BatchRecord& b);
  Status Upload(BatchRecord& b);
  Status Create(BatchRecord& b);
  Status FindCreated(BatchRecord& b, bool* found);
  Status Poll(BatchRecord& b);
  Status Ingest(BatchRecord& b);
  Status CancelOpen(std::vector<BatchRecord>& batches);
  // Writes the next parts of round `round`, starting at part `first_part`. The number written.
  Result<int> Plan(int round, int first_part);
  // A failed call: back off (true) or give up (false, with the run's stop status in *why).
  bool Backoff(const BatchCallError& e, Status* why);
};

Status BatchHarvester::Impl::Setup() {
  RETORT_RETURN_IF_ERROR(opts.Validate());
  Result<std::unique_ptr<Provider>> p = MakeProvider(opts.provider);
  if (!p.ok()) return p.status().WithContext("--provider");
  provider = std::move(*p);
  const std::string key_env = opts.api_key_env.empty() ? std::string(provider->DefaultApiKeyEnv()) : opts.api_key_env;
  const char* key = std::getenv(key_env.c_str());
  BatchApiOptions bo;
  bo.provider = opts.provider;
  bo.transport.base_url = opts.base_urls.front();
  bo.transport.timeout_s = opts.timeout_s;
  bo.transport.idle_timeout_s = opts.idle_timeout_s;
  bo.transport.ca_file = opts.ca_file;
  bo.transport.insecure = opts.insecure;
  bo.auth_headers = provider->RequestHeaders(key ? key : "");
  Result<std::unique_ptr<BatchApi>> a = MakeBatchApi(bo);
  if (!a.ok()) return a.status().WithContext("--base-url");
  api = std::move(*a);

  Result<RunStart> start = StartRun(store, opts, "batch");
  if (!start.ok()) return start.status();
  run = start->run;
  owner = start->owner;
  last_beat = clock->NowMs();
  if (opts.insecure) {
    RETORT_RETURN_IF_ERROR(store->MarkRunTlsInsecure(run.id));
    Log(LogLevel::kWarn, "--insecure: the teacher's TLS certificate is not verified; recorded with the run");
  }
  if (opts.retry_failed)
    Log(LogLevel::kInfo, "--retry-failed: " + Plural(start->retried, "failed job", "failed jobs") + " returned to pending");
  if (start->reused > 0)
    Log(LogLevel::kInfo, Plural(start->reused, "job", "jobs") + " filled from identical requests answered by other runs");
  dir = store->path() + ".batches/run-" + std::to_string(run.id);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create '" + dir + "' for batch files: " + ec.message());
  Result<RunTotals> t = store->Totals(run.id);
  if (!t.ok()) return t.status();
  std::lock_guard lk(mu);
  progress.total_jobs = t->jobs.total();
  progress.state = "running";
  return Status::OK();
}

Status BatchHarvester::Impl::Heartbeat() {
  if (clock->NowMs() - last_beat < kHeartbeatMs) return Status::OK();
  last_beat = clock->NowMs();
  return store->HeartbeatRunLock(run.id, owner);
}

Status BatchHarvester::Impl::Refresh() {
  Result<RunTotals> t = store->Totals(run.id);
  if (!t.ok()) return t.status();
  std::lock_guard lk(mu);
  progress.total_jobs = t->jobs.total();
  progress.done = t->jobs.done;
  progress.failed = t->jobs.failed;
  progress.pending = t->jobs.pending + t->jobs.leased;
  progress.reused = t->reused;
  progress.prompt_tokens = t->prompt_tokens;
  progress.completion_tokens = t->completion_tokens;
  progress.reasoning_tokens = t->reasoning_tokens;
  progress.cost = Cost(t->prompt_tokens, t->completion_tokens);
  progress.bytes_stored = t->response_bytes;
  return Status::OK();
}

bool BatchHarvester::Impl::Backoff(const BatchCallError& e, Status* why) {
  if (!e.retryable || ++call_failures > kMaxCallFailures) {
    *why = e.status;
    return false;
  }
  const Millis wait = e.retry_after_s > 0
                          ? static_cast<Millis>(e.retry_after_s * 1000)
                          : std::min<Millis>(kMaxCallBackoffMs, kFirstPollMs << std::min(call_failures, 10));
  Log(LogLevel::kWarn, e.status.message() + " (retrying in " + std::to_string(wait / 1000.0).substr(0, 4) + " s)");
  {
    std::lock_guard lk(mu);
    progress.last_error = e.status.message();
    ++progress.errors;
  }
  WaitUntil(clock->NowMs() + wait);
  return true;
}

Result<int> BatchHarvester::Impl::Plan(int round, int first_part) {
  const std::int64_t max_requests = opts.batch_max_requests > 0 ? std::min(opts.batch_max_requests, api->MaxRequests())
                                                                : api->MaxRequests();
  const std::int64_t max_bytes =
      opts.batch_max_bytes > 0 ? std::min(opts.batch_max_bytes, api->MaxBytes()) : api->MaxBytes();
  const std::string head = api->FileHead(), sep = api->Separator(), tail = api->FileTail();
  int written = 0;
  for (int part = first_part;; ++part) {
    if (Stopping()) return written;
    if (opts.max_requests > 0 && submitted >= opts.max_requests) return written;
    BatchRecord rec;
    rec.run_id = run.id;
    rec.round = round;
    rec.part = part;
    rec.provider = opts.provider;
    rec.step = "written";
    rec.input_path = dir + "/r" + std::to_string(round) + "-p" + std::to_string(part) + ".jsonl";
    rec.tag = "retort:" + std::to_string(run.id) + ":" + std::to_string(run.created_at_ms) + ":r" +
              std::to_string(round) + "-p" + std::to_string(part);
    const std::string tmp = rec.input_path + ".tmp";
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
    if (!f) return Status::IOError("cannot write '" + tmp + "': " + std::strerror(errno));
    std::vector<std::int64_t> ids;
    std::int64_t bytes = static_cast<std::int64_t>(head.size() + tail.size());
    const Status full = Status::Cancelled("part full");
    auto put = [&](const std::string& s) {
      return std::fwrite(s.data(), 1, s.size(), f.get()) == s.size();
    };
    if (!put(head)) return Status::IOError("cannot write '" + tmp + "': " + std::strerror(errno));
    Status st = store->ForEachBatchableJob(run.id, [&](const LeasedJob& job, const std::string& key) -> Status {
      if (static_cast<std::int64_t>(ids.size()) >= max_requests) return full;
      if (opts.max_requests > 0 && submitted + static_cast<std::int64_t>(ids.size()) >= opts.max_requests) return full;
      Result<std::string> body = BatchRequestBody(*provider, run, job);
      if (!body.ok()) return body.status();
      const std::string entry = api->Entry(key, *body);
      const std::int64_t add = static_cast<std::int64_t>(entry.size() + (ids.empty() ? 0 : sep.size()));
      if (bytes + add > max_bytes) {
        if (ids.empty())
          return Status::InvalidArgument("the request of job " + std::to_string(job.id) + " alone (" +
                                         std::to_string(add) + " bytes) exceeds the batch size limit of " +
                                         std::to_string(max_bytes) + " bytes");
        return full;
      }
      if ((!ids.empty() && !put(sep)) || !put(entry))
        return Status::IOError("cannot write '" + tmp + "': " + std::strerror(errno));
      bytes += add;
      ids.push_back(job.id);
      return Status::OK();
    });
    if (!st.ok() && st.code() != StatusCode::kCancelled) {
      std::remove(tmp.c_str());
      return st;
    }
    if (ids.empty()) {
      f.reset();
      std::remove(tmp.c_str());
      return written;
    }
    if (!put(tail) || std::fflush(f.get()) != 0 || fsync(fileno(f.get())) != 0)
      return Status::IOError("cannot write '" + tmp + "': " + std::strerror(errno));
    f.reset();
    if (std::rename(tmp.c_str(), rec.input_path.c_str()) != 0)
      return Status::IOError("cannot rename '" + tmp + "': " + std::strerror(errno));
    rec.requests = static_cast<std::int64_t>(ids.size());
    rec.bytes = bytes;
    RETORT_RETURN_IF_ERROR(store->RecordBatch(&rec, ids));
    submitted += rec.requests;
    ++written;
    Log(LogLevel::kInfo, "batch " + std::to_string(round) + "." + std::to_string(part) + ": " +
                             Plural(rec.requests, "request", "requests") + " (" + std::to_string(bytes) +
                             " bytes) written to " + rec.input_path);
    RETORT_RETURN_IF_ERROR(Heartbeat());
    if (st.ok()) return written;  // every batchable job is in a batch now
  }
}

Status BatchHarvester::Impl::Upload(BatchRecord& b) {
  BatchCallError e;
  Result<std::string> id = api->Upload(b.input_path, &e);
  CrashPoint("after-upload");
  if (!id.ok()) return id.status();
  call_failures = 0;
  b.file_id = *id;
  b.step = "uploaded";
  RETORT_RETURN_IF_ERROR(store->UpdateBatch(b));
  Log(LogLevel::kInfo, "batch " + std::to_string(b.round) + "." + std::to_string(b.part) + ": uploaded as " + b.file_id);
  return Status::OK();
}

// The provider's batches are searched for one this run created but did not record (a crash
// between the create call and its record): OpenAI by the metadata tag; Anthropic, which keeps
// no metadata, by creation time (not before our first create call, less clock skew) and request
// count, among ids no batch of this run has recorded.
Status BatchHarvester::Impl::FindCreated(BatchRecord& b, bool* found) {
  *found = false;
  Result<std::vector<BatchRecord>> all = store->ListBatches(run.id);
  if (!all.ok()) return all.status();
  std::set<std::string> known;
  for (const BatchRecord& o : *all)
    if (!o.batch_id.empty()) known.insert(o.batch_id);
  const bool by_tag = opts.provider == "openai-chat";
  const Millis since = b.create_started_ms - kCreateSkewMs;
  BatchState match;
  BatchCallError e;
  Status st = api->List(
      [&](const BatchState& s) {
        if (s.created_at_ms > 0 && s.created_at_ms < since - 10 * kCreateSkewMs) return false;  // older: stop
        if (known.count(s.id)) return true;
        const bool same = by_tag ? s.tag == b.tag
                                 : s.created_at_ms >= since && s.total_requests == b.requests;
        if (same) match = s;  // newest first: the last match is the earliest, the first create
        return true;
      },
      &e);
  if (!st.ok()) return st;
  if (match.id.empty()) return Status::OK();
  *found = true;
  b.batch_id = match.id;
  b.provider_status = match.status;
  b.counts_json = match.counts_json;
  b.step = "created";
  RETORT_RETURN_IF_ERROR(store->UpdateBatch(b));
  Log(LogLevel::kInfo, "batch " + std::to_string(b.round) + "." + std::to_string(b.part) + ": found " + b.batch_id +
                           ", created before the last stop, at the provider: not created again");
  return Status::OK();
}

Status BatchHarvester::Impl::Create(BatchRecord& b) {
  if (b.step == "creating") {  // a create was sent before: did it make a batch?
    bool found = false;
    RETORT_RETURN_IF_ERROR(FindCreated(b, &found));
    if (found) return Status::OK();
  } else {
    b.step = "creating";
    b.create_started_ms = clock->WallMs();
    RETORT_RETURN_IF_ERROR(store->UpdateBatch(b));  // durably before the call
  }
  BatchCallError e;
  Result<BatchState> s = api->Create(b.file_id, b.input_path, b.tag, &e);
  CrashPoint("after-create");
  if (!s.ok()) return s.status();
  call_failures = 0;
  b.batch_id = s->id;
  b.provider_status = s->status;
  b.counts_json = s->counts_json;
  b.step = "created";
  RETORT_RETURN_IF_ERROR(store->UpdateBatch(b));
  Log(LogLevel::kInfo, "batch " + std::to_string(b.round) + "." + std::to_string(b.part) + ": created " + b.batch_id +
                           " (" + Plural(b.requests, "request", "requests") + ")");
  return Status::OK();
}

Status BatchHarvester::Impl::Poll(BatchRecord& b) {
  BatchCallError e;
  Result<BatchState> s = api->Get(b.batch_id, &e);
  if (!s.ok()) return s.status();
  call_failures = 0;
  const bool changed = s->status != b.provider_status || s->counts_json != b.counts_json;
  b.provider_status = s->status;
  b.counts_json = s->counts_json;
  if (s->ended) {
    b.step = "ended";
    b.output_file_id = s->output_file_id;
    b.error_file_id = s->error_file_id;
    if (s->failed) b.error = "the provider rejected the batch: " + (s->errors.empty() ? s->status : s->errors);
    Log(b.error.empty() ? LogLevel::kInfo : LogLevel::kWarn,
        "batch " + std::to_string(b.round) + "." + std::to_string(b.part) + ": " + b.batch_id + " " + s->status +
            (b.error.empty() ? "" : ": " + b.error) + " " + s->counts_json);
  }
  if (changed || s->ended) RETORT_RETURN_IF_ERROR(store->UpdateBatch(b));
  return Status::OK();
}

Status BatchHarvester::Impl::Ingest(BatchRecord& b) {
  const std::string results = b.input_path + ".results";
  BatchState s;
  s.id = b.batch_id;
  s.output_file_id = b.output_file_id;
  s.error_file_id = b.error_file_id;
  BatchIngestSummary sum;
  if (!(b.output_file_id.empty() && b.error_file_id.empty() && opts.provider == "openai-chat")) {
    BatchCallError e;
    Result<std::int64_t> n = api->Download(s, results, &e);
    if (!n.ok()) return n.status();
    call_failures = 0;
    std::int64_t lines = 0;
    Result<BatchIngestSummary> r = IngestResultFile(
        *store, run, *provider, results,
        [this, &lines](std::string_view line) {
          if (++lines == 300) CrashPoint("mid-ingest");  // after the first commit (256 lines)
          return opts.provider == "openai-chat" ? ClassifyOpenAIBatchLine(line) : ClassifyAnthropicBatchLine(line);
        },
        "batch:" + b.batch_id, log, [this] { return Heartbeat(); });
    if (!r.ok()) return r.status();
    sum = *r;
  }
  b.step = "ingested";
  RETORT_RETURN_IF_ERROR(store->UpdateBatch(b));
  if (!b.error.empty()) return Status::InvalidArgument("batch " + b.batch_id + ": " + b.error);  // the same file would fail again
  std::remove(results.c_str());
  std::remove(b.input_path.c_str());
  Log(LogLevel::kInfo, "batch " + std::to_string(b.round) + "." + std::to_string(b.part) + ": " + b.batch_id +
                           " stored: " + std::to_string(sum.stored) + " answers, " + std::to_string(sum.failed) +
                           " failed, " + std::to_string(sum.left_pending) + " left pending, " +
                           std::to_string(sum.already_done) + " already done, " + std::to_string(sum.malformed) +
                           " unreadable lines");
  {
    std::lock_guard lk(mu);
    progress.requests += sum.stored + sum.failed;
  }
  return Refresh();
}

Status BatchHarvester::Impl::Advance(BatchRecord& b) {
  if (b.step == "written") {
    CrashPoint("before-upload");  // the file is written and recorded; nothing sent yet
    if (api->NeedsUpload()) return Upload(b);
    return Create(b);
  }
  if (b.step == "uploaded" || b.step == "creating") return Create(b);
  if (b.step == "created") {
    const Millis now = clock->NowMs();
    auto it = next_poll_at.find(b.id);
    if (it != next_poll_at.end() && now < it->second) return Status::OK();
    RETORT_RETURN_IF_ERROR(Poll(b));
    Millis& iv = poll_interval[b.id];
    iv = iv == 0 ? kFirstPollMs : std::min<Millis>(iv * 2, static_cast<Millis>(opts.batch_poll_s * 1000));
    next_poll_at[b.id] = clock->NowMs() + iv;
    return Status::OK();
  }
  if (b.step == "ended") return Ingest(b);
  return Status::OK();
}

Status BatchHarvester::Impl::CancelOpen(std::vector<BatchRecord>& batches) {
  for (BatchRecord& b : batches) {
    if (b.step == "creating") {  // was it created before the last stop? Then it is cancelled too
      bool found = false;
      RETORT_RETURN_IF_ERROR(FindCreated(b, &found));
    }
    if (b.step == "written" || b.step == "uploaded" || b.step == "creating") {
      // Never submitted: nothing to cancel; its jobs are free again.
      b.step = "ingested";
      b.error = "not submitted: cancelled (--cancel-batches)";
      RETORT_RETURN_IF_ERROR(store->UpdateBatch(b));
      std::remove(b.input_path.c_str());
      continue;
    }
    if (b.step != "created") continue;
    for (;;) {
      BatchCallError e;
      Result<BatchState> s = api->Cancel(b.batch_id, &e);
      if (s.ok()) {
        b.provider_status = s->status;
        RETORT_RETURN_IF_ERROR(store->UpdateBatch(b));
        Log(LogLevel::kInfo, "batch " + b.batch_id + ": cancel requested (" + s->status + ")");
        break;
      }
      if (!e.retryable) {  // e.g. 409: it ended meanwhile; polling sees it
        Log(LogLevel::kWarn, "batch " + b.batch_id + ": " + e.status.message());
        break;
      }
      Status why;
      if (!Backoff(e, &why)) return why;
    }
  }
  return Status::OK();
}

BatchHarvester::BatchHarvester(Store* store, HarvestOptions opts, LogSink* log, Clock* clock)
    : impl_(std::make_unique<Impl>(store, std::move(opts), log, clock ? clock : SystemClock())) {}
BatchHarvester::~BatchHarvester() = default;

void BatchHarvester::Stop(const std::string& reason) { impl_->RequestStop(reason); }

HarvestProgress BatchHarvester::Progress() const {
  std::lock_guard lk(impl_->mu);
  return impl_->progress;
}

Result<HarvestSummary> BatchHarvester::Run() {
  Impl& m = *impl_;
  if (Status s = m.Setup(); !s.ok()) {
    // A step after the run started failed: give the lock back (see Harvester::Run).
    if (!m.owner.empty()) (void)m.store->ReleaseRunLock(m.run.id, m.owner);
    return s;
  }
  RETORT_RETURN_IF_ERROR(m.store->SetRunState(m.run.id, RunState::kRunning, ""));
  RETORT_RETURN_IF_ERROR(m.Refresh());
  const Millis started = m.clock->NowMs();
  Status why;           // a stop with an error
  std::string reason;   // a stop without one
  bool cancelled_sent = false;
  while (why.ok() && reason.empty()) {
    if (m.Stopping()) break;
    Status hb = m.Heartbeat();
    if (!hb.ok()) {
      why = hb;
      break;
    }
    Result<std::vector<BatchRecord>> batches = m.store->ListBatches(m.run.id);
    if (!batches.ok()) {
      why = batches.status();
      break;
    }
    if (m.opts.cancel_batches && !cancelled_sent) {
      why = m.CancelOpen(*batches);
      cancelled_sent = true;
      continue;
    }
    bool any_open = false, all_open_written = true;
    int last_round = 0, last_part = 0;
    Millis wake = m.clock->NowMs() + static_cast<Millis>(m.opts.batch_poll_s * 1000);
    for (BatchRecord& b : *batches) {
      if (b.round > last_round || (b.round == last_round && b.part > last_part)) {
        last_round = b.round;
        last_part = b.part;
      }
      if (b.step == "ingested") continue;
      any_open = true;
      if (b.step != "written") all_open_written = false;
    }
    // A round whose parts were being written when the last run stopped is written to the end
    // before anything is sent (its recorded parts are all still "written").
    const bool resume_planning = any_open && all_open_written && m.rounds_started == 0 && !m.opts.cancel_batches;
    if (!any_open || resume_planning) {
      Result<JobCounts> c = m.store->CountJobs(m.run.id);
      if (!c.ok()) {
        why = c.status();
        break;
      }
      if (!any_open && c->pending == 0 && c->leased == 0) break;  // all done or failed
      if (!any_open && m.opts.cancel_batches) {
        reason = "batches cancelled (--cancel-batches); " + Plural(c->pending, "job", "jobs") + " still pending";
        break;
      }
      if (!any_open && m.opts.max_requests > 0 && m.submitted >= m.opts.max_requests) {
        reason = "request budget reached (--max-requests)";
        break;
      }
      int round = resume_planning ? last_round : last_round + 1;
      if (!resume_planning) {
        if (m.rounds_started >= m.opts.batch_max_rounds) {
          reason = Plural(c->pending, "job", "jobs") + " still without an answer after " +
                   Plural(m.rounds_started, "batch round", "batch rounds") +
                   " (--batch-max-rounds); re-run the same command to submit them again";
          break;
        }
      }
      ++m.rounds_started;
      Result<int> n = m.Plan(round, resume_planning ? last_part + 1 : 1);
      if (!n.ok()) {
        why = n.status();
        break;
      }
      if (*n == 0 && !any_open) {
        reason = "no job to submit";
        break;
      }
      continue;
    }
    // Advance every open batch by one step.
    for (BatchRecord& b : *batches) {
      if (b.step == "ingested" || m.Stopping()) continue;
      Status st = m.Advance(b);
      if (!st.ok()) {
        BatchCallError e;
        e.status = st;
        e.retryable = st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kCorruption;
        if (st.code() == StatusCode::kInvalidArgument && (b.step == "creating" || b.step == "uploaded" ||
                                                          (b.step == "written" && m.api->NeedsUpload()))) {
          // The provider refused the batch itself (e.g. a request it cannot take): record it as
          // done with nothing so its jobs are free again, and stop: the same file would be refused again.
          b.error = st.message();
          b.step = "ingested";
          (void)m.store->UpdateBatch(b);
        }
        if (!m.Backoff(e, &why)) break;
      }
      if (b.step == "created") {
        auto it = m.next_poll_at.find(b.id);
        if (it != m.next_poll_at.end()) wake = std::min(wake, it->second);
      } else if (b.step != "ingested") {
        wake = m.clock->NowMs();  // more to do at once
      }
    }
    if (!why.ok()) break;
    m.WaitUntil(std::min(wake, m.clock->NowMs() + kHeartbeatMs));
  }

  HarvestSummary sum;
  (void)m.Refresh();
  Result<JobCounts> counts = m.store->CountJobs(m.run.id);
  Result<std::vector<BatchRecord>> left = m.store->ListBatches(m.run.id);
  std::int64_t open = 0;
  if (left.ok())
    for (const BatchRecord& b : *left) open += b.step != "ingested";
  const bool finished = counts.ok() && counts->pending == 0 && counts->leased == 0 && open == 0;
  {
    std::lock_guard lk(m.mu);
    if (reason.empty() && m.stopping) reason = m.stop_reason;
    m.progress.elapsed_s = static_cast<double>(m.clock->NowMs() - started) / 1000;
    m.progress.state = finished ? "done" : "stopped";
    sum.progress = m.progress;
  }
  if (!finished && open > 0 && why.ok())
    reason += (reason.empty() ? "" : "; ") + Plural(open, "batch is", "batches are") +
              " still open at the provider: re-run the same command to collect them";
  sum.final_state = finished ? RunState::kDone : RunState::kStopped;
  sum.stop_reason = finished ? "" : (why.ok() ? reason : why.message());
  if (why.code() != StatusCode::kIOError && why.code() != StatusCode::kCorruption) {
    (void)m.store->SetRunState(m.run.id, sum.final_state, sum.stop_reason);
    (void)m.store->ReleaseRunLock(m.run.id, m.owner);
  }
  if (!why.ok()) return why;
  return sum;
}

}  // namespace retort
