// Store: the response browser's reads (keyset pages of a run's answers and failures).
#include <algorithm>
#include <cctype>

#include "store/store_impl.h"

namespace retort {

namespace {

// ASCII case-insensitive substring test; `needle_lower` is already lower case.
bool ContainsFolded(std::string_view hay, const std::string& needle_lower) {
  if (needle_lower.empty()) return true;
  if (hay.size() < needle_lower.size()) return false;
  auto eq = [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; };
  return std::search(hay.begin(), hay.end(), needle_lower.begin(), needle_lower.end(), eq) != hay.end();
}

// The text as it appears inside a JSON string (quotes, backslashes and controls escaped), so
// that a search for `say "hi"` finds it in the stored messages JSON.
std::string JsonEscaped(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

constexpr const char* kDoneSql =
    "SELECT r.job_id, j.sample, p.prompt_key, p.messages, r.content, r.reasoning, r.finish_reason, "
    "r.prompt_tokens, r.completion_tokens, r.reasoning_tokens, r.latency_ms, r.http_status, r.received_at "
    "FROM responses r INDEXED BY responses_by_run JOIN jobs j ON j.id = r.job_id JOIN prompts p ON p.id = j.prompt_id "
    "WHERE r.run_id = ? AND r.job_id > ? ORDER BY r.job_id LIMIT ?";
constexpr const char* kFailedSql =
    "SELECT j.id, j.sample, p.prompt_key, p.messages, COALESCE(j.last_error,''), COALESCE(j.error_status,0), "
    "j.attempts FROM jobs j INDEXED BY jobs_by_state JOIN prompts p ON p.id = j.prompt_id "
    "WHERE j.run_id = ? AND j.state = 'failed' AND j.id > ? ORDER BY j.id LIMIT ?";

BrowseRow DoneRow(const SqliteStmt& st) {
  BrowseRow r;
  r.job_id = st.Int(0);
  r.sample = static_cast<int>(st.Int(1));
  r.prompt_key = st.Text(2);
  r.messages_json = st.Text(3);
  r.content = st.Text(4);
  r.reasoning = st.OptText(5);
  r.finish_reason = st.Text(6);
  r.prompt_tokens = st.OptInt(7);
  r.completion_tokens = st.OptInt(8);
  r.reasoning_tokens = st.OptInt(9);
  r.latency_ms = st.Double(10);
  r.http_status = static_cast<int>(st.Int(11));
  r.received_at_ms = st.Int(12);
  return r;
}

}  // namespace

Result<BrowsePage> Store::BrowseResponses(std::int64_t run_id, const BrowseQuery& q) {
  if (q.limit < 1 || q.limit > 1000) return Status::InvalidArgument("limit: expected 1..1000");
  if (q.max_scanned < q.limit) return Status::InvalidArgument("max_scanned: must be at least limit");
  const std::string text = Lower(q.text);
  const std::string text_json = Lower(JsonEscaped(q.text));
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(q.failed ? kFailedSql : kDoneSql);
  if (!st.ok()) return st.status();
  st->Bind(1, run_id).Bind(2, q.after_job_id).Bind(3, q.max_scanned);
  BrowsePage page;
  std::int64_t last_id = 0;
  bool full = false;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) {
      st->Reset();
      return row.status();
    }
    if (!*row) break;
    ++page.scanned;
    last_id = st->Int(0);
    if (q.failed) {
      if (!text.empty() && !ContainsFolded(st->View(3), text_json)) continue;
      BrowseRow r;
      r.job_id = last_id;
      r.sample = static_cast<int>(st->Int(1));
      r.prompt_key = st->Text(2);
      r.messages_json = st->Text(3);
      r.error = st->Text(4);
      r.error_status = static_cast<int>(st->Int(5));
      r.attempts = static_cast<int>(st->Int(6));
      page.rows.push_back(std::move(r));
    } else {
      if (!q.finish_reason.empty() && st->View(6) != q.finish_reason) continue;
      if (!text.empty() && !ContainsFolded(st->View(4), text) && !ContainsFolded(st->View(3), text_json)) continue;
      page.rows.push_back(DoneRow(*st));
    }
    if (static_cast<int>(page.rows.size()) == q.limit) {
      full = true;
      break;
    }
  }
  st->Reset();
  // More rows may follow when the page filled up or the scan budget ran out.
  if (full || page.scanned == q.max_scanned) page.next_after = last_id;
  return page;
}

Result<BrowseRow> Store::GetResponse(std::int64_t run_id, std::int64_t job_id, std::string* raw_body) {
  std::lock_guard lk(impl_->mu);
  Result<SqliteStmt> st = impl_->db->Cached(
      "SELECT r.job_id, j.sample, p.prompt_key, p.messages, r.content, r.reasoning, r.finish_reason, "
      "r.prompt_tokens, r.completion_tokens, r.reasoning_tokens, r.latency_ms, r.http_status, r.received_at, r.body "
      "FROM responses r JOIN jobs j ON j.id = r.job_id JOIN prompts p ON p.id = j.prompt_id "
      "WHERE r.job_id = ? AND r.run_id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, job_id).Bind(2, run_id);
  Result<bool> row = st->Step();
  if (!row.ok()) {
    st->Reset();
    return row.status();
  }
  if (!*row) {
    st->Reset();
    return Status::NotFound("the run has no response for job " + std::to_string(job_id));
  }
  BrowseRow r = DoneRow(*st);
  if (raw_body) *raw_body = st->Text(13);
  st->Reset();
  return r;
}

}  // namespace retort
