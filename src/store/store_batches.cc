// Store: the batches of batch runs (`retort harvest --mode batch`), recorded step by step.
#include <string>
#include <vector>

#include "store/store_impl.h"

namespace retort {

namespace {

std::optional<std::string> NonEmpty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

constexpr const char* kBatchColumns =
    "id, run_id, round, part, provider, step, input_path, requests, bytes, tag, file_id, batch_id, "
    "provider_status, counts, output_file_id, error_file_id, error, create_started_at, created_at, updated_at";

BatchRecord ReadBatch(const SqliteStmt& st) {
  BatchRecord b;
  b.id = st.Int(0);
  b.run_id = st.Int(1);
  b.round = static_cast<int>(st.Int(2));
  b.part = static_cast<int>(st.Int(3));
  b.provider = st.Text(4);
  b.step = st.Text(5);
  b.input_path = st.Text(6);
  b.requests = st.Int(7);
  b.bytes = st.Int(8);
  b.tag = st.Text(9);
  b.file_id = st.OptText(10).value_or("");
  b.batch_id = st.OptText(11).value_or("");
  b.provider_status = st.OptText(12).value_or("");
  b.counts_json = st.OptText(13).value_or("");
  b.output_file_id = st.OptText(14).value_or("");
  b.error_file_id = st.OptText(15).value_or("");
  b.error = st.OptText(16).value_or("");
  b.create_started_ms = st.OptInt(17).value_or(0);
  b.created_at_ms = st.Int(18);
  b.updated_at_ms = st.Int(19);
  return b;
}

}  // namespace

Status Store::RecordBatch(BatchRecord* rec, const std::vector<std::int64_t>& job_ids) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> ins = impl_->db->Cached(
        "INSERT INTO batches(run_id, round, part, provider, step, input_path, requests, bytes, tag, created_at, "
        "updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id, round, part) DO NOTHING");
    if (!ins.ok()) return ins.status();
    const Millis now = impl_->Now();
    ins->Bind(1, rec->run_id).Bind(2, rec->round).Bind(3, rec->part).Bind(4, rec->provider).Bind(5, rec->step);
    ins->Bind(6, rec->input_path).Bind(7, rec->requests).Bind(8, rec->bytes).Bind(9, rec->tag).Bind(10, now);
    ins->Bind(11, now);
    RETORT_RETURN_IF_ERROR(ins->Run());
    if (impl_->db->Changes() == 0)
      return Status::FailedPrecondition("batch " + std::to_string(rec->round) + "." + std::to_string(rec->part) +
                                        " of this run is already recorded");
    rec->id = impl_->db->LastInsertId();
    rec->created_at_ms = rec->updated_at_ms = now;
    Result<SqliteStmt> job = impl_->db->Cached("INSERT INTO batch_jobs(batch_id, job_id) VALUES(?,?)");
    if (!job.ok()) return job.status();
    for (std::int64_t id : job_ids) RETORT_RETURN_IF_ERROR(job->Bind(1, rec->id).Bind(2, id).Run());
    return Status::OK();
  });
}

Status Store::UpdateBatch(const BatchRecord& rec) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> up = impl_->db->Cached(
        "UPDATE batches SET step = ?, file_id = ?, batch_id = ?, provider_status = ?, counts = ?, output_file_id = ?, "
        "error_file_id = ?, error = ?, create_started_at = ?, updated_at = ? WHERE id = ?");
    if (!up.ok()) return up.status();
    up->Bind(1, rec.step).Bind(2, NonEmpty(rec.file_id)).Bind(3, NonEmpty(rec.batch_id));
    up->Bind(4, NonEmpty(rec.provider_status)).Bind(5, NonEmpty(rec.counts_json)).Bind(6, NonEmpty(rec.output_file_id));
    up->Bind(7, NonEmpty(rec.error_file_id)).Bind(8, NonEmpty(rec.error));
    up->Bind(9, rec.create_started_ms ? std::optional<std::int64_t>(rec.create_started_ms) : std::nullopt);
    up->Bind(10, impl_->Now()).Bind(11, rec.id);
    RETORT_RETURN_IF_ERROR(up->Run());
    if (impl_->db->Changes() == 0) return Status::NotFound("no batch with local id " + std::to_string(rec.id));
    return Status::OK();
  });
}

Result<std::vector<BatchRecord>> Store::ListBatches(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(std::string("SELECT ") + kBatchColumns +
                                            " FROM batches WHERE run_id = ? ORDER BY round, part");
  if (!st.ok()) return st.status();
  st->Bind(1, run_id);
  std::vector<BatchRecord> out;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadBatch(*st));
  }
  return out;
}

}  // namespace retort
