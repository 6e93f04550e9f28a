#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <httplib.h>

#include "teacher/http_transport.h"

using namespace retort;

namespace {

// A loopback httplib server on an ephemeral port, stopped (and its hung handlers released)
// when the fixture goes out of scope.
class LoopbackServer {
 public:
  LoopbackServer() {
    svr_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        remote_ports_.push_back(req.remote_port);
        last_auth_ = req.get_header_value("Authorization");
        last_content_type_ = req.get_header_value("Content-Type");
      }
      res.set_header("X-RateLimit-Remaining-Requests", "5");
      res.set_content("{\"echo\":" + req.body + "}", "application/json");
    });
    svr_.Post("/v1/stream", [](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/event-stream", [](std::size_t offset, httplib::DataSink& sink) {
        if (offset >= 3 * 12) {
          sink.done();
          return true;
        }
        std::string piece = "data: " + std::to_string(100000 + offset).substr(0, 4) + "\n\n";  // 12 bytes
        return sink.write(piece.data(), piece.size());
      });
    });
    svr_.Post("/v1/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(100000, 'z'), "text/plain");
    });
    svr_.Post("/v1/limited", [](const httplib::Request&, httplib::Response& res) {
      res.status = 429;
      res.set_header("Retry-After", "3");
      res.set_content(R"({"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}})", "application/json");
    });
    svr_.Post("/v1/hang", [this](const httplib::Request&, httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(30), [this] { return released_; });
      res.set_content("late", "text/plain");
    });
    svr_.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
    port_ = svr_.bind_to_any_port("127.0.0.1");  // listening from here on; accepts queue in the backlog
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
  }

  ~LoopbackServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    // stop() only acts once the accept loop runs; wait for it (bounded).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!svr_.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    svr_.stop();
    thread_.join();
  }

  std::string Url(const std::string& prefix = "/v1") const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix;
  }
  int port() const { return port_; }
  std::vector<int> RemotePorts() {
    std::lock_guard<std::mutex> lock(mu_);
    return remote_ports_;
  }
  std::string LastAuth() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_auth_;
  }
  std::string LastContentType() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_content_type_;
  }

 private:
  httplib::Server svr_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<int> remote_ports_;
  std::string last_auth_, last_content_type_;
};

std::unique_ptr<HttpTransport> MakeTransport(const std::string& url, double timeout_s = 10, std::size_t max_body = 1u << 20) {
  TransportOptions o;
  o.base_url = url;
  o.timeout_s = timeout_s;
  o.max_body_bytes = max_body;
  auto t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  return std::move(t.value());
}

// A loopback port with nothing listening on it.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string HeaderValue(const HeaderList& h, const std::string& name) {
  for (const auto& [k, v] : h)
    if (k == name) return v;
  return "";
}

}  // namespace

TEST_CASE("HttpTransport::Create validates the base URL", "[teacher]") {
  for (const char* bad : {"", "localhost:8080", "ftp://host", "http://", "http://:80", "http://host:", "http://host:0",
                          "http://host:99999", "http://host:8x", "http://user:secret@host", "http://host/v1?key=secret",
                          "http://[::1"}) {
    INFO(bad);
    TransportOptions o;
    o.base_url = bad;
    auto t = HttpTransport::Create(o);
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().code() == StatusCode::kInvalidArgument);
    CHECK(t.status().message().find("secret") == std::string::npos);
  }
  TransportOptions o;
  o.base_url = "http://example.com/v1/";
  auto t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  CHECK((*t)->Host() == "example.com:80");
  o.base_url = "HTTPS://api.example.com";
  t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  CHECK((*t)->Host() == "api.example.com:443");
  o.base_url = "http://[::1]:8080/v1";
  t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  CHECK((*t)->Host() == "[::1]:8080");
  o.base_url = "http://h";
  o.timeout_s = 0;
  CHECK(HttpTransport::Create(o).status().code() == StatusCode::kInvalidArgument);
  CHECK(TransportErrorName(TransportError::kBodyTooLarge) == std::string("body_too_large"));
}

TEST_CASE("HttpTransport posts JSON under the base path and returns a 200 body", "[teacher]") {
  LoopbackServer server;
  auto t = MakeTransport(server.Url("/v1/"));
  CHECK(t->Host() == "127.0.0.1:" + std::to_string(server.port()));
  HttpResponse r = t->Post("/chat/completions", {{"authorization", "Bearer k"}}, "{\"a\":1}");
  CHECK(r.error == TransportError::kNone);
  CHECK(r.status == 200);
  CHECK(r.body == "{\"echo\":{\"a\":1}}");
  CHECK(HeaderValue(r.headers, "x-ratelimit-remaining-requests") == "5");  // names lower-cased
  CHECK(HeaderValue(r.headers, "content-type") == "application/json");
  CHECK(server.LastAuth() == "Bearer k");
  CHECK(server.LastContentType() == "application/json");
  CHECK(r.first_byte_ms >= 0);
  CHECK(r.latency_ms >= r.first_byte_ms);

  HttpResponse h = MakeTransport(server.Url(""))->Get("/health", {});
  CHECK(h.status == 200);
  CHECK(h.body == "ok");
}

