// Store: jobs, responses (group commit), export reads and the exports table.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "retort/store.h"
#include "store/corpus_json.h"
#include "store/store_impl.h"

namespace retort {

namespace {
// A job row selected as (id, prompt_id, sample, attempts, messages, ...).
Result<LeasedJob> ReadJobRow(SqliteStmt& row) {
  LeasedJob j;
  j.id = row.Int(0);
  j.prompt_id = row.Int(1);
  j.sample = static_cast<int>(row.Int(2));
  j.attempts = static_cast<int>(row.Int(3));
  Result<std::vector<Message>> m = MessagesFromJson(row.View(4));
  if (!m.ok()) return m.status();
  j.messages = std::move(*m);
  return j;
}

// What one commit adds to a run's row of run_totals (migration 0007): summed while the
// responses are inserted, written in one statement at the end of the same transaction.
struct RunTotalsDelta {
  std::int64_t responses = 0, prompt = 0, completion = 0, reasoning = 0, bytes = 0;
  Millis first = 0, last = 0;

  void Add(const ResponseRecord& r, Millis received) {
    if (responses++ == 0) first = last = received;
    first = std::min(first, received);
    last = std::max(last, received);
    prompt += std::max<std::int64_t>(0, r.usage.prompt_tokens);
    completion += std::max<std::int64_t>(0, r.usage.completion_tokens);
    reasoning += std::max<std::int64_t>(0, r.usage.reasoning_tokens);
    bytes += static_cast<std::int64_t>(r.raw_body.size());
  }
  Status Apply(SqliteDb& db, std::int64_t run_id) const {
    if (responses == 0) return Status::OK();
    Result<SqliteStmt> up = db.Cached(
        "INSERT INTO run_totals(run_id, responses, reused, prompt_tokens, completion_tokens, reasoning_tokens, "
        "body_bytes, first_received_at, last_received_at) VALUES(?1,?2,0,?3,?4,?5,?6,?7,?8) "
        "ON CONFLICT(run_id) DO UPDATE SET responses = responses + ?2, prompt_tokens = prompt_tokens + ?3, "
        "completion_tokens = completion_tokens + ?4, reasoning_tokens = reasoning_tokens + ?5, "
        "body_bytes = body_bytes + ?6, first_received_at = MIN(first_received_at, ?7), "
        "last_received_at = MAX(last_received_at, ?8)");
    if (!up.ok()) return up.status();
    return up->Bind(1, run_id).Bind(2, responses).Bind(3, prompt).Bind(4, completion).Bind(5, reasoning)
        .Bind(6, bytes).Bind(7, first).Bind(8, last).Run();
  }
};

// Recounts a run's row of run_totals from its responses (after a bulk copy: Store::ReuseAnswers),
// with the aggregate migration 0007 fills existing runs in with.
Status RecountRunTotals(SqliteDb& db, std::int64_t run_id) {
  Result<SqliteStmt> del = db.Cached("DELETE FROM run_totals WHERE run_id = ?");
  if (!del.ok()) return del.status();
  RETORT_RETURN_IF_ERROR(del->Bind(1, run_id).Run());
  Result<SqliteStmt> ins = db.Cached(
      "INSERT INTO run_totals(run_id, responses, reused, prompt_tokens, completion_tokens, reasoning_tokens, "
      "body_bytes, first_received_at, last_received_at) "
      "SELECT run_id, COUNT(*), COUNT(reused_from), "
      "COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(prompt_tokens, 0) END), 0), "
      "COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(completion_tokens, 0) END), 0), "
      "COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(reasoning_tokens, 0) END), 0), "
      "COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0), MIN(received_at), MAX(received_at) "
      "FROM responses WHERE run_id = ?1 GROUP BY run_id");
  if (!ins.ok()) return ins.status();
  return ins->Bind(1, run_id).Run();
}
}  // namespace

Result<JobCounts> Store::CountJobs(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached("SELECT state, COUNT(*) FROM jobs WHERE run_id = ? GROUP BY state");
  if (!st.ok()) return st.status();
  st->Bind(1, run_id);
  JobCounts c;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    std::optional<JobState> s = ParseJobState(st->Text(0));
    std::int64_t n = st->Int(1);
    if (!s) return Status::Corruption("jobs.state has unknown value '" + st->Text(0) + "'");
    switch (*s) {
      case JobState::kPending: c.pending = n; break;
      case JobState::kLeased: c.leased = n; break;
      case JobState::kDone: c.done = n; break;
      case JobState::kFailed: c.failed = n; break;
    }
  }
  return c;
}

