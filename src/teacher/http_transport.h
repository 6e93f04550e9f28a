// HttpTransport: one keep-alive HTTP/1.1 (or HTTPS) connection to a teacher endpoint, with every
// byte from the network bounded in size and time (our own client over HttpConnection: the
// version of cpp-httplib we build against cannot bound response headers or a whole request).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "retort/status.h"
#include "teacher/rate_limit_headers.h"

namespace retort {

struct TransportOptions {
  // "http://host:port/prefix" or "https://...". The prefix path is prepended to each request path.
  std::string base_url;
  // Total time one request may take, from the first connection attempt to the last body byte,
  // seconds (a server that trickles bytes cannot keep a request open longer).
  double timeout_s = 600;
  // Longest silence while waiting for the next byte, seconds; 0 = the same as timeout_s.
  double idle_timeout_s = 0;
  // Longest wait to open a TCP connection (within timeout_s), seconds.
  double connect_timeout_s = 30;
  // PEM bundle for server certificate verification ("" = system default).
  std::string ca_file;
  // Disable certificate verification. Only by explicit flag.
  bool insecure = false;
  // A body larger than this is abandoned with TransportError::kBodyTooLarge.
  std::size_t max_body_bytes = 64u << 20;
  // Status line and headers (each line, and all of them together) larger than this are
  // abandoned with TransportError::kHeadersTooLarge.
  std::size_t max_header_bytes = 64u << 10;
  // Honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment (see proxy_config.h).
  bool use_env_proxy = true;
  // Where those variables are read (empty = the process environment); tests inject their own.
  std::function<std::optional<std::string>(const char* name)> env;
  // Hooks for the owner's connection accounting, called on the sending thread: before a new
  // connection is opened (it may block, e.g. to space connections out), and once for each such
  // call when that connection closes or fails to open.
  std::function<void()> before_connect;
  std::function<void()> after_close;
};

// How an attempt failed below HTTP. Frozen (stored as text in last_error).
enum class TransportError {
  kNone,              // an HTTP response was received (any status)
  kConnect,           // could not connect / TLS handshake failed / the proxy refused the tunnel
  kTimeout,           // connect, idle or total deadline passed
  kReset,             // connection closed or reset mid-request / mid-body
  kBodyTooLarge,      // body exceeded max_body_bytes
  kCancelled,         // the on_chunk callback or Cancel() asked to stop
  kOther,             // a malformed response (status line, chunk framing, lengths)
  kHeadersTooLarge,   // status line + headers exceeded max_header_bytes
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
  double response_start_ms = -1;  // request start -> first byte of the status line
  // The request went out on a connection that had carried earlier requests.
  bool reused_connection = false;
  // The first try failed on a reused connection before any response byte (the server had
  // closed it), so the request was sent once more on a fresh connection. Not an error.
  bool resent = false;
};

// A request body streamed from a file between two in-memory pieces (a multipart upload, a batch
// create body): never held in memory whole. Read again from the start when a request is resent.
struct StreamedBody {
  std::string content_type;  // e.g. "multipart/form-data; boundary=..."
  std::string head;          // sent before the file's bytes
  std::string file_path;
  std::string tail;          // sent after them
};

// True when `base_url` is plain http:// to a host that is not loopback: whatever is sent there
// (an API key) can be read on the network path. False for https, loopback and malformed URLs.
bool IsCleartextToRemote(const std::string& base_url);

// One connection. Not safe for concurrent use: give each worker its own.
// Creating one makes the process ignore SIGPIPE (a dead peer must be an error value, not a signal).
class HttpTransport {
 public:
  // InvalidArgument for a malformed base URL, an unsupported scheme, an unusable proxy
  // variable or an unreadable CA file.
  static Result<std::unique_ptr<HttpTransport>> Create(const TransportOptions& opts);
  virtual ~HttpTransport() = default;
  // POSTs `body` (application/json) to base path + `path`. When `on_chunk` is set, it is
  // called with each body chunk as it arrives (return false to abort -> kCancelled);
  // the body is still accumulated in HttpResponse::body. TCP_NODELAY and keep-alive are on;
  // a request that fails on a reused connection before any response byte is re-sent once on
  // a fresh one; a "Connection: close" answer retires the connection. `on_head`, when set, is
  // called once with the response so far (status, headers, timings; no body yet) as soon as
  // the status line and headers have arrived, before the body is read.
  virtual HttpResponse Post(std::string_view path, const HeaderList& headers, const std::string& body,
                            const std::function<bool(std::string_view)>& on_chunk = nullptr,
                            const std::function<void(const HttpResponse&)>& on_head = nullptr) = 0;
  // GET, used for health probes.
  virtual HttpResponse Get(std::string_view path, const HeaderList& headers) = 0;
  // POST whose body is streamed from `body` (batch uploads of up to hundreds of MB).
  virtual HttpResponse PostStream(std::string_view path, const HeaderList& headers, const StreamedBody& body) = 0;
  // GET whose body, when the status is 200, goes only to `on_chunk` (not kept in
  // HttpResponse::body nor bounded by max_body_bytes: the consumer bounds it); any other
  // status's body is kept as usual (an error body to report).
  virtual HttpResponse GetStream(std::string_view path, const HeaderList& headers,
                                 const std::function<bool(std::string_view)>& on_chunk) = 0;
  // Aborts the request in progress on another thread (its Post returns kCancelled), or the
  // next one if none is in progress. The only method that is safe to call concurrently.
  virtual void Cancel() = 0;
  // Closes the idle connection, if any (the next request opens a new one): a connection with
  // nothing to carry should not hold a server's worker thread.
  virtual void CloseIdle() = 0;
  // "host:port" of the endpoint (no credentials, no path).
  virtual std::string Host() const = 0;
  // "direct" or "proxy host:port (from HTTPS_PROXY)" (no credentials).
  virtual std::string Route() const = 0;
  // True while a connection is open (the next request may reuse it).
  virtual bool Connected() const = 0;
  // How long the request in progress has been waiting for the first byte of its response, ms,
  // when it went out on a new connection (one that has not carried a response yet: a
  // thread-per-connection server may not have picked it up); -1 otherwise (no request in
  // progress, its response has begun, or its connection is already being served). Safe to
  // call from any thread.
  virtual double AwaitingResponseMs() const = 0;
};

}  // namespace retort
