// DidYouMean: "unknown option '--concurency'; did you mean '--concurrency'?" for usage errors.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace retort::cli {

// The optimal-string-alignment (restricted Damerau–Levenshtein) distance between `a` and `b`:
// insertions, deletions, substitutions and transpositions of two adjacent characters each count
// 1 ("harvset" -> "harvest" is 1). Byte-wise; O(|a|·|b|) time.
std::size_t EditDistance(const std::string& a, const std::string& b);

// The candidate closest to `typed`, or nullopt when none is close enough: at most
// max(1, min(3, |typed| / 3)) edits away, or — when no candidate is that close — the only
// candidate that `typed` (at least 3 characters) is a prefix of. Ties go to the candidate that
// comes first. Compare names without their leading dashes.
std::optional<std::string> ClosestMatch(const std::string& typed, const std::vector<std::string>& candidates);

// Looks at a command line CLI11 refused (`args`: argv without the program name) and explains
// its first unknown subcommand or long option: "unknown command 'harvset'; did you mean
// 'harvest'?", "harvest: unknown option '--concurency'; did you mean '--concurrency'?" (without
// "; did you mean ..." when nothing is close enough). An option is matched against the options
// of the subcommand it follows (the top level's before any subcommand); tokens after "--" are
// not options; "--name=value" is matched by its name; short options are not checked. nullopt
// when every subcommand and long option is known (the refusal had another cause, e.g. a missing
// --db). `app` is the application the command line was parsed with; only one level of
// subcommands is looked at.
std::optional<std::string> ExplainUnknownArgument(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace retort::cli
