// The one place where a transport error + HTTP status + headers + body become a decision.
#pragma once

#include <optional>
#include <string>

#include "retort/clock.h"
#include "teacher/http_transport.h"
#include "teacher/provider.h"

namespace retort {

enum class AttemptOutcome {
  kSuccess,      // 2xx with a parseable body
  kRetry,        // transient: connection error, timeout, 408, 409, 5xx, 529, malformed/truncated body
  kRateLimited,  // retryable 429: pause every worker until retry_after, re-queue without using an attempt
  kFailJob,      // permanent for this job: other 4xx (400, 404, 413, 422, ...)
  kStopRun,      // stop the whole run: 401/403, or a non-retryable 429 (quota/spend cap)
};
const char* AttemptOutcomeName(AttemptOutcome o);

struct Classification {
  AttemptOutcome outcome = AttemptOutcome::kRetry;
  std::optional<Millis> retry_after_ms;  // server hint (Retry-After / retry-after-ms), if any
  std::string reason;                    // short human text, e.g. "HTTP 503: overloaded"; no secrets
};

// Classifies an attempt. `parse_status` is the status of parsing a 2xx body (OK when the body
// parsed); it is ignored for non-2xx. `x-should-retry` is not honoured (we are the policy).
Classification ClassifyAttempt(const HttpResponse& resp, const Status& parse_status, const Provider& provider,
                               Millis wall_now_ms);

}  // namespace retort