Result<RunTotals> Store::Totals(std::int64_t run_id) {
  Result<JobCounts> counts = CountJobs(run_id);
  if (!counts.ok()) return counts.status();
  Result<RunTotals> t = ResponseTotals(run_id);
  if (t.ok()) t->jobs = *counts;
  return t;
}

Result<RunTotals> Store::ResponseTotals(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  // Kept as responses are stored (migration 0007, ApplyJobUpdates): one row, however many responses.
  Result<SqliteStmt> st = impl_->db->Cached(
      "SELECT prompt_tokens, completion_tokens, reasoning_tokens, body_bytes, first_received_at, last_received_at, "
      "reused FROM run_totals WHERE run_id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, run_id);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  RunTotals t;
  if (!*row) return t;  // no response yet
  t.prompt_tokens = st->Int(0);
  t.completion_tokens = st->Int(1);
  t.reasoning_tokens = st->Int(2);
  t.response_bytes = st->Int(3);
  t.first_received_ms = st->Int(4);
  t.last_received_ms = st->Int(5);
  t.reused = st->Int(6);
  return t;
}

Result<std::vector<FailedJobInfo>> Store::RecentFailures(std::int64_t run_id, int limit) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(
      "SELECT j.id, p.prompt_key, j.sample, COALESCE(j.last_error,''), COALESCE(j.error_status,0) FROM jobs j "
      "JOIN prompts p ON p.id = j.prompt_id WHERE j.run_id = ? AND (j.state = 'failed' OR j.last_error IS NOT NULL) "
      "ORDER BY j.updated_at DESC, j.id DESC LIMIT ?");
  if (!st.ok()) return st.status();
  st->Bind(1, run_id).Bind(2, limit);
  std::vector<FailedJobInfo> out;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(FailedJobInfo{st->Int(0), st->Text(1), static_cast<int>(st->Int(2)), st->Text(3),
                                static_cast<int>(st->Int(4))});
  }
  return out;
}

Result<std::int64_t> Store::RetryFailedJobs(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  std::int64_t n = 0;
  Status s = impl_->Txn([&]() -> Status {
    const Millis now = impl_->Now();
    Result<SqliteStmt> keep = impl_->db->Cached(
        "INSERT INTO job_errors(job_id, run_id, attempts, error, error_status, error_body, failed_at, retried_at) "
        "SELECT id, run_id, attempts, last_error, error_status, error_body, updated_at, ? FROM jobs "
        "WHERE run_id = ? AND state = 'failed'");
    if (!keep.ok()) return keep.status();
    RETORT_RETURN_IF_ERROR(keep->Bind(1, now).Bind(2, run_id).Run());
    Result<SqliteStmt> back = impl_->db->Cached(
        "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = 0, last_error = NULL, error_status = NULL, "
        "error_body = NULL, updated_at = ? WHERE run_id = ? AND state = 'failed'");
    if (!back.ok()) return back.status();
    RETORT_RETURN_IF_ERROR(back->Bind(1, now).Bind(2, run_id).Run());
    n = impl_->db->Changes();
    return Status::OK();
  });
  if (!s.ok()) return s;
  return n;
}

Result<std::vector<std::string>> Store::JobErrorHistory(std::int64_t job_id) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached("SELECT COALESCE(error, '') FROM job_errors WHERE job_id = ? ORDER BY id");
  if (!st.ok()) return st.status();
  st->Bind(1, job_id);
  std::vector<std::string> out;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(st->Text(0));
  }
  return out;
}