TEST_CASE("HttpTransport reuses one keep-alive connection", "[teacher]") {
  LoopbackServer server;
  auto t = MakeTransport(server.Url());
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = t->Post("/chat/completions", {}, "{}");
    REQUIRE(r.status == 200);
  }
  std::vector<int> ports = server.RemotePorts();
  REQUIRE(ports.size() == 3);
  CHECK(ports[0] == ports[1]);
  CHECK(ports[1] == ports[2]);
}

TEST_CASE("HttpTransport streams chunked bodies through on_chunk", "[teacher]") {
  LoopbackServer server;
  auto t = MakeTransport(server.Url());
  std::string seen;
  int calls = 0;
  HttpResponse r = t->Post("/stream", {}, "{}", [&](std::string_view chunk) {
    seen.append(chunk);
    ++calls;
    return true;
  });
  CHECK(r.error == TransportError::kNone);
  CHECK(r.status == 200);
  CHECK(r.body == "data: 1000\n\ndata: 1000\n\ndata: 1000\n\n");
  CHECK(seen == r.body);
  CHECK(calls >= 1);

  HttpResponse cancelled = t->Post("/stream", {}, "{}", [](std::string_view) { return false; });
  CHECK(cancelled.error == TransportError::kCancelled);
}

TEST_CASE("HttpTransport calls on_head once with status and headers, before any body byte", "[teacher]") {
  LoopbackServer server;
  auto t = MakeTransport(server.Url());
  int heads = 0;
  std::string body_at_head = "unset";
  int status_at_head = 0;
  std::string seen;
  HttpResponse r = t->Post(
      "/stream", {}, "{}",
      [&](std::string_view chunk) {
        CHECK(heads == 1);
        seen.append(chunk);
        return true;
      },
      [&](const HttpResponse& head) {
        ++heads;
        status_at_head = head.status;
        body_at_head = head.body;
        CHECK_FALSE(head.headers.empty());
      });
  CHECK(r.status == 200);
  CHECK(heads == 1);
  CHECK(status_at_head == 200);
  CHECK(body_at_head.empty());
  CHECK(seen == r.body);
  // A non-2xx answer has a head too; a refused connection has none.
  heads = 0;
  HttpResponse limited = t->Post("/limited", {}, "{}", nullptr, [&](const HttpResponse& head) {
    ++heads;
    CHECK(head.status == 429);
    CHECK(HeaderValue(head.headers, "retry-after") == "3");
  });
  CHECK(limited.status == 429);
  CHECK(heads == 1);
  heads = 0;
  auto refused = MakeTransport("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/v1");
  HttpResponse none = refused->Post("/chat/completions", {}, "{}", nullptr, [&](const HttpResponse&) { ++heads; });
  CHECK(none.error == TransportError::kConnect);
  CHECK(heads == 0);
}

TEST_CASE("HttpTransport passes non-2xx responses through", "[teacher]") {
  LoopbackServer server;
  auto t = MakeTransport(server.Url());
  HttpResponse r = t->Post("/limited", {}, "{}");
  CHECK(r.error == TransportError::kNone);
  CHECK(r.status == 429);
  CHECK(HeaderValue(r.headers, "retry-after") == "3");
  CHECK(r.body.find("rate_limit_exceeded") != std::string::npos);
  HttpResponse missing = t->Post("/nope", {}, "{}");
  CHECK(missing.status == 404);
}

TEST_CASE("HttpTransport abandons a body larger than max_body_bytes", "[teacher]") {
  LoopbackServer server;
  auto t = MakeTransport(server.Url(), 10, 10000);
  HttpResponse r = t->Post("/big", {}, "{}");
  CHECK(r.error == TransportError::kBodyTooLarge);
  CHECK(r.body.size() <= 10000);
  CHECK(r.error_detail == "body exceeded 10000 bytes");
  // The transport stays usable.
  HttpResponse ok = t->Post("/chat/completions", {}, "{}");
  CHECK(ok.status == 200);
}

TEST_CASE("HttpTransport reports a refused connection", "[teacher]") {
  auto t = MakeTransport("http://127.0.0.1:" + std::to_string(ClosedPort()), 5);
  HttpResponse r = t->Post("/x", {}, "{}");
  CHECK(r.error == TransportError::kConnect);
  CHECK(r.status == 0);
  CHECK_FALSE(r.error_detail.empty());
}

TEST_CASE("HttpTransport times out a hung read", "[teacher]") {
  LoopbackServer server;  // its destructor releases the hung handler
  auto t = MakeTransport(server.Url(), 0.3);
  HttpResponse r = t->Post("/hang", {}, "{}");
  CHECK(r.error == TransportError::kTimeout);
  CHECK(r.status == 0);
}

TEST_CASE("IsCleartextToRemote flags plain http to anything but loopback", "[teacher]") {
  CHECK(IsCleartextToRemote("http://teacher.example.com/v1"));
  CHECK(IsCleartextToRemote("http://10.0.0.5:8000/v1"));
  CHECK(IsCleartextToRemote("HTTP://127.attacker.example/v1"));
  CHECK_FALSE(IsCleartextToRemote("https://api.openai.com/v1"));
  CHECK_FALSE(IsCleartextToRemote("http://127.0.0.1:8000/v1"));
  CHECK_FALSE(IsCleartextToRemote("http://localhost:8000/v1"));
  CHECK_FALSE(IsCleartextToRemote("http://[::1]:8000/v1"));
  CHECK_FALSE(IsCleartextToRemote("not a url"));
}
