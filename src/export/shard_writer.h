// ShardWriter: writes one split's records into size-capped shards named <split>-NNNNN-of-NNNNN.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "export/compressed_file.h"
#include "retort/exporter.h"

namespace retort {

// Shards are written under temporary names (the total count is known only at the end) and
// renamed by Finish(). Not thread-safe.
class ShardWriter {
 public:
  // `data_dir` is the directory that receives the files; `rel_prefix` is prepended to file
  // names in ShardInfo::file (e.g. "data/"). Caps: 0 = none; a shard holds at least one record.
  ShardWriter(std::string data_dir, std::string rel_prefix, std::string split, Compression c,
              std::int64_t max_records, std::int64_t max_bytes);
  ~ShardWriter();

  // Appends one record (a complete JSONL line including '\n'), opening a new shard first if
  // this record would exceed a cap. IOError on file failure.
  Status Write(std::string_view record);
  // Closes the last shard and renames all to "<split>-00000-of-00003<ext>". Returns the shards
  // in order (empty when no record was written). Call once.
  Result<std::vector<ShardInfo>> Finish();

  std::int64_t records() const { return total_records_; }

 private:
  Status CloseCurrent();
  std::string TempPath(size_t index) const;

  std::string dir_, prefix_, split_;
  Compression c_;
  std::int64_t max_records_, max_bytes_;
  std::unique_ptr<CompressedFile> cur_;
  std::int64_t cur_records_ = 0, cur_bytes_ = 0, total_records_ = 0;
  std::vector<ShardInfo> done_;  // file holds the temp path until Finish()
};

}  // namespace retort