Result<std::int64_t> Store::ReuseAnswers(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  // Cheap first: another run of the same provider and model must have answers at all (a new
  // model's run of 10M jobs does not look up 10M keys for nothing).
  {
    Result<SqliteStmt> any = impl_->db->Cached(
        "SELECT 1 FROM runs o JOIN runs r ON r.id = ? WHERE o.id != r.id AND o.provider = r.provider AND "
        "o.model = r.model AND EXISTS (SELECT 1 FROM responses x WHERE x.run_id = o.id) LIMIT 1");
    if (!any.ok()) return any.status();
    any->Bind(1, run_id);
    Result<bool> has = any->Step();
    if (!has.ok()) return has.status();
    if (!*has) return std::int64_t{0};
  }  // reset before the write: a statement left stepping pins a read snapshot, and upgrading it
     // to a write fails at once with "database is locked" while another retort writes (issue #12)
  std::int64_t n = 0;
  Status s = impl_->Txn([&]() -> Status {
    // One answering job per key (the first), the original when that answer was itself reused.
    Result<SqliteStmt> copy = impl_->db->Cached(
        "INSERT INTO responses(job_id, run_id, body, content, reasoning, reasoning_source, finish_reason, "
        "prompt_tokens, completion_tokens, reasoning_tokens, latency_ms, first_token_ms, http_status, request_id, "
        "replica, received_at, logprobs, reused_from) "
        "SELECT j.id, j.run_id, r.body, r.content, r.reasoning, r.reasoning_source, r.finish_reason, r.prompt_tokens, "
        "r.completion_tokens, r.reasoning_tokens, r.latency_ms, r.first_token_ms, r.http_status, r.request_id, "
        "r.replica, r.received_at, r.logprobs, COALESCE(r.reused_from, r.job_id) "
        "FROM jobs j INDEXED BY jobs_by_state JOIN runs cur ON cur.id = j.run_id JOIN responses r ON r.job_id = "
        "(SELECT d.id FROM jobs d INDEXED BY jobs_done_by_key JOIN runs src ON src.id = d.run_id "
        " WHERE d.job_key = j.job_key AND d.state = 'done' AND d.run_id != j.run_id AND "
        // What the job key leaves out but the stored answer depends on: --split-think moves a
        // <think> block out of the content; --n-per-request sends one seed for all samples.
        " COALESCE(json_extract(src.params, '$.split_think'), 0) = "
        "   COALESCE(json_extract(cur.params, '$.split_think'), 0) AND "
        " COALESCE(json_extract(src.params, '$.n_per_request'), 0) = "
        "   COALESCE(json_extract(cur.params, '$.n_per_request'), 0) "
        " ORDER BY d.id LIMIT 1) "
        "WHERE j.run_id = ?1 AND j.state = 'pending'");
    if (!copy.ok()) return copy.status();
    RETORT_RETURN_IF_ERROR(copy->Bind(1, run_id).Run());
    n = impl_->db->Changes();
    if (n == 0) return Status::OK();
    Result<SqliteStmt> done = impl_->db->Cached(
        "UPDATE jobs SET state = 'done', last_error = NULL, updated_at = ? WHERE run_id = ? AND state = 'pending' "
        "AND EXISTS (SELECT 1 FROM responses r WHERE r.job_id = jobs.id)");
    if (!done.ok()) return done.status();
    RETORT_RETURN_IF_ERROR(done->Bind(1, impl_->Now()).Bind(2, run_id).Run());
    if (impl_->db->Changes() != n)
      return Status::Internal("reuse: " + std::to_string(n) + " answers copied but " +
                              std::to_string(impl_->db->Changes()) + " jobs marked done");
    return RecountRunTotals(*impl_->db, run_id);
  });
  if (!s.ok()) return s;
  return n;
}

Result<std::int64_t> Store::ResetLeasedJobs(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  std::int64_t n = 0;
  Status s = impl_->Txn([&]() -> Status {
    Result<SqliteStmt> st =
        impl_->db->Cached("UPDATE jobs SET state = 'pending', updated_at = ? WHERE run_id = ? AND state = 'leased'");
    if (!st.ok()) return st.status();
    RETORT_RETURN_IF_ERROR(st->Bind(1, impl_->Now()).Bind(2, run_id).Run());
    n = impl_->db->Changes();
    return Status::OK();
  });
  if (!s.ok()) return s;
  return n;
}

