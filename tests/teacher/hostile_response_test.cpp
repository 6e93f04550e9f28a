// Hostile teachers (issue #6): huge bodies, deep nesting, invalid UTF-8, NUL bytes, and a
// server that sends headers and then nothing. Each must end in a clean error, never a crash.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "teacher/anthropic_messages.h"
#include "teacher/error_classifier.h"
#include "teacher/http_transport.h"
#include "teacher/openai_chat.h"

using namespace retort;

namespace {

constexpr std::size_t kCap = 1u << 20;  // max_body_bytes of the capped clients below

// An httplib server whose endpoints send far more than any sane answer: an endless chunked
// stream and a 16 GiB Content-Length body. Each stops once the client has gone (or after 1 GiB).
class FloodServer {
 public:
  FloodServer() {
    svr_.Post("/v1/chunked", [this](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider("text/event-stream", [this](std::size_t offset, httplib::DataSink& sink) {
        if (offset >= (1u << 30)) return false;
        sent_ = offset;
        return sink.write(block_.data(), block_.size());
      });
    });
    svr_.Post("/v1/length", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content_provider(
          std::size_t{16} << 30, "application/json", [this](std::size_t offset, std::size_t, httplib::DataSink& sink) {
            if (offset >= (1u << 30)) return false;
            sent_ = offset;
            return sink.write(block_.data(), block_.size());
          });
    });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
  }
  ~FloodServer() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!svr_.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    svr_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  std::size_t sent() const { return sent_; }

 private:
  const std::string block_ = std::string(64 * 1024, 'x');
  std::atomic<std::size_t> sent_{0};
  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
};

// A raw TCP server on 127.0.0.1 that reads a request, writes `reply` and then holds the
// connection open, sending nothing, until the fixture is destroyed (at most 30 s).
class SilentServer {
 public:
  explicit SilentServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd_, 4) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~SilentServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    shutdown(fd_, SHUT_RDWR);  // unblocks accept() if no client came
    thread_.join();
    close(fd_);
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  void Serve() {
    int c = accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    std::string req;
    char buf[4096];
    // Read until the end of the request headers (the bodies in these tests are tiny and sent with them).
    for (int i = 0; i < 100 && req.find("\r\n\r\n") == std::string::npos; ++i) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      req.append(buf, static_cast<std::size_t>(n));
    }
    (void)!write(c, reply_.data(), reply_.size());
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(30), [this] { return done_; });
    close(c);
  }

  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

std::unique_ptr<HttpTransport> Transport(const std::string& url, double timeout_s, std::size_t max_body) {
  TransportOptions o;
  o.base_url = url;
  o.timeout_s = timeout_s;
  o.max_body_bytes = max_body;
  auto t = HttpTransport::Create(o);
  REQUIRE(t.ok());
  return std::move(*t);
}

std::string Nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("HttpTransport caps an endless chunked body at max_body_bytes", "[teacher][hostile]") {
  FloodServer server;
  auto t = Transport(server.Url(), 30, kCap);
  std::size_t streamed = 0;
  HttpResponse r = t->Post("/chunked", {}, "{}", [&](std::string_view piece) {
    streamed += piece.size();
    return true;
  });
  CHECK(r.error == TransportError::kBodyTooLarge);
  CHECK(r.error_detail == "body exceeded 1048576 bytes");
  CHECK(r.body.size() <= kCap);
  CHECK(r.body.size() > kCap / 2);
  CHECK(streamed == r.body.size());
  CHECK(server.sent() < (1u << 30));  // the client stopped reading long before the server's own bound
}

TEST_CASE("HttpTransport caps a 16 GiB Content-Length body at max_body_bytes", "[teacher][hostile]") {
  FloodServer server;
  auto t = Transport(server.Url(), 30, kCap);
  HttpResponse r = t->Post("/length", {}, "{}");
  CHECK(r.error == TransportError::kBodyTooLarge);
  CHECK(r.body.size() <= kCap);
  CHECK(r.status == 200);
  // The classifier retries it like any other broken transfer; nothing is parsed or stored.
  OpenAIChatProvider p;
  Classification c = ClassifyAttempt(r, Status::OK(), p, 0);
  CHECK(c.outcome == AttemptOutcome::kRetry);
  CHECK_THAT(c.reason, Catch::Contains("body_too_large"));
}

