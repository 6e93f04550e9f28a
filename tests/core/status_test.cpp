#include <catch2/catch.hpp>

#include "retort/status.h"

using retort::Result;
using retort::Status;
using retort::StatusCode;

TEST_CASE("Status is OK by default and carries code and message otherwise", "[core]") {
  Status ok;
  CHECK(ok.ok());
  CHECK(ok.ToString() == "ok");
  Status bad = Status::InvalidArgument("line 3: field 'id': expected a string");
  CHECK_FALSE(bad.ok());
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK(bad.ToString() == "invalid_argument: line 3: field 'id': expected a string");
  CHECK(bad.WithContext("prompts.jsonl").message() == "prompts.jsonl: line 3: field 'id': expected a string");
}

TEST_CASE("Result holds a value or a status", "[core]") {
  Result<int> r = 7;
  REQUIRE(r.ok());
  CHECK(*r == 7);
  Result<int> e = Status::NotFound("no run 'x'");
  CHECK_FALSE(e.ok());
  CHECK(e.status().code() == StatusCode::kNotFound);
}