Result<std::vector<LeasedJob>> Store::LeaseJobs(std::int64_t run_id, int limit, Millis wall_now_ms) {
  std::lock_guard lk(impl_->mu);
  std::vector<LeasedJob> out;
  Status s = impl_->Txn([&]() -> Status {
    Result<SqliteStmt> sel = impl_->db->Cached(
        "SELECT j.id, j.prompt_id, j.sample, j.attempts, p.messages FROM jobs j JOIN prompts p ON p.id = j.prompt_id "
        "WHERE j.run_id = ? AND j.state = 'pending' AND j.next_attempt_at <= ? ORDER BY j.id LIMIT ?");
    Result<SqliteStmt> up = impl_->db->Cached("UPDATE jobs SET state = 'leased', updated_at = ? WHERE id = ?");
    if (!sel.ok()) return sel.status();
    if (!up.ok()) return up.status();
    sel->Bind(1, run_id).Bind(2, wall_now_ms).Bind(3, limit);
    for (;;) {
      Result<bool> row = sel->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      Result<LeasedJob> j = ReadJobRow(*sel);
      if (!j.ok()) return j.status();
      out.push_back(std::move(*j));
    }
    sel->Reset();
    for (const LeasedJob& j : out) RETORT_RETURN_IF_ERROR(up->Bind(1, impl_->Now()).Bind(2, j.id).Run());
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

// Pending jobs of a run in id order, in pages read under the lock; `extra` narrows the WHERE.
static Status ForEachPending(std::recursive_mutex& mu, SqliteDb& db, std::int64_t run_id, const char* extra,
                             const std::function<Status(const LeasedJob& job, const std::string& job_key)>& fn) {
  std::int64_t after = 0;
  constexpr int kPage = 1024;
  const std::string sql =
      std::string("SELECT j.id, j.prompt_id, j.sample, j.attempts, p.messages, j.job_key FROM jobs j "
                  "JOIN prompts p ON p.id = j.prompt_id WHERE j.run_id = ? AND j.state = 'pending' AND j.id > ? ") +
      extra + " ORDER BY j.id LIMIT ?";
  for (;;) {
    std::vector<std::pair<LeasedJob, std::string>> page;
    {
      std::lock_guard lk(mu);
      Result<SqliteStmt> sel = db.Cached(sql);
      if (!sel.ok()) return sel.status();
      sel->Bind(1, run_id).Bind(2, after).Bind(3, kPage);
      for (;;) {
        Result<bool> row = sel->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        Result<LeasedJob> j = ReadJobRow(*sel);
        if (!j.ok()) return j.status();
        page.emplace_back(std::move(*j), sel->Text(5));
      }
      sel->Reset();
    }
    for (const auto& [job, key] : page) RETORT_RETURN_IF_ERROR(fn(job, key));
    if (page.size() < static_cast<size_t>(kPage)) return Status::OK();
    after = page.back().first.id;
  }
}

Status Store::ForEachPendingJob(
    std::int64_t run_id, const std::function<Status(const LeasedJob& job, const std::string& job_key)>& fn) {
  return ForEachPending(impl_->mu, *impl_->db, run_id, "", fn);
}

Status Store::ForEachBatchableJob(
    std::int64_t run_id, const std::function<Status(const LeasedJob& job, const std::string& job_key)>& fn) {
  return ForEachPending(impl_->mu, *impl_->db, run_id,
                        "AND NOT EXISTS (SELECT 1 FROM batch_jobs bj JOIN batches b ON b.id = bj.batch_id "
                        "WHERE bj.job_id = j.id AND b.step != 'ingested')",
                        fn);
}

Result<std::optional<std::pair<std::int64_t, JobState>>> Store::FindJobByKey(std::int64_t run_id,
                                                                            const std::string& key) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached("SELECT id, state FROM jobs WHERE run_id = ? AND job_key = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, run_id).Bind(2, key);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::pair<std::int64_t, JobState>>();
  std::optional<JobState> state = ParseJobState(st->Text(1));
  const std::int64_t id = st->Int(0);
  st->Reset();
  if (!state) return Status::Corruption("jobs.state has an unknown value for job " + std::to_string(id));
  return std::optional<std::pair<std::int64_t, JobState>>(std::make_pair(id, *state));
}

Result<std::optional<Millis>> Store::NextPendingAt(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st =
      impl_->db->Cached("SELECT MIN(next_attempt_at) FROM jobs WHERE run_id = ? AND state = 'pending'");
  if (!st.ok()) return st.status();
  st->Bind(1, run_id);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (st->IsNull(0)) return std::optional<Millis>();
  return std::optional<Millis>(st->Int(0));
}

Status Store::ApplyJobUpdates(std::int64_t run_id, const std::vector<JobUpdate>& updates) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    SqliteDb& db = *impl_->db;
    Result<SqliteStmt> ins = db.Cached(
        "INSERT OR IGNORE INTO responses(job_id, run_id, body, content, reasoning, reasoning_source, finish_reason, "
        "prompt_tokens, completion_tokens, reasoning_tokens, latency_ms, first_token_ms, http_status, request_id, "
        "replica, received_at, logprobs) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    Result<SqliteStmt> done = db.Cached(
        "UPDATE jobs SET state = 'done', last_error = NULL, updated_at = ? WHERE id = ? AND run_id = ? "
        "AND state != 'done'");
    Result<SqliteStmt> retry = db.Cached(
        "UPDATE jobs SET state = 'pending', attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? "
        "WHERE id = ? AND run_id = ? AND state NOT IN ('done','failed')");
    Result<SqliteStmt> fail = db.Cached(
        "UPDATE jobs SET state = 'failed', attempts = ?, last_error = ?, error_status = ?, error_body = ?, "
        "updated_at = ? WHERE id = ? AND run_id = ? AND state NOT IN ('done','failed')");
    Result<SqliteStmt> release = db.Cached(
        "UPDATE jobs SET state = 'pending', updated_at = ? WHERE id = ? AND run_id = ? AND state = 'leased'");
    for (auto* r : {&ins, &done, &retry, &fail, &release})
      if (!r->ok()) return r->status();
    const Millis now = impl_->Now();
    RunTotalsDelta added;
    for (const JobUpdate& u : updates) {
      switch (u.kind) {
        case JobUpdate::Kind::kDone: {
          const ResponseRecord& r = u.response;
          SqliteStmt& s = *ins;
          s.Bind(1, u.job_id).Bind(2, run_id).Bind(3, r.raw_body).Bind(4, r.content).Bind(5, r.reasoning);
          if (r.reasoning_source.empty()) s.BindNull(6); else s.Bind(6, r.reasoning_source);
          s.Bind(7, r.finish_reason);
          auto tok = [&](int i, std::int64_t v) { if (v < 0) s.BindNull(i); else s.Bind(i, v); };
          tok(8, r.usage.prompt_tokens);
          tok(9, r.usage.completion_tokens);
          tok(10, r.usage.reasoning_tokens);
          s.Bind(11, r.latency_ms).Bind(12, r.first_token_ms).Bind(13, r.http_status);
          if (r.request_id.empty()) s.BindNull(14); else s.Bind(14, r.request_id);
          if (r.replica.empty()) s.BindNull(15); else s.Bind(15, r.replica);
          const Millis received = r.received_at_ms ? r.received_at_ms : now;
          s.Bind(16, received);
          if (r.logprobs.empty()) s.BindNull(17); else s.BindBlob(17, LogprobsToJson(r.logprobs));
          RETORT_RETURN_IF_ERROR(s.Run());
          if (db.Changes() == 1) added.Add(r, received);  // not when the job already had its answer
          RETORT_RETURN_IF_ERROR(done->Bind(1, now).Bind(2, u.job_id).Bind(3, run_id).Run());
          break;
        }
        case JobUpdate::Kind::kRetryLater:
          RETORT_RETURN_IF_ERROR(retry->Bind(1, u.attempts).Bind(2, u.next_attempt_at_ms).Bind(3, u.error)
                                     .Bind(4, now).Bind(5, u.job_id).Bind(6, run_id).Run());
          break;
        case JobUpdate::Kind::kFailed:
          fail->Bind(1, u.attempts).Bind(2, u.error);
          if (u.error_status) fail->Bind(3, u.error_status); else fail->BindNull(3);
          if (u.error_body.empty()) fail->BindNull(4); else fail->Bind(4, u.error_body);
          RETORT_RETURN_IF_ERROR(fail->Bind(5, now).Bind(6, u.job_id).Bind(7, run_id).Run());
          break;
        case JobUpdate::Kind::kRelease:
          RETORT_RETURN_IF_ERROR(release->Bind(1, now).Bind(2, u.job_id).Bind(3, run_id).Run());
          break;
      }
    }
    return added.Apply(db, run_id);
  });
}

