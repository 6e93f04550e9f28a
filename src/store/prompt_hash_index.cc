// PromptHashIndex: Bloom filters per prompt set over prompt_hashes, pending rows flushed sorted.
#include "store/prompt_hash_index.h"

#include <algorithm>
#include <bit>

namespace retort {

namespace {
struct HexTable {
  unsigned char v[256] = {};
  constexpr HexTable() {
    for (int c = '0'; c <= '9'; ++c) v[c] = static_cast<unsigned char>(c - '0');
    for (int c = 'a'; c <= 'f'; ++c) v[c] = static_cast<unsigned char>(c - 'a' + 10);
  }
};
constexpr HexTable kHexValue;
}  // namespace

std::int64_t ContentHash64(std::string_view hex) {
  std::uint64_t v = 0;
  const size_t n = hex.size() < 16 ? hex.size() : 16;
  for (size_t i = 0; i < n; ++i) v = (v << 4) | kHexValue.v[static_cast<unsigned char>(hex[i])];
  return static_cast<std::int64_t>(v);
}

// ---- Filter -----------------------------------------------------------------------------

void PromptHashIndex::Filter::Init(std::int64_t expected) {
  const std::uint64_t want = std::max<std::uint64_t>(std::uint64_t{1} << 16, static_cast<std::uint64_t>(expected) * 16);
  bits_log2 = std::bit_width(want - 1);
  words.assign((std::uint64_t{1} << bits_log2) / 64, 0);
  entries = 0;
}

std::uint64_t PromptHashIndex::Filter::Word(std::int64_t h) const {
  return (static_cast<std::uint64_t>(h) * 0x9E3779B97F4A7C15ull) >> (64 - (bits_log2 - 6));
}

std::uint64_t PromptHashIndex::Filter::Bits(std::int64_t h) {
  const std::uint64_t x = static_cast<std::uint64_t>(h) * 0xC2B2AE3D27D4EB4Full;
  return (std::uint64_t{1} << (x >> 58)) | (std::uint64_t{1} << ((x >> 52) & 63)) | (std::uint64_t{1} << ((x >> 46) & 63));
}

void PromptHashIndex::Filter::Insert(std::int64_t h) {
  words[Word(h)] |= Bits(h);
  ++entries;
}

bool PromptHashIndex::Filter::MayContain(std::int64_t h) const {
  const std::uint64_t b = Bits(h);
  return (words[Word(h)] & b) == b;
}

// ---- PromptHashIndex --------------------------------------------------------------------

static Result<std::int64_t> MaxPromptId(SqliteDb& db) {
  Result<SqliteStmt> st = db.Cached("SELECT coalesce(max(id), 0) FROM prompts");
  if (!st.ok()) return st.status();
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  const std::int64_t v = st->Int(0);
  st->Reset();
  return v;
}

Status PromptHashIndex::Sync(SqliteDb& db) {
  Result<std::int64_t> max_id = MaxPromptId(db);
  if (!max_id.ok()) return max_id.status();
  if (*max_id == known_max_id_) return Status::OK();
  if (*max_id < known_max_id_ || filters_.empty()) {
    filters_.clear();
    last_filter_ = nullptr;  // rows went away (or nothing is loaded): filters are rebuilt on demand
  } else {
    // Prompts another connection committed since our last look.
    Result<SqliteStmt> st = db.Prepare("SELECT set_id, content_hash FROM prompts WHERE id > ?");
    if (!st.ok()) return st.status();
    st->Bind(1, known_max_id_);
    for (;;) {
      Result<bool> row = st->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      auto it = filters_.find(st->Int(0));
      if (it != filters_.end()) it->second.Insert(ContentHash64(st->View(1)));
    }
  }
  known_max_id_ = *max_id;
  return Status::OK();
}

Status PromptHashIndex::Load(SqliteDb& db, std::int64_t set_id, std::int64_t at_least, Filter* f) {
  Result<SqliteStmt> count = db.Cached("SELECT count(*) FROM prompt_hashes WHERE set_id = ?");
  if (!count.ok()) return count.status();
  count->Bind(1, set_id);
  Result<bool> row = count->Step();
  if (!row.ok()) return row.status();
  const std::int64_t stored = count->Int(0);
  count->Reset();
  f->Init(std::max(at_least, stored + static_cast<std::int64_t>(pending_.size())));
  Result<SqliteStmt> st = db.Prepare("SELECT hash64 FROM prompt_hashes WHERE set_id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, set_id);
  for (;;) {
    row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    f->Insert(st->Int(0));
  }
  for (const Pending& p : pending_)
    if (p.set_id == set_id) f->Insert(p.hash64);
  return Status::OK();
}

Result<PromptHashIndex::Filter*> PromptHashIndex::FilterFor(SqliteDb& db, std::int64_t set_id) {
  if (set_id == last_set_ && last_filter_ && !last_filter_->Full()) return last_filter_;
  last_filter_ = nullptr;
  auto it = filters_.find(set_id);
  if (it != filters_.end()) {
    if (it->second.Full()) RETORT_RETURN_IF_ERROR(Load(db, set_id, it->second.entries * 2, &it->second));
    last_set_ = set_id;
    last_filter_ = &it->second;
    return last_filter_;
  }
  if (known_max_id_ < 0) RETORT_RETURN_IF_ERROR(Sync(db));
  Filter& f = filters_[set_id];
  Status st = Load(db, set_id, 0, &f);
  if (!st.ok()) {
    filters_.erase(set_id);
    return st;
  }
  last_set_ = set_id;
  last_filter_ = &f;
  return &f;
}

Result<bool> PromptHashIndex::SameContent(SqliteDb& db, std::int64_t prompt_id, std::string_view hash_hex) {
  Result<SqliteStmt> st = db.Cached("SELECT content_hash FROM prompts WHERE id = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, prompt_id);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.status();
  const bool same = *row && st->View(0) == hash_hex;
  st->Reset();
  return same;
}

Result<bool> PromptHashIndex::Contains(SqliteDb& db, std::int64_t set_id, std::int64_t h, std::string_view hash_hex) {
  Result<Filter*> f = FilterFor(db, set_id);
  if (!f.ok()) return f.status();
  if (!(*f)->MayContain(h)) return false;
  if (!pending_slots_.empty()) {
    const size_t mask = pending_slots_.size() - 1;
    for (size_t s = static_cast<std::uint64_t>(h) & mask; pending_slots_[s] != 0; s = (s + 1) & mask) {
      const Pending& p = pending_[pending_slots_[s] - 1];
      if (p.hash64 != h || p.set_id != set_id) continue;
      Result<bool> same = SameContent(db, p.prompt_id, hash_hex);
      if (!same.ok() || *same) return same;
    }
  }
  Result<SqliteStmt> st = db.Cached("SELECT prompt_id FROM prompt_hashes WHERE set_id = ? AND hash64 = ?");
  if (!st.ok()) return st.status();
  st->Bind(1, set_id).Bind(2, h);
  std::vector<std::int64_t> ids;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ids.push_back(st->Int(0));
  }
  st->Reset();
  for (std::int64_t id : ids) {
    Result<bool> same = SameContent(db, id, hash_hex);
    if (!same.ok() || *same) return same;
  }
  return false;
}

Status PromptHashIndex::Add(SqliteDb& db, std::int64_t set_id, std::int64_t h, std::int64_t prompt_id) {
  Result<Filter*> f = FilterFor(db, set_id);
  if (!f.ok()) return f.status();
  (*f)->Insert(h);
  pending_.push_back(Pending{set_id, h, prompt_id});
  IndexPending(pending_.size() - 1);
  known_max_id_ = std::max(known_max_id_, prompt_id);
  if (pending_.size() >= kMaxPending) return Flush(db);
  return Status::OK();
}

Status PromptHashIndex::Flush(SqliteDb& db) {
  if (pending_.empty()) return Status::OK();
  // Key order: each leaf of the index is visited once per flush, not once per row.
  std::sort(pending_.begin(), pending_.end(), [](const Pending& a, const Pending& b) {
    if (a.set_id != b.set_id) return a.set_id < b.set_id;
    if (a.hash64 != b.hash64) return a.hash64 < b.hash64;
    return a.prompt_id < b.prompt_id;
  });
  Result<SqliteStmt> ins = db.Cached("INSERT INTO prompt_hashes(set_id, hash64, prompt_id) VALUES(?, ?, ?)");
  if (!ins.ok()) return ins.status();
  for (const Pending& p : pending_) RETORT_RETURN_IF_ERROR(ins->Bind(1, p.set_id).Bind(2, p.hash64).Bind(3, p.prompt_id).Run());
  pending_.clear();
  std::fill(pending_slots_.begin(), pending_slots_.end(), 0);
  return Status::OK();
}

void PromptHashIndex::IndexPending(size_t i) {
  if (pending_slots_.empty()) pending_slots_.assign(kMaxPending * 2, 0);
  const size_t mask = pending_slots_.size() - 1;
  size_t s = static_cast<std::uint64_t>(pending_[i].hash64) & mask;
  while (pending_slots_[s] != 0) s = (s + 1) & mask;
  pending_slots_[s] = static_cast<std::uint32_t>(i + 1);
}

void PromptHashIndex::Reset() {
  filters_.clear();
  last_filter_ = nullptr;
  known_max_id_ = -1;
  pending_.clear();
  pending_slots_.clear();
  pending_slots_.shrink_to_fit();
}

}  // namespace retort
