// The real retort binary: usage errors name misspelled commands and options with a suggestion,
// and --help shows the type of every numeric option (issue #13).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "cli/did_you_mean.h"
#include "retort/harvester.h"
#include "test_support/process.h"

namespace retort::test {
namespace {

struct Output {
  int rc;
  std::string out, err;
};

Output Retort(std::vector<std::string> args) {
  args.insert(args.begin(), RETORT_BINARY);
  Process p(args);
  REQUIRE(p.started());
  const int rc = p.Wait(std::chrono::seconds(30));
  return {rc, p.out(), p.err()};
}

// The subcommands `retort --help` lists.
std::vector<std::string> Subcommands() {
  Output o = Retort({"--help"});
  REQUIRE(o.rc == 0);
  std::vector<std::string> subs;
  std::istringstream in(o.out);
  bool in_section = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Subcommands:", 0) == 0) in_section = true;
    else if (in_section && line.rfind("  ", 0) == 0) subs.push_back(line.substr(2, line.find(' ', 2) - 2));
    else if (in_section && !line.empty()) in_section = false;
  }
  return subs;
}

// One option row of a --help page.
struct HelpOption {
  std::string name;     // "concurrency" (the long name)
  std::string type;     // "INT" (without a validator's ":POSITIVE"); "" for a flag
  std::string default_; // from "INT=64" or "[default: 64]"; "" = none shown
  std::string row;      // the whole row, for messages
};

bool IsTypeWord(const std::string& w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
}

// The options of `retort <cmd> --help`: rows starting with "  -" (a description that continues
// on the next line is indented further and starts with a letter).
// `cmd` may name a nested subcommand: "batch-file write".
std::vector<HelpOption> HelpOptions(const std::string& cmd) {
  std::vector<std::string> args;
  std::istringstream words_of(cmd);
  for (std::string w; words_of >> w;) args.push_back(w);
  args.push_back("--help");
  Output o = Retort(args);
  REQUIRE(o.rc == 0);
  std::vector<HelpOption> opts;
  std::istringstream in(o.out);
  static const std::regex kDefault(R"(\[default: ([^\]]*)\])");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  -", 0) != 0) continue;
    std::istringstream words(line);
    std::string names, second;
    words >> names >> second;
    HelpOption h;
    h.row = line;
    for (size_t start = 0; start < names.size();) {  // "-h,--help" -> "help"
      size_t end = names.find(',', start);
      if (end == std::string::npos) end = names.size();
      const std::string n = names.substr(start, end - start);
      if (n.rfind("--", 0) == 0) h.name = n.substr(2);
      start = end + 1;
    }
    // CLI11 shows "--concurrency INT=64"; the table options "[default: 64]" in their help.
    const std::string type = second.substr(0, second.find_first_of("=:"));
    if (IsTypeWord(type)) {
      h.type = type;
      if (second.find('=') != std::string::npos) h.default_ = second.substr(second.find('=') + 1);
    }
    std::smatch m;
    if (h.default_.empty() && std::regex_search(line, m, kDefault)) h.default_ = m[1];
    if (!h.name.empty()) opts.push_back(h);
  }
  return opts;
}

bool LooksNumeric(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return *end == '\0';
}

TEST_CASE("retort --help lists every subcommand", "[cli]") {
  const std::vector<std::string> subs = Subcommands();
  CHECK(std::set<std::string>(subs.begin(), subs.end()) ==
        std::set<std::string>{"harvest", "status", "sim", "serve", "import", "export", "batch-file"});
}

