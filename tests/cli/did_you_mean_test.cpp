#include "cli/did_you_mean.h"

#include <catch2/catch.hpp>

namespace retort::cli {
namespace {

TEST_CASE("EditDistance counts insertions, deletions, substitutions and adjacent transpositions", "[cli]") {
  CHECK(EditDistance("", "") == 0);
  CHECK(EditDistance("abc", "") == 3);
  CHECK(EditDistance("", "abc") == 3);
  CHECK(EditDistance("harvest", "harvest") == 0);
  CHECK(EditDistance("harvset", "harvest") == 1);        // transposition
  CHECK(EditDistance("concurency", "concurrency") == 1);  // deletion
  CHECK(EditDistance("concurrrency", "concurrency") == 1);
  CHECK(EditDistance("rpm", "tpm") == 1);  // substitution
  CHECK(EditDistance("ca", "abc") == 3);   // optimal string alignment: no edit of a transposed pair
  CHECK(EditDistance("kitten", "sitting") == 3);
  CHECK(EditDistance("status", "export") == EditDistance("export", "status"));
}

TEST_CASE("ClosestMatch suggests only close candidates", "[cli]") {
  const std::vector<std::string> commands = {"harvest", "status", "sim", "serve", "import", "export"};
  CHECK(ClosestMatch("harvset", commands) == "harvest");
  CHECK(ClosestMatch("exprot", commands) == "export");
  CHECK(ClosestMatch("serv", commands) == "serve");
  CHECK(ClosestMatch("stat", commands) == "status");  // a unique prefix
  CHECK_FALSE(ClosestMatch("frobnicate", commands).has_value());
  CHECK_FALSE(ClosestMatch("x", commands).has_value());
  CHECK_FALSE(ClosestMatch("s", commands).has_value());
  CHECK_FALSE(ClosestMatch("se", {"serve", "server"}).has_value());  // too short for a prefix
  CHECK_FALSE(ClosestMatch("ser", {"serve", "server"}).has_value());  // an ambiguous prefix
  // The allowance grows with the length: 1 edit for short names, up to 3 for long ones.
  CHECK(ClosestMatch("db", {"db", "run"}) == "db");
  CHECK(ClosestMatch("bd", {"db", "run"}) == "db");
  CHECK_FALSE(ClosestMatch("xy", {"db", "run"}).has_value());
  CHECK(ClosestMatch("max-totl-tokns", {"max-total-tokens", "max-requests"}) == "max-total-tokens");
  CHECK_FALSE(ClosestMatch("maxtokens", {"concurrency"}).has_value());
  // Ties go to the first candidate.
  CHECK(ClosestMatch("xpm", {"tpm", "rpm"}) == "tpm");
}

struct TestApp {
  CLI::App app{"test"};
  int concurrency = 0;
  std::string db;
  TestApp() {
    app.set_version_flag("--version", "1");
    auto* harvest = app.add_subcommand("harvest", "");
    harvest->add_option("--concurrency", concurrency);
    harvest->add_option("--db", db);
    auto* status = app.add_subcommand("status", "");
    status->add_option("--db", db);
    status->add_flag("--json");
  }
};

TEST_CASE("ExplainUnknownArgument names the first unknown command or option of a command line", "[cli]") {
  TestApp t;
  using V = std::vector<std::string>;
  CHECK(ExplainUnknownArgument(t.app, V{"harvset"}) == "unknown command 'harvset'; did you mean 'harvest'?");
  CHECK(ExplainUnknownArgument(t.app, V{"frobnicate", "--db", "x"}) == "unknown command 'frobnicate'");
  CHECK(ExplainUnknownArgument(t.app, V{"harvest", "--concurency", "4"}) ==
        "harvest: unknown option '--concurency'; did you mean '--concurrency'?");
  CHECK(ExplainUnknownArgument(t.app, V{"harvest", "--db", "c.db", "--concurency=4"}) ==
        "harvest: unknown option '--concurency'; did you mean '--concurrency'?");
  // Options are those of the command they follow: --json belongs to status only.
  CHECK(ExplainUnknownArgument(t.app, V{"harvest", "--jsno"}) == "harvest: unknown option '--jsno'");
  CHECK(ExplainUnknownArgument(t.app, V{"status", "--jsno"}) ==
        "status: unknown option '--jsno'; did you mean '--json'?");
  CHECK(ExplainUnknownArgument(t.app, V{"--verison"}) == "unknown option '--verison'; did you mean '--version'?");
  CHECK(ExplainUnknownArgument(t.app, V{"status", "--hlep"}) ==
        "status: unknown option '--hlep'; did you mean '--help'?");
  // Nothing unknown: the refusal had another cause (a missing value, a stray positional).
  CHECK_FALSE(ExplainUnknownArgument(t.app, V{"harvest", "--concurrency"}).has_value());
  CHECK_FALSE(ExplainUnknownArgument(t.app, V{"harvest", "--db=x", "extra", "-x"}).has_value());
  CHECK_FALSE(ExplainUnknownArgument(t.app, V{}).has_value());
  // After "--" nothing is an option.
  CHECK_FALSE(ExplainUnknownArgument(t.app, V{"harvest", "--", "--concurency"}).has_value());
}

}  // namespace
}  // namespace retort::cli
