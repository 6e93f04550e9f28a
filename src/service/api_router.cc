// ApiRouter: maps the /v1 HTTP API onto the Service; bearer-token check, body cap, access log.
#include "service/api_router.h"

#include <httplib.h>

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
  return json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  // Every byte of the longer string is visited; the length difference is folded in.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
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
  res.set_content(r->dump(), kJson);
}

}  // namespace

struct ApiRouter::Impl {
  Service* svc;
  ApiServerOptions opts;
  LogSink* log;
  httplib::Server server;
  bool bound = false;

  void Log(LogLevel level, const std::string& msg) { log->Write(LogLine{level, "", 0, 0, msg}); }
  void Routes();
};

void ApiRouter::Impl::Routes() {
  httplib::Server& s = server;
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"status", "ok"}}.dump(), kJson);
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(svc->MetricsText(), "text/plain; version=0.0.4; charset=utf-8");
  });
  // Prompt sets.
  s.Post(R"(/v1/prompt-sets/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, svc->ImportPromptSet(req.matches[1], req.body));
  });
  s.Get("/v1/prompt-sets", [this](const httplib::Request&, httplib::Response& res) { Send(res, svc->ListPromptSets()); });
  s.Get(R"(/v1/prompt-sets/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, svc->GetPromptSet(req.matches[1]));
  });
  // Runs.
  s.Post("/v1/runs", [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, svc->StartRun(req.body), 202);
  });
  s.Get("/v1/runs", [this](const httplib::Request&, httplib::Response& res) { Send(res, svc->ListRuns()); });
  s.Get(R"(/v1/runs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, svc->GetRun(req.matches[1]));
  });
  s.Post(R"(/v1/runs/([^/]+)/(pause|resume|cancel))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    const std::string op = req.matches[2];
    if (op == "pause") Send(res, svc->PauseRun(name));
    else if (op == "resume") Send(res, svc->ResumeRun(name));
    else Send(res, svc->CancelRun(name));
  });
  // Exports.
  s.Post("/v1/exports", [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, svc->StartExport(req.body), 202);
  });
  s.Get(R"(/v1/exports/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, svc->GetExport(req.matches[1]));
  });
}

ApiRouter::ApiRouter(Service* service, ApiServerOptions opts) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.svc = service;
  m.opts = std::move(opts);
  m.log = m.opts.log ? m.opts.log : NullLogSink();
  const int threads = std::max(1, m.opts.threads);
  m.server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  m.server.set_tcp_nodelay(true);
  m.server.set_payload_max_length(static_cast<size_t>(std::max<std::int64_t>(0, m.opts.max_body_bytes)));
  // Auth before routing (and before the body is read). GET /healthz is open.
  m.server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const Impl& im = *impl_;
    if (im.opts.token.empty() || (req.method == "GET" && req.path == "/healthz"))
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (ConstantTimeEquals(auth, "Bearer " + im.opts.token)) return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer");
    res.set_content(ErrorBody("unauthenticated", "a valid 'Authorization: Bearer <token>' header is required"), kJson);
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
  m.bound = true;
  return port;
}

void ApiRouter::Serve() {
  if (impl_->bound) impl_->server.listen_after_bind();
}

void ApiRouter::Stop() { impl_->server.stop(); }

}  // namespace retort
