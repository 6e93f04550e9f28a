// HttpTransport against servers that behave as real ones do (llama-server closing a keep-alive
// connection after a stream, Connection: close, trickling bytes, endless headers, proxies).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "teacher/http_transport.h"
#include "teacher/raw_server.h"

using namespace retort;
using retort::test::RawServer;
using retort::test::ReadHttpRequest;
using retort::test::SendAll;

namespace {

const char kOk[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

TransportOptions Opts(const std::string& url, double timeout_s = 10) {
  TransportOptions o;
  o.base_url = url;
  o.timeout_s = timeout_s;
  o.use_env_proxy = false;
  return o;
}

}  // namespace

TEST_CASE("HttpTransport re-sends once on a fresh connection when the server dropped a reused one",
          "[teacher][transport]") {
  // Connection 0 answers one request with keep-alive headers, reads the next one and closes
  // without a byte (what llama-server does after an SSE response, seen from a fast client).
  std::atomic<int> requests_seen{0};
  RawServer server([&](int fd, int index) {
    if (index == 0) {
      if (ReadHttpRequest(fd).empty()) return;
      ++requests_seen;
      SendAll(fd, "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 2\r\n\r\n{}");
      if (!ReadHttpRequest(fd).empty()) ++requests_seen;  // read, never answered
      return;
    }
    while (!ReadHttpRequest(fd).empty()) {
      ++requests_seen;
      if (!SendAll(fd, kOk)) return;
    }
  });
  auto t = HttpTransport::Create(Opts(server.Url()));
  REQUIRE(t.ok());
  HttpResponse first = (*t)->Post("/chat/completions", {}, "{}");
  REQUIRE(first.status == 200);
  CHECK_FALSE(first.reused_connection);
  HttpResponse second = (*t)->Post("/chat/completions", {}, "{}");
  CHECK(second.error == TransportError::kNone);
  CHECK(second.status == 200);
  CHECK(second.resent);
  CHECK(server.accepted() == 2);
  CHECK(requests_seen.load() == 3);
  // The fresh connection is kept for the next request.
  HttpResponse third = (*t)->Post("/chat/completions", {}, "{}");
  CHECK(third.status == 200);
  CHECK(third.reused_connection);
  CHECK_FALSE(third.resent);
  CHECK(server.accepted() == 2);
}

TEST_CASE("HttpTransport does not re-send a request that failed on a fresh connection", "[teacher][transport]") {
  std::atomic<int> requests_seen{0};
  RawServer server([&](int fd, int) {
    if (!ReadHttpRequest(fd).empty()) ++requests_seen;  // then close without an answer
  });
  auto t = HttpTransport::Create(Opts(server.Url()));
  REQUIRE(t.ok());
  HttpResponse r = (*t)->Post("/chat/completions", {}, "{}");
  CHECK(r.error == TransportError::kReset);
  CHECK_FALSE(r.resent);
  CHECK(requests_seen.load() == 1);
  CHECK(server.accepted() == 1);
}

TEST_CASE("HttpTransport never re-sends after a response byte or a timeout on a reused connection",
          "[teacher][transport]") {
  std::atomic<int> requests_seen{0};
  const bool partial = GENERATE(true, false);
  RawServer server([&](int fd, int) {
    if (ReadHttpRequest(fd).empty()) return;
    ++requests_seen;
    SendAll(fd, kOk);
    if (ReadHttpRequest(fd).empty()) return;
    ++requests_seen;
    if (partial) {
      SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\"");  // then close mid-body
    } else {
      ReadHttpRequest(fd, 3000);  // silent until the client gives up
    }
  });
  TransportOptions o = Opts(server.Url());
  o.idle_timeout_s = 0.3;
  auto t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  REQUIRE((*t)->Post("/chat/completions", {}, "{}").status == 200);
  HttpResponse r = (*t)->Post("/chat/completions", {}, "{}");
  CHECK(r.error == (partial ? TransportError::kReset : TransportError::kTimeout));
  CHECK(r.reused_connection);
  CHECK_FALSE(r.resent);
  CHECK(requests_seen.load() == 2);
  CHECK(server.accepted() == 1);
}

