// HttpTransport: one keep-alive HTTP(S) connection to a teacher endpoint (pimpl over
// cpp-httplib; this and the simulator are the only files that include httplib.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "retort/status.h"
#include "teacher/rate_limit_headers.h"

namespace retort {

struct TransportOptions {
  // "http://host:port/prefix" or "https://...". The prefix path is prepended to each request path.
  std::string base_url;
  // Connect and read timeout, seconds.
  double timeout_s = 600;
  // PEM bundle for server certificate verification ("" = system default).
  std::string ca_file;
  // Disable certificate verification. Only by explicit flag.
  bool insecure = false;
  // A body larger than this is abandoned with TransportError::kBodyTooLarge.
  std::size_t max_body_bytes = 64u << 20;
};

// How an attempt failed below HTTP. Frozen (stored as text in last_error).
enum class TransportError {
  kNone,          // an HTTP response was received (any status)
  kConnect,       // could not connect / TLS handshake failed
  kTimeout,       // connect or read timed out
  kReset,         // connection closed or reset mid-request / mid-body
  kBodyTooLarge,  // body exceeded max_body_bytes
  kCancelled,     // the on_chunk callback asked to stop
  kOther,
};
const char* TransportErrorName(TransportError e);

struct HttpResponse {
  TransportError error = TransportError::kNone;
  std::string error_detail;  // human text for transport errors (never contains headers)
  int status = 0;
  HeaderList headers;        // names lower-cased
  std::string body;          // complete body (also when streamed, unless on_chunk consumes it)
  double latency_ms = 0;     // request start -> last byte
  double first_byte_ms = -1; // request start -> first body byte
};

// One connection. Not safe for concurrent use: give each worker its own.
class HttpTransport {
 public:
  // InvalidArgument for a malformed base URL or unsupported scheme.
  static Result<std::unique_ptr<HttpTransport>> Create(const TransportOptions& opts);
  virtual ~HttpTransport() = default;
  // POSTs `body` (application/json) to base path + `path`. When `on_chunk` is set, it is
  // called with each body chunk as it arrives (return false to abort -> kCancelled);
  // the body is still accumulated in HttpResponse::body. TCP_NODELAY and keep-alive are on.
  virtual HttpResponse Post(std::string_view path, const HeaderList& headers, const std::string& body,
                            const std::function<bool(std::string_view)>& on_chunk = nullptr) = 0;
  // GET, used for health probes.
  virtual HttpResponse Get(std::string_view path, const HeaderList& headers) = 0;
  // Aborts a request in progress on another thread (its Post returns kCancelled or kReset).
  // The only method that is safe to call concurrently with Post.
  virtual void Cancel() = 0;
  // "host:port" of the endpoint (no credentials, no path).
  virtual std::string Host() const = 0;
};

}  // namespace retort
