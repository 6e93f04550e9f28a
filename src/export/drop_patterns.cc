// DropPatterns implementation on RE2 (automata: no backtracking, memory capped per pattern).
#include "export/drop_patterns.h"

#include <re2/re2.h>

namespace retort {

// POSIX extended syntax as documented for --drop-pattern, with what users of glibc's regcomp
// expect: `.` matches a newline, ^ and $ anchor the whole text (not lines), and the common
// escapes \d \s \w \b work.
static RE2::Options PatternOptions() {
  RE2::Options o;
  o.set_posix_syntax(true);
  o.set_longest_match(true);
  o.set_one_line(true);
  o.set_dot_nl(true);
  o.set_perl_classes(true);
  o.set_word_boundary(true);
  o.set_never_capture(true);
  o.set_log_errors(false);
  o.set_max_mem(kDropPatternMaxMem);
  return o;
}

Result<std::unique_ptr<DropPatterns>> DropPatterns::Compile(const std::vector<std::string>& patterns,
                                                            const std::string& flag) {
  if (patterns.size() > kMaxDropPatterns)
    return Status::InvalidArgument(flag + ": at most " + std::to_string(kMaxDropPatterns) + " patterns (got " +
                                   std::to_string(patterns.size()) + "); combine phrases with (a|b|c)");
  std::unique_ptr<DropPatterns> out(new DropPatterns());
  const RE2::Options opts = PatternOptions();
  for (const std::string& p : patterns) {
    auto re = std::make_unique<RE2>(re2::StringPiece(p.data(), p.size()), opts);
    if (!re->ok()) {
      std::string why = re->error();
      if (re->error_code() == RE2::ErrorPatternTooLarge)
        why = "too complex: compiling it needs more than " + std::to_string(kDropPatternMaxMem >> 20) +
              " MiB (nested or large repetition counts)";
      return Status::InvalidArgument(flag + " '" + p + "': " + why);
    }
    out->compiled_.push_back(std::move(re));
  }
  return out;
}

DropPatterns::~DropPatterns() = default;

int DropPatterns::FirstMatch(std::string_view text) const {
  const re2::StringPiece t(text.data(), text.size());
  for (size_t i = 0; i < compiled_.size(); ++i)
    if (RE2::PartialMatch(t, *compiled_[i])) return static_cast<int>(i);
  return -1;
}

}  // namespace retort
