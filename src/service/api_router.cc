// ApiRouter: maps the /v1 HTTP API onto the Service; request guard, body cap, access log.
#include "service/api_router.h"

#include <httplib.h>

#include "service/connection_gate.h"
#include "service/dashboard_assets.h"
#include "service/openapi_document.h"

#include <chrono>
#include <nlohmann/json.hpp>

namespace retort {

using nlohmann::json;

int HttpStatusOf(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

std::string ErrorBody(const std::string& code, const std::string& message) {
  // Messages quote request input (a path, a name) that need not be UTF-8: replaced, never thrown.
  return json{{"error", {{"code", code}, {"message", message}}}}.dump(-1, ' ', false,
                                                                      json::error_handler_t::replace);
}

namespace {

constexpr const char* kJson = "application/json";

void SendError(httplib::Response& res, const Status& st) {
  res.status = HttpStatusOf(st);
  res.set_content(ErrorBody(StatusCodeName(st.code()), st.message()), kJson);
}

void Send(httplib::Response& res, const Result<json>& r, int ok_status = 200) {
  if (!r.ok()) return SendError(res, r.status());
  res.status = ok_status;
  res.set_content(r->dump(-1, ' ', false, json::error_handler_t::replace), kJson);
}

QueryParams QueryOf(const httplib::Request& req) { return QueryParams(req.params.begin(), req.params.end()); }

// What the guard needs of a parsed request.
RequestHead HeadOf(const httplib::Request& req) {
  RequestHead h;
  h.method = req.method;
  h.path = req.path;
  auto one = [&](const char* name, std::optional<std::string>* value, int* count) {
    const size_t n = req.get_header_value_count(name);
    if (count) *count = static_cast<int>(n);
    if (n > 0) *value = req.get_header_value(name);
  };
  one("Host", &h.host, &h.host_count);
  one("Origin", &h.origin, &h.origin_count);
  one("Authorization", &h.authorization, nullptr);
  one("Content-Type", &h.content_type, nullptr);
  one("Content-Length", &h.content_length, &h.content_length_count);
  one("Transfer-Encoding", &h.transfer_encoding, &h.transfer_encoding_count);
  if (!req.local_addr.empty() && req.local_port > 0) {
    std::string a = req.local_addr;
    if (a.rfind("::ffff:", 0) == 0 && a.find('.') != std::string::npos) a = a.substr(7);  // IPv4-mapped
    h.local_authority = (a.find(':') != std::string::npos ? "[" + a + "]" : a) + ":" + std::to_string(req.local_port);
  }
  return h;
}

// Reads the request body through `reader` into *body, at most `max` bytes whether it comes
// with a Content-Length or chunked (the library caps only the former). A request with neither
// header has no body (`curl -X POST .../pause`). Past the cap, up to kDrainBytes more are read
// and dropped so that the client, still sending, gets to read the 413 (closing on unread data
// would reset the connection under it). Returns false with `res` filled (413 or 400).
constexpr std::int64_t kDrainBytes = 1 << 20;
bool ReadBody(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
              std::int64_t max, std::string* body) {
  if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) return true;
  bool too_large = false;
  std::int64_t dropped = 0;
  const bool ok = reader([&](const char* data, size_t n) {
    if (!too_large && static_cast<std::int64_t>(body->size() + n) > max) {
      too_large = true;
      std::string().swap(*body);
    }
    if (too_large) return (dropped += static_cast<std::int64_t>(n)) <= kDrainBytes;
    body->append(data, n);
    return true;
  });
  if (ok && !too_large) return true;
  if (!ok) res.set_header("Connection", "close");  // the rest of the body was not read
  if (too_large) {
    res.status = 413;
    res.set_content(ErrorBody("payload_too_large", "the request body exceeds --max-body-bytes (" +
                                                       std::to_string(max) + " bytes)"),
                    kJson);
  } else {
    res.status = 400;
    res.set_content(ErrorBody("invalid_argument", "the request body could not be read"), kJson);
  }
  return false;
}

}  // namespace

static GateOptions GateOptionsOf(const ApiServerOptions& o) {
  GateOptions g;
  g.threads = std::max(1, o.threads);
  g.reserved_threads = std::min(4, g.threads / 4);
  g.header_timeout_ms = o.header_timeout_ms;
  g.body_timeout_ms = o.body_timeout_ms;
  return g;
}

struct ApiRouter::Impl {
  Impl(Service* s, ApiServerOptions o)
      : svc(s), opts(std::move(o)), log(opts.log ? opts.log : NullLogSink()), server(GateOptionsOf(opts)) {}
  Service* svc;
  ApiServerOptions opts;
  LogSink* log;
  GatedServer server;
  GuardConfig guard;  // complete once Bind() knows the port
  bool bound = false;

