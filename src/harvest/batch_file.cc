// Batch files: write a run's pending jobs as OpenAI batch input, store batch output exactly once.
#include "retort/batch_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <unordered_set>

#include "prompts/line_reader.h"
#include "retort/clock.h"
#include "harvest/batch_ingest.h"
#include "harvest/run_start.h"
#include "teacher/batch_api.h"
#include "teacher/json_field.h"
#include "teacher/provider.h"

namespace retort {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxLineBytes = 64u << 20;  // one output line: a whole response body
constexpr std::size_t kMaxErrorBody = 64u << 10;
constexpr std::size_t kCommitEvery = 256;
constexpr std::size_t kMaxProblems = 20;
constexpr Millis kHeartbeatMs = 2'000;
constexpr const char* kEndpoint = "/v1/chat/completions";

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

Result<RunInfo> OpenAIRun(Store& store, const std::string& run) {
  Result<RunInfo> r = store.GetRun(run);
  if (!r.ok()) return r.status();
  if (r->spec.provider != "openai-chat")
    return Status::InvalidArgument("run '" + run + "' uses provider '" + r->spec.provider +
                                   "': batch files hold OpenAI chat requests (openai-chat runs only)");
  return r;
}


}  // namespace

Result<std::string> BatchRequestBody(const Provider& provider, const RunInfo& run, const LeasedJob& job) {
  ChatRequest req;
  req.model = run.spec.model;
  req.messages = job.messages;
  req.params = run.spec.params;
  req.params.stream = false;
  req.n = 1;
  if (req.params.seed && run.spec.params.samples > 1) req.params.seed = *req.params.seed + job.sample;
  return provider.BuildRequestBody(req);
}

Result<BatchFileWriteSummary> WriteBatchFile(Store& store, const std::string& run, const std::string& out_path) {
  Result<RunInfo> r = OpenAIRun(store, run);
  if (!r.ok()) return r.status();
  Result<std::unique_ptr<Provider>> provider = MakeProvider(r->spec.provider);
  if (!provider.ok()) return provider.status();
  const std::string tmp = out_path + ".tmp";
  File f(std::fopen(tmp.c_str(), "wb"));
  if (!f) return Status::IOError("cannot write '" + tmp + "': " + std::strerror(errno));
  BatchFileWriteSummary sum;
  Status st = store.ForEachPendingJob(r->id, [&](const LeasedJob& job, const std::string& key) -> Status {
    Result<std::string> body = BatchRequestBody(**provider, *r, job);
    if (!body.ok()) return body.status();
    const std::string line = "{\"custom_id\":\"" + key + "\",\"method\":\"POST\",\"url\":\"" + kEndpoint +
                             "\",\"body\":" + *body + "}\n";
    if (std::fwrite(line.data(), 1, line.size(), f.get()) != line.size())
      return Status::IOError("cannot write '" + tmp + "': " + std::strerror(errno));
    ++sum.written;
    sum.bytes += static_cast<std::int64_t>(line.size());
    return Status::OK();
  });
  if (st.ok() && (std::fflush(f.get()) != 0 || fsync(fileno(f.get())) != 0))
    st = Status::IOError("cannot write '" + tmp + "': " + std::strerror(errno));
  f.reset();
  if (st.ok() && std::rename(tmp.c_str(), out_path.c_str()) != 0)
    st = Status::IOError("cannot rename '" + tmp + "' to '" + out_path + "': " + std::strerror(errno));
  if (!st.ok()) {
    std::remove(tmp.c_str());
    return st;
  }
  return sum;
}

