// ClassifyAttempt: transport error + HTTP status + headers + body -> AttemptOutcome (wire-formats.md §B.5).
#include "teacher/error_classifier.h"

#include "teacher/json_field.h"

namespace retort {
namespace {

bool IsQuotaCode(const std::string& code) {
  return code == "insufficient_quota" || code == "credit_balance_exhausted" ||
         code == "organization_spend_limit_exceeded" || code == "project_spend_limit_exceeded" ||
         code == "organization_usage_limit_exceeded";
}

// "HTTP 429 rate_limit_exceeded: <message>" from the parsed error body (or a body snippet).
std::string HttpReason(const HttpResponse& resp, const ProviderError& e) {
  std::string r = "HTTP " + std::to_string(resp.status);
  // A numeric `code` is an HTTP status (llama-server, vLLM: {"code":404,"type":"not_found_error"}):
  // the kind is then in `type` ("HTTP 404 not_found_error", not "HTTP 404 404").
  const bool numeric = !e.code.empty() && e.code.find_first_not_of("0123456789") == std::string::npos;
  std::string kind = numeric && !e.type.empty() ? e.type : !e.code.empty() ? e.code : e.type;
  if (!kind.empty()) r += " " + ShortText(kind, 80);
  if (!e.message.empty()) {
    r += ": " + ShortText(e.message, 200);
  } else if (kind.empty() && !resp.body.empty()) {
    r += ": " + ShortText(resp.body, 200);
  }
  return r;
}

}  // namespace

const char* AttemptOutcomeName(AttemptOutcome o) {
  switch (o) {
    case AttemptOutcome::kSuccess: return "success";
    case AttemptOutcome::kRetry: return "retry";
    case AttemptOutcome::kRateLimited: return "rate_limited";
    case AttemptOutcome::kFailJob: return "fail_job";
    case AttemptOutcome::kStopRun: return "stop_run";
  }
  return "unknown";
}

Classification ClassifyAttempt(const HttpResponse& resp, const Status& parse_status, const Provider& provider,
                               Millis wall_now_ms) {
  Classification c;
  if (resp.error != TransportError::kNone) {
    c.outcome = AttemptOutcome::kRetry;
    c.reason = std::string("transport ") + TransportErrorName(resp.error);
    if (!resp.error_detail.empty()) c.reason += ": " + ShortText(resp.error_detail, 200);
    return c;
  }
  const int st = resp.status;
  if (st >= 200 && st < 300) {
    if (parse_status.ok()) {
      c.outcome = AttemptOutcome::kSuccess;
      c.reason = "HTTP " + std::to_string(st);
    } else {
      c.outcome = AttemptOutcome::kRetry;  // malformed or truncated bodies are retried
      c.reason = "HTTP " + std::to_string(st) + " bad body: " + ShortText(parse_status.message(), 200);
    }
    return c;
  }
  ProviderError e = provider.ParseError(resp.body);
  c.reason = HttpReason(resp, e);
  std::optional<Millis> hint = ParseRetryAfterMs(resp.headers, wall_now_ms);
  if (st == 401 || st == 403) {
    c.outcome = AttemptOutcome::kStopRun;
  } else if (st == 429) {
    if (e.type == "insufficient_quota" || IsQuotaCode(e.code) || e.detail_code == "enforced_spend_limit_reached") {
      c.outcome = AttemptOutcome::kStopRun;  // quota / spend cap: retrying cannot succeed
    } else {
      c.outcome = AttemptOutcome::kRateLimited;
      c.retry_after_ms = hint;
    }
  } else if (st == 408 || st == 409 || st >= 500) {
    c.outcome = AttemptOutcome::kRetry;
    c.retry_after_ms = hint;
  } else {
    c.outcome = AttemptOutcome::kFailJob;  // other 4xx (and unexpected 1xx/3xx)
  }
  return c;
}

}  // namespace retort