// ---- export reads -----------------------------------------------------------------------

Status Store::ForEachResponse(std::int64_t run_id, const std::function<Status(const ExportRow&)>& fn) {
  return ForEachResponse(run_id, ResponseColumns{}, fn);
}

Status Store::ForEachResponse(std::int64_t run_id, const ResponseColumns& cols,
                              const std::function<Status(const ExportRow&)>& fn) {
  return ForEachResponsePage(run_id, cols, [&fn](std::vector<ExportRow>* page) -> Status {
    for (const ExportRow& e : *page) RETORT_RETURN_IF_ERROR(fn(e));
    return Status::OK();
  });
}

// The page walk shared by ForEachResponsePage and ForEachResponseView (?1 run id, ?2 first page,
// ?3/?4 the last key and sample of the previous page, ?5 page size). CROSS JOIN fixes the loop
// order: the set's prompts in key order through the (set_id, prompt_key) index, then each
// prompt's jobs by sample, so every page is a range seek with no sort (the natural join order
// scanned and sorted all jobs per page).
static constexpr const char* kResponseWalk =
    " FROM prompts p CROSS JOIN jobs j CROSS JOIN responses r "
    "WHERE p.set_id = (SELECT set_id FROM runs WHERE id = ?1) AND p.prompt_key >= ?3 "
    "AND j.run_id = ?1 AND j.prompt_id = p.id AND r.job_id = j.id "
    "AND (?2 OR p.prompt_key > ?3 OR j.sample > ?4) "
    "ORDER BY p.prompt_key, j.sample LIMIT ?5";

