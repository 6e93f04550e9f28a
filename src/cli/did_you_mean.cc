// DidYouMean: edit distance and the explanation of an unknown subcommand or option.
#include "cli/did_you_mean.h"

#include <algorithm>

namespace retort::cli {

std::size_t EditDistance(const std::string& a, const std::string& b) {
  // d[i][j] = distance between a[0..i) and b[0..j); three rows are enough for transpositions.
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
  for (std::size_t j = 0; j <= m; ++j) prev[j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], prev2[j - 2] + 1);
    }
    prev2.swap(prev);
    prev.swap(cur);
  }
  return prev[m];
}

std::optional<std::string> ClosestMatch(const std::string& typed, const std::vector<std::string>& candidates) {
  const std::size_t limit = std::max<std::size_t>(1, std::min<std::size_t>(3, typed.size() / 3));
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    const std::size_t d = EditDistance(typed, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  if (best) return best;
  // "stat" for "status": a prefix is a strong hint even when many characters are missing.
  if (typed.size() < 3) return std::nullopt;
  std::optional<std::string> only;
  for (const std::string& c : candidates) {
    if (c.rfind(typed, 0) != 0) continue;
    if (only) return std::nullopt;  // ambiguous
    only = c;
  }
  return only;
}

namespace {

std::vector<std::string> LongNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : app.get_options())
    for (const std::string& n : opt->get_lnames()) names.push_back(n);
  return names;
}

// "unknown option '--x'" plus a suggestion from `app`'s long options; nullopt when known.
std::optional<std::string> CheckOption(const CLI::App& app, const std::string& token) {
  const size_t eq = token.find('=');
  const std::string name = token.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
  const std::vector<std::string> names = LongNames(app);
  if (name.empty() || std::find(names.begin(), names.end(), name) != names.end()) return std::nullopt;
  std::string msg = (app.get_parent() ? app.get_name() + ": " : std::string()) + "unknown option '--" + name + "'";
  if (std::optional<std::string> m = ClosestMatch(name, names)) msg += "; did you mean '--" + *m + "'?";
  return msg;
}

}  // namespace

std::optional<std::string> ExplainUnknownArgument(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* current = &app;
  for (const std::string& a : args) {
    if (a == "--") return std::nullopt;
    if (a.rfind("--", 0) == 0) {
      if (std::optional<std::string> msg = CheckOption(*current, a)) return msg;
      continue;
    }
    if (current != &app || a.empty() || a[0] == '-') continue;  // a value or a short option
    // The first word at the top level names the command (the top level has only flags).
    std::vector<std::string> commands;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->get_name() == a) current = sub;
      commands.push_back(sub->get_name());
    }
    if (current != &app) continue;
    std::string msg = "unknown command '" + a + "'";
    if (std::optional<std::string> m = ClosestMatch(a, commands)) msg += "; did you mean '" + *m + "'?";
    return msg;
  }
  return std::nullopt;
}

}  // namespace retort::cli
