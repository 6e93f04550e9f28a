#include <catch2/catch.hpp>

#include "harvest/config_file.h"

using namespace retort;

TEST_CASE("ConfigFile parses strings, numbers, booleans and arrays", "[harvest]") {
  auto r = ParseConfigText(
      "# comment\n[harvest]\nset = \"examples\"\nmax_tokens = 256\ntemperature = 0.7\nstream = true\n"
      "base-url = [\"http://a:1/v1\", 'http://b:2/v1']  # replicas\nstop = [\"\\n\\n\", \"###\"]\n",
      "h.toml");
  REQUIRE(r.ok());
  REQUIRE(r->size() == 6);
  CHECK((*r)[0].key == "set");
  CHECK((*r)[0].values == std::vector<std::string>{"examples"});
  CHECK((*r)[1].key == "max-tokens");
  CHECK((*r)[1].values[0] == "256");
  CHECK((*r)[3].values[0] == "true");
  CHECK((*r)[4].values == std::vector<std::string>{"http://a:1/v1", "http://b:2/v1"});
  CHECK((*r)[5].values[0] == "\n\n");
  CHECK((*r)[5].line == 8);
}

TEST_CASE("ConfigFile rejects malformed lines with file and line", "[harvest]") {
  for (const char* bad : {"set examples\n", "set = examples\n", "set = \"x\n", "a = 1\na = 2\n", "[other]\n",
                          "x = [1, 2\n", "x = \"a\" junk\n", "= 3\n", "x = \"\\q\"\n"}) {
    INFO(bad);
    auto r = ParseConfigText(bad, "cfg.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::StartsWith("cfg.toml:"));
  }
}