  void Log(LogLevel level, const std::string& msg) { log->Write(LogLine{level, "", 0, 0, msg}); }
  void Routes();
  // A POST route whose handler gets the body read by ReadBody().
  void Post(const std::string& pattern,
            std::function<void(const httplib::Request&, httplib::Response&, std::string)> fn) {
    server.Post(pattern, [this, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res,
                                                    const httplib::ContentReader& reader) {
      std::string body;
      if (ReadBody(req, res, reader, opts.max_body_bytes, &body)) fn(req, res, std::move(body));
    });
  }
};

namespace {

// One row of the route table: the method, the path as an OpenAPI template ({x} = one path
// segment, passed to the handler as req.matches[1], [2], ...) and the handler. The body is
// empty for GET; POST bodies have been read by ReadBody().
struct RouteDef {
  const char* method;
  const char* path;
  void (*handle)(Service& svc, const httplib::Request& req, httplib::Response& res, std::string body);
};

// The API. ApiRoutes() lists it and the OpenAPI document (openapi.json) describes it; a test
// keeps the two equal.
const std::vector<RouteDef>& RouteTable() {
  static const std::vector<RouteDef> kRoutes = {
      {"GET", "/healthz",
       [](Service&, const httplib::Request&, httplib::Response& res, std::string) {
         res.set_content(json{{"status", "ok"}}.dump(), kJson);
       }},
      {"GET", "/metrics",
       [](Service& svc, const httplib::Request&, httplib::Response& res, std::string) {
         res.set_content(svc.MetricsText(), "text/plain; version=0.0.4; charset=utf-8");
       }},
      {"GET", "/v1/openapi.json",
       [](Service&, const httplib::Request&, httplib::Response& res, std::string) {
         const std::string_view doc = OpenApiDocument();
         res.set_content(doc.data(), doc.size(), kJson);
       }},
      // Prompt sets.
      {"POST", "/v1/prompt-sets/{name}",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string body) {
         Send(res, svc.ImportPromptSet(req.matches[1], body));
       }},
      {"GET", "/v1/prompt-sets",
       [](Service& svc, const httplib::Request&, httplib::Response& res, std::string) {
         Send(res, svc.ListPromptSets());
       }},
      {"GET", "/v1/prompt-sets/{name}",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.GetPromptSet(req.matches[1]));
       }},
      // Runs. The body of pause, resume and cancel is ignored (it may be empty or absent).
      {"POST", "/v1/runs",
       [](Service& svc, const httplib::Request&, httplib::Response& res, std::string body) {
         Send(res, svc.StartRun(body), 202);
       }},
      {"GET", "/v1/runs",
       [](Service& svc, const httplib::Request&, httplib::Response& res, std::string) { Send(res, svc.ListRuns()); }},
      {"GET", "/v1/runs/{name}",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.GetRun(req.matches[1]));
       }},
      {"POST", "/v1/runs/{name}/pause",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.PauseRun(req.matches[1]));
       }},
      {"POST", "/v1/runs/{name}/resume",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.ResumeRun(req.matches[1]));
       }},
      {"POST", "/v1/runs/{name}/cancel",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.CancelRun(req.matches[1]));
       }},
      // The response browser and the rate samples of the dashboard.
      {"GET", "/v1/runs/{name}/responses",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.ListResponses(req.matches[1], QueryOf(req)));
       }},
      {"GET", "/v1/runs/{name}/responses/{job_id}",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.GetResponse(req.matches[1], req.matches[2]));
       }},
      {"GET", "/v1/runs/{name}/samples",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.GetRunSamples(req.matches[1], QueryOf(req)));
       }},
      // Exports.
      {"POST", "/v1/exports",
       [](Service& svc, const httplib::Request&, httplib::Response& res, std::string body) {
         Send(res, svc.StartExport(body), 202);
       }},
      {"GET", "/v1/exports/{id}",
       [](Service& svc, const httplib::Request& req, httplib::Response& res, std::string) {
         Send(res, svc.GetExport(req.matches[1]));
       }},
  };
  return kRoutes;
}

// "/v1/runs/{name}/pause" -> "/v1/runs/([^/]+)/pause" (httplib matches the whole path).
std::string PathRegex(const std::string& path) {
  std::string re;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '{') {
      i = path.find('}', i);
      re += "([^/]+)";
    } else if (path[i] == '.') {
      re += "\\.";
    } else {
      re += path[i];
    }
  }
  return re;
}

}  // namespace

std::vector<ApiRoute> ApiRoutes() {
  std::vector<ApiRoute> routes;
  for (const RouteDef& r : RouteTable()) routes.push_back({r.method, r.path});
  return routes;
}

