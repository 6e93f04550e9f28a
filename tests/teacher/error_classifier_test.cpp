#include <catch2/catch.hpp>

#include "teacher/anthropic_messages.h"
#include "teacher/error_classifier.h"
#include "teacher/openai_chat.h"

using namespace retort;

namespace {

constexpr Millis kNow = 1'767'225'600'000;

HttpResponse Http(int status, std::string body = "", HeaderList headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

}  // namespace

TEST_CASE("ClassifyAttempt retries transport errors", "[teacher]") {
  OpenAIChatProvider p;
  for (TransportError e : {TransportError::kConnect, TransportError::kTimeout, TransportError::kReset,
                           TransportError::kBodyTooLarge, TransportError::kOther}) {
    HttpResponse r;
    r.error = e;
    r.error_detail = "Connection (127.0.0.1:9)";
    Classification c = ClassifyAttempt(r, Status::OK(), p, kNow);
    CHECK(c.outcome == AttemptOutcome::kRetry);
    CHECK(c.reason == std::string("transport ") + TransportErrorName(e) + ": Connection (127.0.0.1:9)");
  }
}

TEST_CASE("ClassifyAttempt: 2xx succeeds when the body parsed and retries when it did not", "[teacher]") {
  OpenAIChatProvider p;
  Classification c = ClassifyAttempt(Http(200, "{}"), Status::OK(), p, kNow);
  CHECK(c.outcome == AttemptOutcome::kSuccess);
  c = ClassifyAttempt(Http(200, "{\"choi"), Status::Corruption("body: invalid JSON (6 bytes)"), p, kNow);
  CHECK(c.outcome == AttemptOutcome::kRetry);
  CHECK(c.reason == "HTTP 200 bad body: body: invalid JSON (6 bytes)");
}

TEST_CASE("ClassifyAttempt stops the run on 401 and 403", "[teacher]") {
  OpenAIChatProvider p;
  Classification c = ClassifyAttempt(
      Http(401, R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}})"),
      Status::OK(), p, kNow);
  CHECK(c.outcome == AttemptOutcome::kStopRun);
  CHECK(c.reason == "HTTP 401 invalid_api_key: Incorrect API key provided");
  AnthropicMessagesProvider a;
  c = ClassifyAttempt(Http(403, R"({"type":"error","error":{"type":"permission_error","message":"denied"}})"), Status::OK(), a,
                      kNow);
  CHECK(c.outcome == AttemptOutcome::kStopRun);
  CHECK(c.reason == "HTTP 403 permission_error: denied");
}

TEST_CASE("ClassifyAttempt stops the run on quota and spend-cap 429s", "[teacher]") {
  OpenAIChatProvider p;
  Classification c = ClassifyAttempt(
      Http(429, R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}})"),
      Status::OK(), p, kNow);
  CHECK(c.outcome == AttemptOutcome::kStopRun);
  for (const char* code : {"credit_balance_exhausted", "organization_spend_limit_exceeded", "project_spend_limit_exceeded",
                           "organization_usage_limit_exceeded"}) {
    INFO(code);
    c = ClassifyAttempt(Http(429, std::string(R"({"error":{"message":"m","type":"x","code":")") + code + "\"}}"),
                        Status::OK(), p, kNow);
    CHECK(c.outcome == AttemptOutcome::kStopRun);
  }
  AnthropicMessagesProvider a;
  c = ClassifyAttempt(Http(429, R"({"type":"error","error":{"type":"rate_limit_error","message":"spend limit",
    "details":{"error_code":"enforced_spend_limit_reached"}}})"),
                      Status::OK(), a, kNow);
  CHECK(c.outcome == AttemptOutcome::kStopRun);
}

TEST_CASE("ClassifyAttempt rate-limits other 429s with the server hint", "[teacher]") {
  OpenAIChatProvider p;
  Classification c = ClassifyAttempt(
      Http(429, R"({"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}})",
           {{"retry-after", "20"}}),
      Status::OK(), p, kNow);
  CHECK(c.outcome == AttemptOutcome::kRateLimited);
  CHECK(c.retry_after_ms == 20000);
  CHECK(c.reason == "HTTP 429 rate_limit_exceeded: Rate limit reached for requests");

  AnthropicMessagesProvider a;
  c = ClassifyAttempt(Http(429, R"({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})",
                           {{"retry-after-ms", "350"}, {"retry-after", "1"}}),
                      Status::OK(), a, kNow);
  CHECK(c.outcome == AttemptOutcome::kRateLimited);
  CHECK(c.retry_after_ms == 350);
  CHECK(c.reason == "HTTP 429 rate_limit_error: slow down");

  c = ClassifyAttempt(Http(429, "Too Many Requests"), Status::OK(), p, kNow);
  CHECK(c.outcome == AttemptOutcome::kRateLimited);
  CHECK_FALSE(c.retry_after_ms.has_value());
  CHECK(c.reason == "HTTP 429: Too Many Requests");
}

TEST_CASE("ClassifyAttempt retries 408, 409, 5xx and 529 with any hint", "[teacher]") {
  AnthropicMessagesProvider a;
  for (int status : {408, 409, 500, 502, 503, 504, 529}) {
    INFO(status);
    Classification c = ClassifyAttempt(Http(status, "", {{"retry-after", "Thu, 01 Jan 2026 00:00:10 GMT"}}), Status::OK(), a, kNow);
    CHECK(c.outcome == AttemptOutcome::kRetry);
    CHECK(c.retry_after_ms == 10000);
    CHECK(c.reason == "HTTP " + std::to_string(status));
  }
  Classification c = ClassifyAttempt(
      Http(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"), Status::OK(), a, kNow);
  CHECK(c.outcome == AttemptOutcome::kRetry);
  CHECK_FALSE(c.retry_after_ms.has_value());
  CHECK(c.reason == "HTTP 529 overloaded_error: Overloaded");
}

TEST_CASE("ClassifyAttempt fails the job on other 4xx", "[teacher]") {
  OpenAIChatProvider p;
  for (int status : {400, 404, 413, 422}) {
    INFO(status);
    Classification c = ClassifyAttempt(Http(status, R"({"object":"error","message":"bad","type":"BadRequestError","code":400})"),
                                       Status::OK(), p, kNow);
    CHECK(c.outcome == AttemptOutcome::kFailJob);
    CHECK(c.reason == "HTTP " + std::to_string(status) + " BadRequestError: bad");
  }
  // llama-server: the status again in `code`, the kind in `type`.
  Classification c = ClassifyAttempt(
      Http(404, R"({"error":{"code":404,"message":"File Not Found","type":"not_found_error"}})"), Status::OK(), p, kNow);
  CHECK(c.reason == "HTTP 404 not_found_error: File Not Found");
}

TEST_CASE("ClassifyAttempt keeps reasons short and on one line", "[teacher]") {
  OpenAIChatProvider p;
  Classification c = ClassifyAttempt(Http(400, R"({"error":{"message":")" + std::string(3, 'a') + "\\n" + std::string(497, 'b') +
                                                   R"(","type":"invalid_request_error"}})"),
                                     Status::OK(), p, kNow);
  CHECK(c.outcome == AttemptOutcome::kFailJob);
  const std::string prefix = "HTTP 400 invalid_request_error: ";
  REQUIRE(c.reason.size() == prefix.size() + 200);
  CHECK(c.reason.substr(0, prefix.size() + 4) == prefix + "aaa ");
  CHECK(AttemptOutcomeName(AttemptOutcome::kRateLimited) == std::string("rate_limited"));
  CHECK(AttemptOutcomeName(AttemptOutcome::kStopRun) == std::string("stop_run"));
}