TEST_CASE("HttpTransport times out a server that sends headers and then nothing", "[teacher][hostile]") {
  SECTION("Content-Length body never sent") {
    SilentServer server("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n");
    HttpResponse r = Transport(server.Url(), 0.5, kCap)->Post("/chat/completions", {}, "{}");
    CHECK(r.error == TransportError::kTimeout);
    CHECK(r.body.empty());
  }
  SECTION("event stream that stops after the headers") {
    SilentServer server("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    int chunks = 0;
    HttpResponse r = Transport(server.Url(), 0.5, kCap)->Post("/chat/completions", {}, "{}", [&](std::string_view) {
      ++chunks;
      return true;
    });
    CHECK(r.error == TransportError::kTimeout);
    CHECK(chunks == 0);
  }
  SECTION("event stream that stops mid-event") {
    const std::string piece = "data: {\"choices\":[";
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    SilentServer server("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
                        std::string(size) + piece + "\r\n");
    auto a = OpenAIChatProvider().NewStreamAssembler(false);
    HttpResponse r = Transport(server.Url(), 0.5, kCap)->Post("/chat/completions", {}, "{}", [&](std::string_view b) {
      return a->Feed(b).ok();
    });
    CHECK(r.error == TransportError::kTimeout);
    CHECK(r.body == piece);
    CHECK(a->Finish().status().code() == StatusCode::kCorruption);
    Classification c = ClassifyAttempt(r, Status::OK(), OpenAIChatProvider(), 0);
    CHECK(c.outcome == AttemptOutcome::kRetry);
  }
}

TEST_CASE("JsonNestingExceeds counts brackets outside strings only", "[teacher][hostile]") {
  CHECK_FALSE(JsonNestingExceeds(Nested(kMaxJsonDepth), kMaxJsonDepth));
  CHECK(JsonNestingExceeds(Nested(kMaxJsonDepth + 1), kMaxJsonDepth));
  CHECK(JsonNestingExceeds(std::string(kMaxJsonDepth + 1, '{'), kMaxJsonDepth));
  CHECK_FALSE(JsonNestingExceeds("{\"a\":\"" + std::string(5000, '[') + "\"}", kMaxJsonDepth));
  CHECK_FALSE(JsonNestingExceeds(R"(["\"[[[", "\\", [[1]]])", 3));
  CHECK(JsonNestingExceeds(R"(["\"[[[", "\\", [[[1]]]])", 3));
  Json j;
  CHECK(ParseJson(Nested(kMaxJsonDepth), &j).ok());
  Status st = ParseJson(Nested(100000), &j);
  CHECK(st.code() == StatusCode::kCorruption);
  CHECK(st.message() == "JSON nested deeper than 512 levels");
}

TEST_CASE("Deeply nested response JSON is Corruption without a stack overflow", "[teacher][hostile]") {
  const std::string deep = Nested(100000);
  OpenAIChatProvider openai;
  AnthropicMessagesProvider anthropic;
  for (const Provider* p : {static_cast<const Provider*>(&openai), static_cast<const Provider*>(&anthropic)}) {
    INFO(p->Name());
    auto r = p->ParseResponse(deep, false);
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK(r.status().message() == "body: JSON nested deeper than 512 levels");
    r = p->ParseResponse(R"({"choices":[{"message":{"content":"x","extra":)" + deep + "}}]}", true);
    CHECK(r.status().code() == StatusCode::kCorruption);
    ProviderError e = p->ParseError(R"({"error":{"message":"m","type":"t","param":)" + deep + "}}");
    CHECK(e.message.empty());
  }
  // Streams: the assemblers copy and re-serialise what they keep (usage, message, blocks),
  // which would recurse once per level.
  auto a = openai.NewStreamAssembler(false);
  Status st = a->Feed("data: {\"choices\":[],\"usage\":{\"x\":" + deep + "}}\n\n");
  CHECK(st.code() == StatusCode::kCorruption);
  CHECK(st.message() == "chunk[0]: JSON nested deeper than 512 levels");
  auto b = anthropic.NewStreamAssembler(false);
  st = b->Feed("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"x\":" + deep +
               "}}\n\n");
  CHECK(st.code() == StatusCode::kCorruption);
  // input_json_delta pieces are only parsed at content_block_stop.
  b = anthropic.NewStreamAssembler(false);
  REQUIRE(b->Feed("data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[]}}\n\n"
                  "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\"}}\n\n"
                  "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
                  "\"partial_json\":\"" + deep + "\"}}\n\n").ok());
  st = b->Feed("data: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
  CHECK(st.code() == StatusCode::kCorruption);
  CHECK_THAT(st.message(), Catch::Contains("input_json_delta pieces: JSON nested deeper than 512 levels"));
}

TEST_CASE("Invalid UTF-8 in response content is rejected with a reason", "[teacher][hostile]") {
  OpenAIChatProvider openai;
  AnthropicMessagesProvider anthropic;
  for (const char* bad : {"\xff", "caf\xe9", "\xc0\xaf", "\xed\xa0\x80", "\\ud800", "\\udc00x"}) {
    INFO(bad);
    auto r = openai.ParseResponse(std::string(R"({"choices":[{"index":0,"message":{"content":")") + bad +
                                      R"("},"finish_reason":"stop"}]})",
                                  false);
    CHECK(r.status().code() == StatusCode::kCorruption);
    CHECK_THAT(r.status().message(), Catch::StartsWith("body: invalid JSON ("));
    r = anthropic.ParseResponse(std::string(R"({"type":"message","content":[{"type":"text","text":")") + bad +
                                    R"("}],"stop_reason":"end_turn"})",
                                false);
    CHECK(r.status().code() == StatusCode::kCorruption);
    auto a = openai.NewStreamAssembler(false);
    Status st = a->Feed(std::string("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"") + bad + "\"}}]}\n\n");
    CHECK(st.code() == StatusCode::kCorruption);
  }
  // Valid escapes of non-ASCII text are kept exactly.
  auto r = openai.ParseResponse(R"({"choices":[{"message":{"content":"caf\u00e9 \ud83d\ude00"},"finish_reason":"stop"}]})",
                                false);
  REQUIRE(r.ok());
  CHECK(r->choices[0].content == "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST_CASE("NUL characters in content are kept and raw NUL bytes in JSON rejected", "[teacher][hostile]") {
  OpenAIChatProvider openai;
  auto r = openai.ParseResponse(R"({"choices":[{"message":{"content":"a\u0000b"},"finish_reason":"stop"}]})", false);
  REQUIRE(r.ok());
  CHECK(r->choices[0].content == std::string("a\0b", 3));
  // Stored text is serialised back with an escape, so exported JSON lines never hold a raw NUL.
  CHECK(Json(r->choices[0].content).dump() == R"("a\u0000b")");
  std::string raw = std::string(R"({"choices":[{"message":{"content":"a)") + '\0' + R"(b"},"finish_reason":"stop"}]})";
  CHECK(openai.ParseResponse(raw, false).status().code() == StatusCode::kCorruption);
  // In a stream: NUL inside an SSE data line reaches the JSON parser, which rejects it.
  auto a = openai.NewStreamAssembler(false);
  CHECK(a->Feed(std::string("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x") + '\0' + "\"}}]}\n\n")
            .code() == StatusCode::kCorruption);
  // Anthropic: escaped NUL in a text block survives the stream assembly.
  auto b = AnthropicMessagesProvider().NewStreamAssembler(false);
  REQUIRE(b->Feed("data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[]}}\n\n"
                  "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                  "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\u0000b\"}}\n\n"
                  "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                  "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n"
                  "data: {\"type\":\"message_stop\"}\n\n")
              .ok());
  auto s = b->Finish();
  REQUIRE(s.ok());
  CHECK(s->choices[0].content == std::string("a\0b", 3));
}
