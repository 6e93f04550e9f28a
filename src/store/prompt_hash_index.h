// PromptHashIndex: content dedup of prompts through prompt_hashes (migration 0003) — a filter per
// prompt set that rules out most new content without a lookup, and the entries of the open
// transaction, written in key order before it commits.
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "retort/status.h"
#include "store/sqlite_db.h"

namespace retort {

// The first 16 hex digits of a SHA-256 hex digest as a signed 64-bit integer (big-endian, two's
// complement): prompt_hashes.hash64, computed the same way by migration 0003 in SQL.
std::int64_t ContentHash64(std::string_view hash_hex);

// Used by the Store under its lock, inside the write transaction that inserts the prompts.
// Other connections may insert prompts between our transactions; Sync() picks them up.
class PromptHashIndex {
 public:
  // Brings the filters up to date with prompts committed by other connections. Call at the start
  // of every batch of inserts, inside the write transaction.
  Status Sync(SqliteDb& db);
  // Whether a prompt with content `hash_hex` (hash64 = ContentHash64(hash_hex)) exists in
  // `set_id` (committed, or inserted earlier in this transaction). A 64-bit match is confirmed
  // against prompts.content_hash.
  Result<bool> Contains(SqliteDb& db, std::int64_t set_id, std::int64_t hash64, std::string_view hash_hex);
  // Records prompt `prompt_id` of `set_id`, just inserted with content hash64 `hash64`. Its
  // prompt_hashes row is written by Flush (or here, once many are pending).
  Status Add(SqliteDb& db, std::int64_t set_id, std::int64_t hash64, std::int64_t prompt_id);
  // Writes the pending prompt_hashes rows in key order. Call before COMMIT and before a SAVEPOINT.
  Status Flush(SqliteDb& db);
  // Forgets pending rows and filters: call after any ROLLBACK (or ROLLBACK TO).
  void Reset();

  static constexpr size_t kMaxPending = size_t{1} << 15;  // its slot table (256 KiB) stays in L2

 private:
  // A blocked Bloom filter over the hash64 values of one set: 3 bits in one 64-bit word per
  // entry (one cache miss per probe), 16-32 bits per entry; ~1 % false positives at 16.
  struct Filter {
    std::vector<std::uint64_t> words;
    int bits_log2 = 0;
    std::int64_t entries = 0;
    void Init(std::int64_t expected);
    void Insert(std::int64_t h);
    bool MayContain(std::int64_t h) const;
    bool Full() const { return entries * 16 > (std::int64_t{1} << bits_log2); }
    std::uint64_t Word(std::int64_t h) const;
    static std::uint64_t Bits(std::int64_t h);
  };
  struct Pending {
    std::int64_t set_id, hash64, prompt_id;
  };

  Result<Filter*> FilterFor(SqliteDb& db, std::int64_t set_id);
  // (Re)builds the filter of `set_id` from prompt_hashes and the pending rows, sized for
  // `at_least` entries.
  Status Load(SqliteDb& db, std::int64_t set_id, std::int64_t at_least, Filter* f);
  Result<bool> SameContent(SqliteDb& db, std::int64_t prompt_id, std::string_view hash_hex);

  std::unordered_map<std::int64_t, Filter> filters_;  // by set id
  std::int64_t last_set_ = -1;                        // FilterFor's last answer (a stable map node)
  Filter* last_filter_ = nullptr;
  std::int64_t known_max_id_ = -1;                     // max(prompts.id) the filters include
  std::vector<Pending> pending_;
  // Open addressing over pending_ by hash64 (linear probing; kMaxPending * 2 slots, no
  // allocation per row): slot = index in pending_ + 1, 0 = empty.
  std::vector<std::uint32_t> pending_slots_;
  void IndexPending(size_t i);
};

}  // namespace retort