void ApiRouter::Impl::Routes() {
  for (const RouteDef& r : RouteTable()) {
    const auto handle = r.handle;
    if (std::string(r.method) == "POST") {
      Post(PathRegex(r.path), [this, handle](const httplib::Request& req, httplib::Response& res, std::string body) {
        handle(*svc, req, res, std::move(body));
      });
    } else {
      server.Get(PathRegex(r.path), [this, handle](const httplib::Request& req, httplib::Response& res) {
        handle(*svc, req, res, std::string());
      });
    }
  }
  // The dashboard: static files compiled in, not API routes (ApiRoutes() leaves them out). They
  // hold no data; the page asks for the token and reads everything through the API.
  for (const DashboardAsset& a : DashboardAssets()) {
    server.Get(PathRegex(std::string(a.path)), [a](const httplib::Request&, httplib::Response& res) {
      res.set_header("Content-Security-Policy", std::string(kDashboardCsp));
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Referrer-Policy", "no-referrer");
      res.set_header("X-Frame-Options", "DENY");
      res.set_header("Cache-Control", "no-cache");
      res.set_content(a.body.data(), a.body.size(), std::string(a.content_type).c_str());
    });
  }
  // Any other POST: 404 without reading the body (the library would read a body without a
  // length until the connection closes).
  server.Post(".*", [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader&) {
    res.status = 404;
    res.set_header("Connection", "close");
    res.set_content(ErrorBody("not_found", "no route " + req.method + " " + req.path), kJson);
  });
}

ApiRouter::ApiRouter(Service* service, ApiServerOptions opts)
    : impl_(std::make_unique<Impl>(service, std::move(opts))) {
  Impl& m = *impl_;
  m.server.set_tcp_nodelay(true);
  m.server.set_payload_max_length(static_cast<size_t>(std::max<std::int64_t>(0, m.opts.max_body_bytes)));
  m.guard.token = m.opts.token;
  for (const DashboardAsset& a : DashboardAssets()) m.guard.public_paths.emplace_back(a.path);
  m.guard.max_body_bytes = m.opts.max_body_bytes;
  m.guard.allowed_hosts = AllowedHosts(m.opts.host, m.opts.port, m.opts.allowed_hosts);  // Bind() redoes it
  // Host, Origin, token, Content-Type and framing before routing, before the body is read:
  // a refused request costs no body read and never reaches the Service.
  m.server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const GuardVerdict v = CheckRequest(impl_->guard, HeadOf(req));
    if (v.ok()) return httplib::Server::HandlerResponse::Unhandled;
    res.status = v.status;
    if (v.status == 401) res.set_header("WWW-Authenticate", "Bearer");
    // The body (if any) is not read: the connection cannot carry another request.
    res.set_header("Connection", "close");
    res.set_content(ErrorBody(v.code, v.message), kJson);
    return httplib::Server::HandlerResponse::Handled;
  });
  // Errors produced by httplib itself (404 no route, 413 too large, 400 bad request) get JSON.
  m.server.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                          httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string code = "http_error", msg = "HTTP " + std::to_string(res.status);
    if (res.status == 404) {
      code = "not_found";
      msg = "no route " + req.method + " " + req.path;
    } else if (res.status == 413) {
      code = "payload_too_large";
      if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0)
        // The HTTP library parses form bodies and caps them at 8 KiB (curl -d/--data-binary default).
        msg = "form-encoded bodies are limited to 8 KiB: send JSONL as Content-Type: application/x-ndjson "
              "and JSON as application/json";
      else
        msg = "the request body exceeds --max-body-bytes (" + std::to_string(impl_->opts.max_body_bytes) + " bytes)";
    } else if (res.status == 400) {
      code = "invalid_argument";
      msg = "malformed HTTP request";
    }
    res.set_content(ErrorBody(code, msg), kJson);
    return httplib::Server::HandlerResponse::Handled;
  }));
  m.server.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
    impl_->Log(LogLevel::kError, "internal error handling " + req.method + " " + req.path);
    res.status = 500;
    res.set_content(ErrorBody("internal", "internal error"), kJson);
  });
  m.server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    // Method, path and status only: never headers (tokens) or bodies.
    const LogLevel level = res.status >= 500 ? LogLevel::kError : res.status >= 400 ? LogLevel::kWarn : LogLevel::kDebug;
    impl_->Log(level, req.method + " " + req.path + " -> " + std::to_string(res.status) + " (" + req.remote_addr + ")");
  });
  m.Routes();
}

ApiRouter::~ApiRouter() { Stop(); }

Result<int> ApiRouter::Bind() {
  Impl& m = *impl_;
  int port = m.opts.port;
  if (port == 0) {
    port = m.server.bind_to_any_port(m.opts.host);
    if (port <= 0) return Status::IOError("cannot listen on " + m.opts.host + ":0");
  } else if (!m.server.bind_to_port(m.opts.host, port)) {
    return Status::IOError("cannot listen on " + m.opts.host + ":" + std::to_string(port) +
                           " (address in use or not available)");
  }
  m.server.WidenBacklog();
  m.guard.allowed_hosts = AllowedHosts(m.opts.host, port, m.opts.allowed_hosts);
  if (!m.opts.host_name.empty())
    for (const std::string& h : AllowedHosts(m.opts.host_name, port, {})) m.guard.allowed_hosts.push_back(h);
  m.bound = true;
  return port;
}

void ApiRouter::Serve() {
  if (impl_->bound) impl_->server.listen_after_bind();
  impl_->server.Drain();
}

void ApiRouter::ServeConnection(int fd) { impl_->server.ServeConnectionInline(fd); }

void ApiRouter::Stop() { impl_->server.stop(); }

}  // namespace retort