Status Store::ForEachResponsePage(std::int64_t run_id, const ResponseColumns& cols,
                                  const std::function<Status(std::vector<ExportRow>* page)>& fn) {
  std::string last_key;
  int last_sample = -1;
  bool first = true;
  constexpr int kPage = 1024;
  for (;;) {
    std::vector<ExportRow> page;
    {
      std::lock_guard lk(impl_->mu);
      Result<SqliteStmt> st = impl_->db->Cached(
          "SELECT j.id, j.sample, p.id, p.prompt_key, p.content_hash, p.messages, p.metadata, "
          // Columns not asked for are never read (the CASE skips the column fetch).
          "CASE WHEN ?6 THEN r.body END, r.content, "
          "r.reasoning, r.reasoning_source, r.finish_reason, r.prompt_tokens, r.completion_tokens, "
          "r.reasoning_tokens, r.latency_ms, r.first_token_ms, r.http_status, r.request_id, r.received_at, "
          "CASE WHEN ?7 THEN r.logprobs END, r.replica "
          + std::string(kResponseWalk));
      if (!st.ok()) return st.status();
      st->Bind(1, run_id).Bind(2, first ? 1 : 0).Bind(3, last_key).Bind(4, last_sample);
      st->Bind(5, kPage).Bind(6, cols.raw_body ? 1 : 0).Bind(7, cols.logprobs ? 1 : 0);
      for (;;) {
        Result<bool> row = st->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        ExportRow e;
        e.job_id = st->Int(0);
        e.sample = static_cast<int>(st->Int(1));
        e.prompt.id = st->Int(2);
        e.prompt.key.assign(st->View(3));
        e.prompt.content_hash = st->Text(4);
        Result<std::vector<Message>> m = MessagesFromJson(st->View(5));
        if (!m.ok()) return m.status();
        e.prompt.messages = std::move(*m);
        e.prompt.metadata_json = st->OptText(6).value_or("");
        ResponseRecord& r = e.response;
        r.job_id = e.job_id;
        r.raw_body.assign(st->View(7));
        r.content.assign(st->View(8));
        r.reasoning = st->OptText(9);
        r.reasoning_source = st->OptText(10).value_or("");
        r.finish_reason = st->Text(11);
        r.usage.prompt_tokens = st->OptInt(12).value_or(-1);
        r.usage.completion_tokens = st->OptInt(13).value_or(-1);
        r.usage.reasoning_tokens = st->OptInt(14).value_or(-1);
        r.latency_ms = st->Double(15);
        if (!st->IsNull(16)) r.first_token_ms = st->Double(16);
        r.http_status = static_cast<int>(st->Int(17));
        r.request_id = st->OptText(18).value_or("");
        r.received_at_ms = st->Int(19);
        if (!st->IsNull(20)) {
          Result<std::vector<TokenLogprob>> lp = LogprobsFromJson(st->Text(20));
          if (!lp.ok()) return lp.status();
          r.logprobs = std::move(*lp);
        }
        r.replica = st->OptText(21).value_or("");
        page.push_back(std::move(e));
      }
    }
    if (page.empty()) return Status::OK();
    const bool last_page = page.size() < static_cast<size_t>(kPage);
    last_key = page.back().prompt.key;
    last_sample = page.back().sample;
    first = false;
    RETORT_RETURN_IF_ERROR(fn(&page));
    if (last_page) return Status::OK();
  }
}