TEST_CASE("every numeric option of every subcommand shows its type in --help", "[cli]") {
  static const std::set<std::string> kNumericTypes = {"INT", "UINT", "FLOAT", "SECONDS"};
  std::map<std::string, HarvestOptionSpec::Kind> harvest_kinds;
  for (const HarvestOptionSpec& s : HarvestOptionTable()) harvest_kinds[s.name] = s.kind;
  int numeric = 0;
  std::vector<std::string> commands;
  for (const std::string& cmd : Subcommands()) {
    if (cmd == "batch-file") {  // options live on its own subcommands
      commands.push_back("batch-file write");
      commands.push_back("batch-file ingest");
    } else {
      commands.push_back(cmd);
    }
  }
  for (const std::string& cmd : commands) {
    const std::vector<HelpOption> opts = HelpOptions(cmd);
    CHECK(opts.size() > 2);
    for (const HelpOption& o : opts) {
      INFO("retort " << cmd << " --help: " << o.row);
      // The truth: a table option's kind, or a numeric default (shown for every typed option
      // with a default).
      bool is_numeric = LooksNumeric(o.default_);
      if (cmd == "harvest" && harvest_kinds.count(o.name)) {
        const HarvestOptionSpec::Kind k = harvest_kinds[o.name];
        is_numeric = k == HarvestOptionSpec::Kind::kInt || k == HarvestOptionSpec::Kind::kDouble;
        if (k == HarvestOptionSpec::Kind::kBool) CHECK(o.type.empty());
        else CHECK_FALSE(o.type.empty());
      }
      if (!is_numeric) continue;
      ++numeric;
      CHECK(kNumericTypes.count(o.type) == 1);
    }
  }
  CHECK(numeric > 40);  // the parse found the options (harvest alone has 20 numeric ones)
  // The names issue #13 gives.
  std::map<std::string, std::string> types;
  for (const HelpOption& o : HelpOptions("harvest")) types[o.name] = o.type;
  CHECK(types["concurrency"] == "INT");
  CHECK(types["timeout"] == "SECONDS");
  CHECK(types["rpm"] == "FLOAT");
  CHECK(types["max-requests"] == "INT");
  CHECK(types["price-input"] == "FLOAT");
  CHECK(types["model"] == "TEXT");
}

TEST_CASE("a misspelled command gets a suggestion and exit code 2", "[cli]") {
  Output o = Retort({"harvset", "--db", "x.db"});
  CHECK(o.rc == 2);
  CHECK(o.err.find("retort: error: unknown command 'harvset'; did you mean 'harvest'?") != std::string::npos);
  o = Retort({"frobnicate"});
  CHECK(o.rc == 2);
  CHECK(o.err.find("unknown command 'frobnicate'\n") != std::string::npos);
}

TEST_CASE("a misspelled option of any subcommand gets a suggestion from that subcommand and exit code 2", "[cli]") {
  Output o = Retort({"harvest", "--concurency", "4"});
  CHECK(o.rc == 2);
  CHECK(o.err.find("harvest: unknown option '--concurency'; did you mean '--concurrency'?") != std::string::npos);
  // Every long option of every subcommand, with two adjacent letters swapped: the suggestion
  // is that option, or another option of the same subcommand exactly as close.
  int checked = 0;
  for (const std::string& cmd : Subcommands()) {
    const std::vector<HelpOption> opts = HelpOptions(cmd);
    std::set<std::string> names;
    for (const HelpOption& h : opts) names.insert(h.name);
    for (const HelpOption& h : opts) {
      std::string typo = h.name;
      size_t i = typo.size() / 2;
      while (i + 1 < typo.size() && typo[i] == typo[i + 1]) ++i;
      if (i + 1 >= typo.size()) continue;
      std::swap(typo[i], typo[i + 1]);
      if (names.count(typo)) continue;
      Output r = Retort({cmd, "--" + typo});
      INFO("retort " << cmd << " --" << typo << ": " << r.err);
      CHECK(r.rc == 2);
      const std::string head = cmd + ": unknown option '--" + typo + "'; did you mean '--";
      const size_t at = r.err.find(head);
      REQUIRE(at != std::string::npos);
      const size_t from = at + head.size();
      const std::string suggested = r.err.substr(from, r.err.find('\'', from) - from);
      CHECK(names.count(suggested) == 1);
      CHECK(cli::EditDistance(typo, suggested) == 1);
      ++checked;
    }
  }
  CHECK(checked > 60);
}

TEST_CASE("other usage errors keep CLI11's message and exit code 2", "[cli]") {
  Output o = Retort({"status"});
  CHECK(o.rc == 2);
  CHECK(o.err.find("--db is required") != std::string::npos);
  CHECK(o.err.find("did you mean") == std::string::npos);
  o = Retort({"harvest", "--help"});
  CHECK(o.rc == 0);
}

}  // namespace
}  // namespace retort::test
