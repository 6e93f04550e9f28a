// Status and Result<T>: the one error vocabulary used across every retort module boundary.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace retort {

// Error codes of retort's domain. Values are stable: they appear in JSON output
// (`StatusCodeName`) and in the service's error bodies.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,   // bad input: a flag, a prompt line, a request body
  kNotFound = 2,          // a named set, run or export does not exist
  kIOError = 3,           // file system or database I/O failed
  kCorruption = 4,        // stored data or a response body is not what it must be
  kRateLimited = 5,       // the teacher said 429
  kUnavailable = 6,       // the teacher or a replica cannot be reached right now
  kCancelled = 7,         // stopped by a signal or an operator
  kBudgetExhausted = 8,   // --max-requests / --max-total-tokens / --max-cost reached
  kFailedPrecondition = 9,// state conflict: run is locked, parameters differ, ...
  kUnauthenticated = 10,  // 401/403 from the teacher, or a missing service token
  kInternal = 11,         // a bug
  kRejected = 12,         // the teacher refuses every request the same way (404, 400, 422): the
                          // run's options are wrong, not one prompt
};

// Returns a stable lower_snake_case name for `code` ("invalid_argument", ...).
const char* StatusCodeName(StatusCode code);

// The outcome of an operation. Cheap when OK (a null pointer); carries a code and a
// message otherwise. Copyable, movable. Safe to share read-only between threads.
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status RateLimited(std::string msg) { return {StatusCode::kRateLimited, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status Cancelled(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
  static Status BudgetExhausted(std::string msg) { return {StatusCode::kBudgetExhausted, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) { return {StatusCode::kFailedPrecondition, std::move(msg)}; }
  static Status Unauthenticated(std::string msg) { return {StatusCode::kUnauthenticated, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status Rejected(std::string msg) { return {StatusCode::kRejected, std::move(msg)}; }

  bool ok() const { return state_ == nullptr; }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  // The message without the code; empty when OK.
  const std::string& message() const;
  // "invalid_argument: <message>", or "ok".
  std::string ToString() const;
  // Returns a copy whose message is prefixed with `context + ": "`. OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const State> state_;
};

// A value of type T or a non-OK Status. REQUIRES: constructed from a non-OK Status
// when there is no value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}   // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  // OK when a value is held.
  Status status() const { return ok() ? Status::OK() : std::get<Status>(v_); }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace retort

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define RETORT_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::retort::Status _retort_st = (expr);       \
    if (!_retort_st.ok()) return _retort_st;    \
  } while (0)
