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

TEST_CASE("HarvestOptions::Validate checks the batch-mode options and names the flag", "[harvest][issue-14]") {
  HarvestOptions o;
  o.set = "s";
  o.run = "r";
  o.model = "m";
  o.base_urls = {"http://127.0.0.1:1/v1"};
  REQUIRE(o.Validate().ok());
  auto error = [](const HarvestOptions& x) { return x.Validate().message(); };
  HarvestOptions m = o;
  m.mode = "offline";
  CHECK_THAT(error(m), Catch::StartsWith("--mode"));
  m = o;
  m.cancel_batches = true;  // online: nothing to cancel
  CHECK_THAT(error(m), Catch::StartsWith("--cancel-batches"));
  m.mode = "batch";
  CHECK(m.Validate().ok());
  for (double poll : {0.0, -1.0, 86401.0}) {
    HarvestOptions b = o;
    b.mode = "batch";
    b.batch_poll_s = poll;
    CHECK_THAT(error(b), Catch::StartsWith("--batch-poll"));
  }
  HarvestOptions b = o;
  b.mode = "batch";
  b.batch_max_rounds = 0;
  CHECK_THAT(error(b), Catch::StartsWith("--batch-max-rounds"));
  b = o;
  b.mode = "batch";
  b.params.stream = true;
  CHECK_THAT(error(b), Catch::StartsWith("--stream"));
  b = o;
  b.mode = "batch";
  b.base_urls.push_back("http://127.0.0.1:2/v1");
  CHECK_THAT(error(b), Catch::StartsWith("--base-url"));
  b = o;
  b.mode = "batch";
  b.max_cost = 1;
  b.price_input = 1;
  CHECK_THAT(error(b), Catch::StartsWith("--max-cost/--max-total-tokens"));
  b.mode = "online";
  CHECK(b.Validate().ok());  // enforced online
}