Result<BatchIngestSummary> IngestResultFile(Store& store, const RunInfo& run, const Provider& provider,
                                            const std::string& path,
                                            const std::function<BatchResultLine(std::string_view line)>& classify,
                                            const std::string& replica, LogSink* log,
                                            const std::function<Status()>& heartbeat) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return Status::IOError("cannot read '" + path + "': " + std::strerror(errno));
  Clock* clock = SystemClock();
  BatchIngestSummary sum;
  auto problem = [&](std::int64_t lineno, const std::string& what) {
    const std::string text = path + ":" + std::to_string(lineno) + ": " + what;
    if (sum.problems.size() < kMaxProblems) sum.problems.push_back(text);
    if (log) log->Write(LogLine{LogLevel::kWarn, run.spec.name, 0, 0, text});
  };
  std::vector<JobUpdate> batch;
  std::unordered_set<std::int64_t> in_file;  // jobs answered by an earlier line of this file
  Millis last_beat = clock->NowMs();
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::OK();
    Status st = store.ApplyJobUpdates(run.id, batch);
    batch.clear();
    if (st.ok() && heartbeat && clock->NowMs() - last_beat >= kHeartbeatMs) {
      last_beat = clock->NowMs();
      st = heartbeat();
    }
    return st;
  };

  LineReader reader(f.get(), kMaxLineBytes);
  Status st;
  for (std::int64_t lineno = 1; st.ok(); ++lineno) {
    std::string_view raw;
    bool too_long = false;
    Result<bool> more = reader.Next(&raw, &too_long);
    if (!more.ok()) {
      st = more.status().WithContext(path);
      break;
    }
    if (!*more) break;
    if (too_long) {
      ++sum.lines;
      ++sum.malformed;
      problem(lineno, "line longer than " + std::to_string(kMaxLineBytes >> 20) + " MiB: skipped");
      continue;
    }
    if (raw.find_first_not_of(" \t\r\n") == std::string_view::npos) continue;
    ++sum.lines;
    BatchResultLine line = classify(raw);
    if (line.outcome == BatchResultLine::Outcome::kMalformed && line.custom_id.empty()) {
      ++sum.malformed;
      problem(lineno, "custom_id: " + line.error + " (a line cut short?): skipped");
      continue;
    }
    const std::string& id = line.custom_id;
    Result<std::optional<std::pair<std::int64_t, JobState>>> job = store.FindJobByKey(run.id, id);
    if (!job.ok()) {
      st = job.status();
      break;
    }
    if (!*job) {
      ++sum.unknown;
      problem(lineno, "custom_id '" + ShortText(id, 80) + "' is no job of run '" + run.spec.name + "': skipped");
      continue;
    }
    const auto [job_id, state] = **job;
    if (in_file.count(job_id)) {
      ++sum.duplicate;
      problem(lineno, "custom_id '" + id + "' answered again in this file: ignored (the first answer is kept)");
      continue;
    }
    if (state == JobState::kDone) {
      ++sum.already_done;
      continue;
    }
    if (line.outcome == BatchResultLine::Outcome::kMalformed) {
      ++sum.malformed;
      problem(lineno, line.error + ": job left pending");
      continue;
    }
    if (line.outcome == BatchResultLine::Outcome::kRetry) {
      ++sum.left_pending;  // expired, cancelled, 5xx, 429: the next batch or harvest sends it again
      continue;
    }
    if (line.outcome == BatchResultLine::Outcome::kFailed) {
      JobUpdate u;
      u.kind = JobUpdate::Kind::kFailed;
      u.job_id = job_id;
      u.attempts = 1;
      u.error = line.error;
      u.error_status = line.status;
      u.error_body = line.body.substr(0, kMaxErrorBody);
      batch.push_back(std::move(u));
      in_file.insert(job_id);
      ++sum.failed;
      if (batch.size() >= kCommitEvery) st = flush();
      continue;
    }
    Result<ChatResponse> parsed = provider.ParseResponse(line.body, run.spec.params.split_think);
    if (!parsed.ok() || parsed->choices.empty()) {
      ++sum.malformed;
      problem(lineno, "response body: " +
                          (parsed.ok() ? std::string("no choices") : ShortText(parsed.status().message(), 200)) +
                          ": job left pending");
      continue;
    }
    const ChatChoice& ch = parsed->choices.front();
    JobUpdate u;
    u.kind = JobUpdate::Kind::kDone;
    u.job_id = job_id;
    ResponseRecord& rec = u.response;
    rec.job_id = job_id;
    rec.raw_body = std::move(line.body);
    rec.content = ch.content;
    rec.reasoning = ch.reasoning;
    rec.reasoning_source = ch.reasoning_source;
    rec.finish_reason = ch.finish_reason;
    rec.usage = parsed->usage;
    rec.http_status = 200;
    rec.request_id = line.request_id;
    rec.received_at_ms = clock->WallMs();
    rec.logprobs = ch.logprobs;
    rec.replica = replica;
    batch.push_back(std::move(u));
    in_file.insert(job_id);
    ++sum.stored;
    if (batch.size() >= kCommitEvery) st = flush();
  }
  if (st.ok()) st = flush();
  if (!st.ok()) return st;
  return sum;
}

Result<BatchIngestSummary> IngestBatchFile(Store& store, const std::string& run, const std::string& path,
                                           LogSink* log) {
  Result<RunInfo> r = OpenAIRun(store, run);
  if (!r.ok()) return r.status();
  Result<std::unique_ptr<Provider>> provider = MakeProvider(r->spec.provider);
  if (!provider.ok()) return provider.status();
  {
    File probe(std::fopen(path.c_str(), "rb"));
    if (!probe) return Status::IOError("cannot read '" + path + "': " + std::strerror(errno));
  }
  const std::string owner = RunLockOwnerId("batch-file");
  RETORT_RETURN_IF_ERROR(store.AcquireRunLock(r->id, owner, kRunLockStaleMs, RunLockHolderAlive));
  Result<BatchIngestSummary> sum =
      IngestResultFile(store, *r, **provider, path, &ClassifyOpenAIBatchLine, "batch-file", log,
                       [&] { return store.HeartbeatRunLock(r->id, owner); });
  Status st = sum.status();
  if (st.ok()) {
    Result<JobCounts> c = store.CountJobs(r->id);
    if (!c.ok()) st = c.status();
    else if (c->pending == 0 && c->leased == 0) st = store.SetRunState(r->id, RunState::kDone, "");
  }
  Status released = store.ReleaseRunLock(r->id, owner);
  if (!st.ok()) return st;
  RETORT_RETURN_IF_ERROR(released);
  return sum;
}

}  // namespace retort
