// ExportFilter: decides which stored responses become training records, counting every drop.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "export/drop_patterns.h"
#include "retort/exporter.h"
#include "retort/store.h"

namespace retort {

// Filter names as counted in the manifest ("filtered" object). Frozen.
inline constexpr const char* kFilterEmpty = "empty";            // answer is empty or whitespace only
inline constexpr const char* kFilterTruncated = "truncated";    // finish_reason length / max_tokens
inline constexpr const char* kFilterTooShort = "too_short";     // < --min-chars code points
inline constexpr const char* kFilterTooLong = "too_long";       // > --max-chars code points
inline constexpr const char* kFilterPattern = "drop_pattern";   // matched a --drop-pattern
inline constexpr const char* kFilterDuplicate = "duplicate";    // same prompt + same response again

// Applies the filters in the order above; the first that matches is counted. Rows must arrive
// ordered by prompt key (Store::ForEachResponse order): duplicate detection keeps only the
// current prompt's responses, so memory stays bounded. Not thread-safe.
class ExportFilter {
 public:
  // InvalidArgument naming the pattern when a --drop-pattern does not compile.
  static Result<std::unique_ptr<ExportFilter>> Create(const ExportOptions& opts);
  ~ExportFilter();

  // Returns "" to keep `row`, else the name of the filter that dropped it (also counted).
  const char* Check(const ExportRowView& row);
  // The same for a decoded row.
  const char* Check(const ExportRow& row);

  // Drops per filter name (every filter present, 0 when it dropped nothing).
  const std::map<std::string, std::int64_t>& counts() const { return counts_; }
  // Drops per --drop-pattern, in the order given.
  std::vector<std::pair<std::string, std::int64_t>> pattern_counts() const;

  // Number of Unicode code points in UTF-8 text `s`.
  static std::int64_t CodePoints(std::string_view s);

 private:
  ExportFilter(const ExportOptions& opts, std::unique_ptr<DropPatterns> re);
  const char* Drop(const char* name);

  const ExportOptions opts_;
  std::unique_ptr<DropPatterns> re_;
  std::map<std::string, std::int64_t> counts_;
  std::vector<std::int64_t> per_pattern_;
  std::string current_key_;
  // Identities (answer, or answer NUL reasoning) of current_key_'s kept responses: the first
  // seen_count_ entries. Entries are reused (their buffers kept) from one prompt to the next.
  std::vector<std::string> seen_;
  size_t seen_count_ = 0;
  std::string ident_;    // scratch: the identity of the row being checked
};

}  // namespace retort
