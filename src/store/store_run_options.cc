// Store: the service's saved run start options (table run_options).
#include "retort/store.h"
#include "store/store_impl.h"

namespace retort {

Status Store::SaveRunOptions(std::int64_t run_id, const std::string& options_json) {
  std::lock_guard lk(impl_->mu);
  return impl_->Txn([&]() -> Status {
    Result<SqliteStmt> st = impl_->db->Prepare(
        "INSERT INTO run_options(run_id, options, updated_at) VALUES(?, ?, ?) "
        "ON CONFLICT(run_id) DO UPDATE SET options = excluded.options, updated_at = excluded.updated_at");
    if (!st.ok()) return st.status();
    return st->Bind(1, run_id).Bind(2, options_json).Bind(3, impl_->Now()).Run();
  });
}

Result<std::string> Store::LoadRunOptions(std::int64_t run_id) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Prepare("SELECT options FROM run_options WHERE run_id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, run_id);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound("no saved service options for run id " + std::to_string(run_id));
  return st->Text(0);
}

}  // namespace retort
