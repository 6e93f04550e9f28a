// DropPatterns: the --drop-pattern regexes, compiled with RE2 so that a hostile pattern (from
// the command line or a POST /v1/exports body) costs bounded memory and linear matching time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "retort/status.h"

namespace re2 {
class RE2;
}

namespace retort {

// At most this many patterns; alternation (a|b|c) combines phrases into one.
inline constexpr size_t kMaxDropPatterns = 64;
// Memory budget of one compiled pattern (program + matching cache), bytes.
inline constexpr long kDropPatternMaxMem = 2L << 20;

class DropPatterns {
 public:
  // InvalidArgument naming the first pattern that does not compile or is too large, as
  // "<flag> '<pattern>': <reason>".
  static Result<std::unique_ptr<DropPatterns>> Compile(const std::vector<std::string>& patterns,
                                                       const std::string& flag = "--drop-pattern");
  ~DropPatterns();

  bool empty() const { return compiled_.empty(); }
  // The index of the first pattern found anywhere in `text` (NUL characters included), or -1.
  int FirstMatch(std::string_view text) const;

 private:
  DropPatterns() = default;
  std::vector<std::unique_ptr<re2::RE2>> compiled_;
};

}  // namespace retort
