// Unit: the connection gate — head scanning, framing, pipelining and closing a connection whose
// body was not read (issue #12, item 5). Served in-process over a socketpair.
#include "service/connection_gate.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "service/serve_fixture.h"

using namespace retort;

TEST_CASE("ScanHead finds the end of a request head and its body framing", "[service]") {
  CHECK_FALSE(ScanHead("").complete);
  CHECK_FALSE(ScanHead("GET / HTTP/1.1\r\nHost: x\r\n").complete);
  CHECK_FALSE(ScanHead("GET / HTTP/1.1\r\nHost: x\n\n").complete);  // bare LF lines do not end a head
  HeadFraming g = ScanHead("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next");
  REQUIRE(g.complete);
  CHECK(g.head_bytes == 27);
  CHECK_FALSE(g.has_body());
  HeadFraming p = ScanHead("POST /v1/runs HTTP/1.1\r\ncontent-LENGTH:  12 \r\n\r\n{}");
  REQUIRE(p.complete);
  CHECK(p.content_length == 12);
  CHECK_FALSE(p.chunked);
  CHECK(ScanHead("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").chunked);
  // Lengths that cannot be read as one number: read to the end, then close.
  CHECK(ScanHead("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").chunked);
  CHECK(ScanHead("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").chunked);
  CHECK(ScanHead("POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n").chunked);
  CHECK(ScanHead("\r\n").complete);  // no request line: answered 400 at once
}

namespace {

// A GatedServer with two routes serving one socketpair end on a thread; the test holds the other.
struct InlineServer {
  GatedServer server;
  int client = -1;
  std::thread thread;
  explicit InlineServer(GateOptions o = {}) : server(o) {
    server.Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi", "text/plain"); });
    server.Post("/echo", [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read) {
      std::string body;
      read([&](const char* d, size_t n) {
        body.append(d, n);
        return true;
      });
      res.set_content(body + "|" + req.get_header_value("X-Id"), "text/plain");
    });
    // A handler that answers without reading the body (as a refused request does).
    server.Post("/refuse", [](const httplib::Request&, httplib::Response& res, const httplib::ContentReader&) {
      res.status = 403;
      res.set_content("no", "text/plain");
    });
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    client = sv[0];
    thread = std::thread([this, fd = sv[1]] { server.ServeConnectionInline(fd); });
  }
  ~InlineServer() {
    ::shutdown(client, SHUT_RDWR);
    thread.join();
    ::close(client);
  }
  // Sends `bytes`, then reads until the server closes (bounded).
  std::string SendAndReadAll(const std::string& bytes) {
    REQUIRE(::send(client, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
    std::string out;
    for (;;) {
      pollfd p{client, POLLIN, 0};
      if (::poll(&p, 1, 20'000) <= 0) break;
      char buf[4096];
      const ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

size_t Count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("GatedServer answers pipelined requests in order on one connection", "[service]") {
  InlineServer s;
  const std::string out = s.SendAndReadAll(
      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: x\r\nX-Id: 2\r\nContent-Length: 5\r\n\r\nabcde"
      "POST /echo HTTP/1.1\r\nHost: x\r\nX-Id: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  INFO(out);
  CHECK(Count(out, "HTTP/1.1 200") == 3);
  CHECK(out.find("hi") < out.find("abcde|2"));
  CHECK(out.find("abcde|2") < out.find("xyz|3"));
  // A chunked request ends the connection: the last GET is not answered.
  CHECK(Count(out, "\r\n\r\nhi") == 1);
}

TEST_CASE("GatedServer closes a connection whose body was not read instead of parsing it as a request",
          "[service][security]") {
  // A refused upload's body must never be taken for the next request (request smuggling).
  InlineServer s;
  const std::string smuggled = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string out = s.SendAndReadAll("POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                           std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled);
  INFO(out);
  CHECK(Count(out, "HTTP/1.1 403") == 1);
  CHECK(out.find("200") == std::string::npos);
}

TEST_CASE("GatedServer answers 431 to an oversized head and 408 to a head that stops", "[service][security]") {
  GateOptions o;
  o.max_head_bytes = 1024;
  o.header_timeout_ms = 200;
  {
    InlineServer s(o);
    const std::string out = s.SendAndReadAll("GET /hello HTTP/1.1\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
    INFO(out);
    CHECK(out.rfind("HTTP/1.1 431", 0) == 0);
  }
  {
    InlineServer s(o);
    // Half a head, then nothing: the connection is closed by the head deadline, not by the test.
    const std::string out = s.SendAndReadAll("GET /hello HTTP/1.1\r\nHost: x\r\n");
    INFO(out);
    CHECK(out.rfind("HTTP/1.1 408", 0) == 0);
  }
}
