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

TEST_CASE("Issue 13: HarvestExitCode tells done, some failed, stopped early, usage and errors apart", "[harvest]") {
  HarvestSummary done;
  done.final_state = RunState::kDone;
  CHECK(HarvestExitCode(Status::OK(), done) == 0);
  done.progress.failed = 2;
  CHECK(HarvestExitCode(Status::OK(), done) == 3);
  HarvestSummary stopped;  // budget or signal: jobs left pending
  stopped.final_state = RunState::kStopped;
  CHECK(HarvestExitCode(Status::OK(), stopped) == 4);
  const HarvestSummary none;
  for (const Status& st : {Status::Unavailable("unreachable"), Status::Unauthenticated("401"),
                           Status::BudgetExhausted("quota"), Status::Rejected("404 to every request")})
    CHECK(HarvestExitCode(st, none) == 4);
  CHECK(HarvestExitCode(Status::InvalidArgument("--rpm"), none) == 2);
  CHECK(HarvestExitCode(Status::NotFound("set"), none) == 2);
  CHECK(HarvestExitCode(Status::FailedPrecondition("run exists with model"), none) == 1);
  CHECK(HarvestExitCode(Status::IOError("disk full"), none) == 1);
  // The documented names.
  CHECK(kHarvestExitDone == 0);
  CHECK(kHarvestExitError == 1);
  CHECK(kHarvestExitUsage == 2);
  CHECK(kHarvestExitSomeFailed == 3);
  CHECK(kHarvestExitStoppedEarly == 4);
}

TEST_CASE("Issue 13: --no-reuse, --no-fail-fast, --retry-failed and --allow-model-change parse", "[harvest]") {
  HarvestOptions o;
  CHECK(o.reuse);
  CHECK(o.fail_fast);
  CHECK_FALSE(o.retry_failed);
  CHECK_FALSE(o.allow_model_change);
  for (const HarvestOptionSpec& s : HarvestOptionTable()) {
    const std::string n = s.name;
    if (n == "no-reuse" || n == "no-fail-fast" || n == "retry-failed" || n == "allow-model-change")
      REQUIRE(s.apply(o, "true").ok());
  }
  CHECK_FALSE(o.reuse);
  CHECK_FALSE(o.fail_fast);
  CHECK(o.retry_failed);
  CHECK(o.allow_model_change);
  // --reuse (the default) is accepted too, e.g. to state it in a config file.
  for (const HarvestOptionSpec& s : HarvestOptionTable())
    if (std::string(s.name) == "reuse") REQUIRE(s.apply(o, "true").ok());
  CHECK(o.reuse);
}