Status Store::ForEachResponseView(std::int64_t run_id, bool with_logprobs,
                                  const std::function<Status(const ExportRowView&)>& fn) {
  std::string last_key;
  int last_sample = -1;
  bool first = true;
  constexpr int kPage = 1024;
  std::vector<TokenLogprob> logprobs;
  ExportRowView v;
  v.logprobs = &logprobs;
  for (;;) {
    int rows = 0;
    std::lock_guard lk(impl_->mu);
    Result<SqliteStmt> st = impl_->db->Cached(
        "SELECT j.sample, p.prompt_key, p.messages, p.metadata, r.content, r.reasoning, r.finish_reason, "
        "CASE WHEN ?6 THEN r.logprobs END, r.received_at, r.reused_from IS NOT NULL "
        + std::string(kResponseWalk));
    if (!st.ok()) return st.status();
    st->Bind(1, run_id).Bind(2, first ? 1 : 0).Bind(3, last_key).Bind(4, last_sample);
    st->Bind(5, kPage).Bind(6, with_logprobs ? 1 : 0);
    for (;;) {
      Result<bool> row = st->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      ++rows;
      v.sample = static_cast<int>(st->Int(0));
      v.prompt_key = st->View(1);
      v.messages_json = st->View(2);
      v.metadata_json = st->View(3);  // NULL reads as ""
      v.content = st->View(4);
      v.reasoning = st->IsNull(5) ? std::nullopt : std::optional<std::string_view>(st->View(5));
      v.finish_reason = st->View(6);
      logprobs.clear();
      if (!st->IsNull(7)) {
        Result<std::vector<TokenLogprob>> lp = LogprobsFromJson(st->Text(7));
        if (!lp.ok()) return lp.status();
        logprobs = std::move(*lp);
      }
      v.received_at_ms = st->Int(8);
      v.reused = st->Int(9) != 0;
      RETORT_RETURN_IF_ERROR(fn(v));
      if (rows == kPage) {  // the next page starts after this row
        last_key.assign(v.prompt_key);
        last_sample = v.sample;
      }
    }
    if (rows < kPage) return Status::OK();
    first = false;
  }
}

Result<std::int64_t> Store::BeginExport(std::int64_t run_id, const std::string& out_dir,
                                        const std::string& options_json) {
  std::lock_guard lk(impl_->mu);
  std::int64_t id = 0;
  Status s = impl_->Txn([&]() -> Status {
    Result<SqliteStmt> st = impl_->db->Cached(
        "INSERT INTO exports(run_id, out_dir, options, state, started_at) VALUES(?,?,?,'running',?)");
    if (!st.ok()) return st.status();
    RETORT_RETURN_IF_ERROR(st->Bind(1, run_id).Bind(2, out_dir).Bind(3, options_json).Bind(4, impl_->Now()).Run());
    id = impl_->db->LastInsertId();
    return Status::OK();
  });
  if (!s.ok()) return s;
  return id;
}

Status Store::FinishExport(std::int64_t export_id, bool ok, const std::string& manifest_json,
                           const std::string& error) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> st = impl_->db->Cached(
        "UPDATE exports SET state = ?, manifest = ?, error = ?, finished_at = ? WHERE id = ?");
    if (!st.ok()) return st.status();
    st->Bind(1, ok ? "done" : "failed");
    if (manifest_json.empty()) st->BindNull(2); else st->Bind(2, manifest_json);
    if (error.empty()) st->BindNull(3); else st->Bind(3, error);
    return st->Bind(4, impl_->Now()).Bind(5, export_id).Run();
  });
}

Result<ExportInfo> Store::GetExport(std::int64_t export_id) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(
      "SELECT e.id, r.name, e.out_dir, e.options, e.state, e.manifest, e.error, e.started_at, e.finished_at "
      "FROM exports e JOIN runs r ON r.id = e.run_id WHERE e.id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, export_id);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound("no export with id " + std::to_string(export_id));
  ExportInfo e;
  e.id = st->Int(0);
  e.run = st->Text(1);
  e.out_dir = st->Text(2);
  e.options_json = st->Text(3);
  e.state = st->Text(4);
  e.manifest_json = st->OptText(5).value_or("");
  e.error = st->OptText(6).value_or("");
  e.started_at_ms = st->Int(7);
  e.finished_at_ms = st->OptInt(8).value_or(0);
  return e;
}

}  // namespace retort
