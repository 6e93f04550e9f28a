// Test helper: a `retort serve` child process on 127.0.0.1:0 and an HTTP client for it.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_support/process.h"

namespace retort::test {

using nlohmann::json;

// The server process; every response body it sent is kept (for the secret grep).
class ServeProcess {
 public:
  // Starts `retort serve --db DB --listen HOST:0 extra...` and reads its `listening on` line.
  ServeProcess(const std::string& db, std::vector<std::string> extra = {}, std::vector<std::string> env = {},
               const std::string& host = "127.0.0.1") {
    std::vector<std::string> argv = {RETORT_BINARY, "serve", "--db", db, "--listen", host + ":0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(argv, env);
    REQUIRE(proc_->started());
    std::optional<std::string> line = proc_->ReadLine(std::chrono::seconds(20));
    REQUIRE(line.has_value());
    const std::string prefix = "listening on ";
    REQUIRE(line->rfind(prefix, 0) == 0);
    const std::string addr = line->substr(prefix.size());
    host_ = addr.substr(0, addr.rfind(':'));
    port_ = std::stoi(addr.substr(addr.rfind(':') + 1));
  }

  int port() const { return port_; }
  Process& process() { return *proc_; }
  // A new client for this server.
  std::unique_ptr<httplib::Client> Client() const {
    auto c = std::make_unique<httplib::Client>(host_, port_);
    c->set_tcp_nodelay(true);
    c->set_connection_timeout(5);
    c->set_read_timeout(60);
    if (!token_.empty()) c->set_bearer_token_auth(token_.c_str());
    return c;
  }
  void set_token(const std::string& t) { token_ = t; }

  // Sends a request; returns {status, body}. status -1 = transport error.
  std::pair<int, std::string> Request(const std::string& method, const std::string& path, const std::string& body = "",
                                      const std::string& content_type = "application/json",
                                      const httplib::Headers& headers = {}) {
    auto c = Client();
    httplib::Result r = method == "GET"    ? c->Get(path.c_str(), headers)
                        : method == "POST" ? c->Post(path.c_str(), headers, body, content_type.c_str())
                                           : c->Delete(path.c_str(), headers);
    if (!r) return {-1, ""};
    responses_ += r->body + "\n";
    return {r->status, r->body};
  }
  json Json(const std::string& method, const std::string& path, const std::string& body = "", int expect = 200) {
    auto [status, text] = Request(method, path, body);
    INFO(method << " " << path << " -> " << status << " " << text);
    REQUIRE(status == expect);
    json j = json::parse(text, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    return j;
  }
  // Polls GET /v1/runs/NAME until `pred` holds (up to 60 s, 20 ms steps); returns the last body.
  json PollRun(const std::string& name, const std::function<bool(const json&)>& pred, int max_ms = 60000) {
    json last;
    for (int waited = 0; waited <= max_ms; waited += 20) {
      auto [status, text] = Request("GET", "/v1/runs/" + name);
      if (status == 200) {
        last = json::parse(text, nullptr, false);
        if (!last.is_discarded() && pred(last)) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("run " << name << " did not reach the expected state; last: " << last.dump());
    return last;
  }
  const std::string& responses() const { return responses_; }

 private:
  std::unique_ptr<Process> proc_;
  std::string host_;
  int port_ = 0;
  std::string token_;
  std::string responses_;
};

// True when `raw` holds a complete response with a Content-Length body.
inline bool RawResponseComplete(const std::string& raw) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string head = raw.substr(0, end);
  for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t cl = head.find("\r\ncontent-length:");
  if (cl == std::string::npos) return false;
  return raw.size() >= end + 4 + std::stoull(head.substr(cl + 17));
}

// A raw HTTP exchange over loopback, for requests the client library would not send (no
// Content-Length, chunked bodies, foreign Host headers): writes `request`, then reads until the
// first response is complete, the server closes or `timeout` passes. Returns what was read.
inline std::string RawExchange(int port, const std::string& request,
                               std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    size_t off = 0;
    while (off < request.size()) {
      const ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may refuse early and close: read what it answered
      off += static_cast<size_t>(n);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      char buf[65536];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      if (RawResponseComplete(out)) break;
    }
  }
  ::close(fd);
  return out;
}

// The status code of the first response in `raw` ("HTTP/1.1 200 OK ..."), -1 when none.
inline int RawStatus(const std::string& raw) {
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) return -1;
  return std::atoi(raw.substr(9, 3).c_str());
}

// The run options body for a run against the simulator on `sim_port`.
inline json RunBody(const std::string& name, int sim_port, const std::string& set = "s") {
  return {{"name", name},
          {"set", set},
          {"base_url", "http://127.0.0.1:" + std::to_string(sim_port) + "/v1"},
          {"model", "sim-1"}};
}

}  // namespace retort::test