TEST_CASE("HttpTransport retires a connection answered with Connection: close", "[teacher][transport]") {
  // Connection 0 says "close" but keeps the socket open: a second request on it would hang.
  std::atomic<int> on_first{0};
  RawServer server([&](int fd, int index) {
    if (index == 0) {
      if (ReadHttpRequest(fd).empty()) return;
      ++on_first;
      SendAll(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
      if (!ReadHttpRequest(fd, 1000).empty()) ++on_first;
      return;
    }
    while (!ReadHttpRequest(fd).empty())
      if (!SendAll(fd, kOk)) return;
  });
  auto t = HttpTransport::Create(Opts(server.Url(), 5));
  REQUIRE(t.ok());
  REQUIRE((*t)->Post("/chat/completions", {}, "{}").status == 200);
  CHECK_FALSE((*t)->Connected());
  HttpResponse r = (*t)->Post("/chat/completions", {}, "{}");
  CHECK(r.status == 200);
  CHECK_FALSE(r.reused_connection);
  CHECK(server.accepted() == 2);
  server.Stop();
  CHECK(on_first.load() == 1);
}

TEST_CASE("HttpTransport ends a trickling response at the total deadline", "[teacher][transport]") {
  // An SSE comment every 50 ms keeps the idle timeout from firing; only the deadline ends it.
  RawServer server([&](int fd, int) {
    if (ReadHttpRequest(fd).empty()) return;
    if (!SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    for (int i = 0; i < 400; ++i) {  // at most 20 s
      if (!SendAll(fd, "3\r\n:\n\n\r\n")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  TransportOptions o = Opts(server.Url(), 1.0);
  o.idle_timeout_s = 5;
  auto t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  int chunks = 0;
  HttpResponse r = (*t)->Post("/chat/completions", {}, "{}", [&](std::string_view) {
    ++chunks;
    return true;
  });
  CHECK(r.error == TransportError::kTimeout);
  CHECK(r.error_detail.find("deadline") != std::string::npos);
  CHECK(chunks >= 2);  // it was trickling, not silent
  CHECK(r.latency_ms < 5000);
  server.Stop();
}

TEST_CASE("HttpTransport abandons response headers beyond max_header_bytes", "[teacher][transport][hostile]") {
  RawServer server([&](int fd, int) {
    if (ReadHttpRequest(fd).empty()) return;
    if (!SendAll(fd, "HTTP/1.1 200 OK\r\n")) return;
    const std::string line = "X-Filler: " + std::string(1000, 'a') + "\r\n";
    for (int i = 0; i < 20000; ++i)  // up to 20 MB, unless the client hangs up first
      if (!SendAll(fd, line)) return;
  });
  TransportOptions o = Opts(server.Url());
  o.max_header_bytes = 16 * 1024;
  auto t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  HttpResponse r = (*t)->Post("/chat/completions", {}, "{}");
  CHECK(r.error == TransportError::kHeadersTooLarge);
  CHECK(r.headers.size() < 20);
  CHECK(std::string(TransportErrorName(r.error)) == "headers_too_large");
  server.Stop();
}

TEST_CASE("HttpTransport aborts a hung request when cancelled from another thread", "[teacher][transport]") {
  RawServer server([&](int fd, int) {
    ReadHttpRequest(fd);         // the request ...
    ReadHttpRequest(fd, 10000);  // ... then silence until Stop() (or 10 s)
  });
  auto t = HttpTransport::Create(Opts(server.Url(), 30));
  REQUIRE(t.ok());
  std::thread canceller([&] {
    while (server.accepted() == 0) std::this_thread::yield();
    (*t)->Cancel();
  });
  HttpResponse r = (*t)->Post("/chat/completions", {}, "{}");
  canceller.join();
  CHECK(r.error == TransportError::kCancelled);
  CHECK(r.latency_ms < 10000);
  server.Stop();
}

TEST_CASE("HttpTransport sends plain-http requests through HTTP_PROXY in absolute form", "[teacher][transport]") {
  std::string seen;
  std::mutex mu;
  RawServer proxy([&](int fd, int) {
    std::string req = ReadHttpRequest(fd);
    {
      std::lock_guard lk(mu);
      seen = req;
    }
    SendAll(fd, kOk);
  });
  TransportOptions o = Opts("http://teacher.example:8080/v1");
  o.use_env_proxy = true;
  const std::string proxy_url = "http://al%40ice:pw@127.0.0.1:" + std::to_string(proxy.port());
  o.env = [&](const char* name) -> std::optional<std::string> {
    if (std::string(name) == "HTTP_PROXY") return proxy_url;
    return std::nullopt;
  };
  auto t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  CHECK((*t)->Route() == "proxy 127.0.0.1:" + std::to_string(proxy.port()) + " (from $HTTP_PROXY)");
  HttpResponse r = (*t)->Post("/chat/completions", {{"Authorization", "Bearer k"}}, "{}");
  CHECK(r.status == 200);
  std::lock_guard lk(mu);
  CHECK(seen.rfind("POST http://teacher.example:8080/v1/chat/completions HTTP/1.1\r\n", 0) == 0);
  CHECK(seen.find("Host: teacher.example:8080\r\n") != std::string::npos);
  CHECK(seen.find("Proxy-Authorization: Basic YWxAaWNlOnB3\r\n") != std::string::npos);  // "al@ice:pw"
}

TEST_CASE("HttpTransport tunnels https through HTTPS_PROXY with CONNECT and reports a refusal",
          "[teacher][transport]") {
  std::string seen;
  std::mutex mu;
  RawServer proxy([&](int fd, int) {
    std::string req = ReadHttpRequest(fd);
    {
      std::lock_guard lk(mu);
      seen = req;
    }
    SendAll(fd, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
  });
  TransportOptions o = Opts("https://api.example.com/v1");
  o.use_env_proxy = true;
  o.env = [&](const char* name) -> std::optional<std::string> {
    if (std::string(name) == "https_proxy") return "127.0.0.1:" + std::to_string(proxy.port());
    if (std::string(name) == "NO_PROXY") return "other.example.com";
    return std::nullopt;
  };
  auto t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  HttpResponse r = (*t)->Post("/chat/completions", {}, "{}");
  CHECK(r.error == TransportError::kConnect);
  CHECK(r.error_detail.find("HTTP 407") != std::string::npos);
  CHECK(r.error_detail.find("$https_proxy") != std::string::npos);
  std::lock_guard lk(mu);
  CHECK(seen.rfind("CONNECT api.example.com:443 HTTP/1.1\r\n", 0) == 0);
}
