// Tests of the harvest option table's value parsers (flags, config keys).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "retort/harvester.h"

using namespace retort;

namespace {

const HarvestOptionSpec& Spec(const std::string& name) {
  for (const HarvestOptionSpec& s : HarvestOptionTable())
    if (name == s.name) return s;
  FAIL("no option " << name);
  throw;  // unreachable
}

}  // namespace

// Regression: --extra-body (flag or config key) was re-serialised with a recursive dump, so a
// value nested 100k levels deep overflowed the stack instead of being rejected.
TEST_CASE("HarvestOptionTable rejects an --extra-body nested deeper than the JSON limit", "[harvest]") {
  HarvestOptions o;
  const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  Status st = Spec("extra-body").apply(o, deep);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(st.message(), Catch::StartsWith("--extra-body: expected a JSON object, got '{\"a\":[[["));
  CHECK(o.params.extra_body_json.empty());
  REQUIRE(Spec("extra-body").apply(o, R"({"top_k": 20, "x": [[1]]})").ok());
  CHECK(o.params.extra_body_json == R"({"top_k":20,"x":[[1]]})");
}

TEST_CASE("HarvestOptionTable error messages stay valid UTF-8 for any value", "[harvest]") {
  HarvestOptions o;
  Status st = Spec("extra-body").apply(o, "caf\xe9 \n[");
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(st.message() == "--extra-body: expected a JSON object, got 'caf\xef\xbf\xbd  ['");
  CHECK_NOTHROW(nlohmann::json(st.message()).dump());
  CHECK(Spec("concurrency").apply(o, "12x").code() == StatusCode::kInvalidArgument);
  CHECK(Spec("temperature").apply(o, "nan").code() == StatusCode::kInvalidArgument);
  CHECK(Spec("stream").apply(o, "yes").code() == StatusCode::kInvalidArgument);
}
