// ApiRouter: the HTTP side of `retort serve` — routes, auth, size caps, JSON errors (cpp-httplib).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "retort/log.h"
#include "retort/status.h"
#include "service/request_guard.h"
#include "service/service.h"

namespace retort {

struct ApiServerOptions {
  // Address and port to listen on; port 0 picks a free port (see ApiRouter::Bind()).
  std::string host = "127.0.0.1";
  int port = 8377;
  // The --listen host as the operator wrote it ("localhost"), accepted as a Host header with
  // the port like `host` ("" = only `host`).
  std::string host_name;
  // Bearer token every request except GET /healthz must carry ("" = no auth; only allowed on
  // loopback, which the CLI enforces). Never logged.
  std::string token;
  // Host names (--allow-host, "name" or "name:port") accepted besides the listen address: see
  // AllowedHosts() and CheckRequest() in request_guard.h.
  std::vector<std::string> allowed_hosts;
  // Request bodies larger than this get 413, whether sent with Content-Length or chunked.
  std::int64_t max_body_bytes = 64LL << 20;
  // HTTP worker threads (see GateOptions in connection_gate.h: request heads are read by a
  // separate thread, so slow clients do not hold these).
  int threads = 16;
  // From a request's first byte to the end of its head (408 after), and from a worker taking
  // it to the end of its body.
  int header_timeout_ms = 10'000;
  int body_timeout_ms = 60'000;
  // Access log (method, path, status; never headers or bodies). nullptr = dropped.
  LogSink* log = nullptr;
};

// Owns the HTTP server. Bind() once, then Serve() on one thread; Stop() from any thread.
class ApiRouter {
 public:
  // `service` must outlive the router.
  ApiRouter(Service* service, ApiServerOptions opts);
  ~ApiRouter();
  ApiRouter(const ApiRouter&) = delete;
  ApiRouter& operator=(const ApiRouter&) = delete;

  // Binds the listening socket; returns the bound port. IOError when the address cannot be bound.
  Result<int> Bind();
  // Serves until Stop(). REQUIRES: Bind() succeeded.
  void Serve();
  // Stops accepting requests and makes Serve() return (after the requests in progress have
  // been answered). Idempotent; safe from any thread.
  void Stop();
  // Serves one connection on the calling thread until it closes, exactly as a connection from
  // the listening socket is served (guard, routes, deadlines). For tests and fuzzing.
  void ServeConnection(int fd);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One route of the API: its method ("GET" — which answers HEAD too — or "POST") and its path as
// an OpenAPI path template ("/v1/runs/{name}/pause"; a {parameter} is one path segment).
struct ApiRoute {
  std::string method;
  std::string path;
};
// Every route ApiRouter serves, in the order they are matched: the table the router registers
// its handlers from. Any other path is 404 not_found.
std::vector<ApiRoute> ApiRoutes();

// HTTP status of an error Status: 400, 401, 404, 409, 503, else 500.
int HttpStatusOf(const Status& st);
// {"error": {"code": ..., "message": ...}} as text; bytes of `message` that are not UTF-8 are
// replaced (U+FFFD), so it never throws.
std::string ErrorBody(const std::string& code, const std::string& message);

}  // namespace retort
