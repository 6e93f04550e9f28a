// Fuzz target: whole raw HTTP requests (request line, headers, body; several per input, as on
// a keep-alive connection) fed to the router of `retort serve` — the connection gate, the
// request guard, httplib's parser, the routes and the Service behind them (issue #12: a 2 MB
// body crashed the server although every body parser was fuzzed on its own).
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "fuzz/fuzz_split.h"
#include "service/api_router.h"
#include "service/dashboard_assets.h"
#include "service/service.h"

using retort::fuzz::Require;

namespace {

constexpr const char* kToken = "fuzz-token-SECRET-0123456789";

struct Server {
  retort::Service* service = nullptr;
  std::unique_ptr<retort::ApiRouter> router;
};

// One service (database in a scratch folder) and two routers over it: without a token (the
// loopback default) and with one. Created once; inputs share their state, as clients do.
Server* Make(bool with_token) {
  static std::string dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "retort-fuzz-router-XXXXXX").string();
    Require(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    return tmpl;
  }();
  static std::unique_ptr<retort::Service> service = [] {
    retort::ServiceOptions so;
    so.db = dir + "/c.db";
    so.settle_wait_ms = 50;
    // Runs may only go to a port nothing listens on: connection refused, never a real request.
    retort::Result<retort::ServicePolicy> p =
        retort::ServicePolicy::Create({"RETORT_FUZZ_KEY"}, {"http://127.0.0.1:1/"}, dir + "/exports");
    Require(p.ok(), "policy");
    so.policy = *p;
    retort::Result<std::unique_ptr<retort::Service>> s = retort::Service::Open(so);
    Require(s.ok(), "Service::Open failed");
    return std::move(*s);
  }();
  auto make = [](bool token) {
    auto s = std::make_unique<Server>();
    retort::ApiServerOptions ao;
    ao.host = "127.0.0.1";
    ao.port = 8377;
    ao.token = token ? kToken : "";
    ao.allowed_hosts = {"retort.fuzz"};
    ao.max_body_bytes = 1 << 20;
    ao.threads = 2;
    s->service = service.get();
    s->router = std::make_unique<retort::ApiRouter>(service.get(), ao);
    return s;
  };
  static std::unique_ptr<Server> open = make(false);
  static std::unique_ptr<Server> locked = make(true);
  return with_token ? locked.get() : open.get();
}

// Leaves no background work behind an input (runs cancelled, exports finished): each input
// starts from a quiet server, and LeakSanitizer does not mistake the live objects of a
// harvest thread for leaks.
void Quiesce(retort::Service* svc, const std::string& out) {
  for (int round = 0; round < 200; ++round) {
    retort::Result<nlohmann::json> runs = svc->ListRuns();
    Require(runs.ok(), "ListRuns failed");
    bool busy = false;
    for (const nlohmann::json& r : (*runs)["runs"])
      if (r.value("harvesting", false)) {
        busy = true;
        (void)svc->CancelRun(r["name"].get<std::string>());  // waits settle_wait_ms for it
      }
    if (!busy) break;
  }
  // Every export this input started (ids from its 202 answers) has finished.
  for (size_t p = out.find("{\"id\":"); p != std::string::npos; p = out.find("{\"id\":", p + 1)) {
    const std::string id = std::to_string(std::strtoll(out.c_str() + p + 6, nullptr, 10));
    for (int i = 0; i < 2000; ++i) {
      retort::Result<nlohmann::json> e = svc->GetExport(id);
      if (!e.ok() || (*e)["state"] != "running") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

// Every answer on the connection: a status line, known status, JSON error bodies parse. An
// answer to HEAD announces a length but carries no body, so after a HEAD request only the
// status lines are checked.
// True when the client sent the token as data (in a path, a query or a body), not only as its
// credential: an answer may then echo it (a 404 naming the run asked for) without leaking it.
bool TokenSentAsData(const std::string& input) {
  const std::string bearer = std::string("Bearer ") + kToken;
  std::string rest = input;
  for (size_t p = rest.find(bearer); p != std::string::npos; p = rest.find(bearer, p)) rest.erase(p, bearer.size());
  return rest.find(kToken) != std::string::npos;
}

void CheckAnswers(const std::string& input, const std::string& out) {
  // The credential never comes back: not in an error naming a header, not in an echo.
  if (!TokenSentAsData(input)) Require(out.find(kToken) == std::string::npos, "the token appears in an answer");
  if (input.find("HEAD") != std::string::npos) {
    for (size_t p = out.find("HTTP/1.1 "); p != std::string::npos; p = out.find("HTTP/1.1 ", p + 1))
      Require(std::atoi(out.c_str() + p + 9) != 500, "500: an exception or an internal error reached the client");
    return;
  }
  size_t pos = 0;
  while (pos < out.size()) {
    Require(out.compare(pos, 9, "HTTP/1.1 ") == 0, "an answer does not start with a status line");
    const int status = std::atoi(out.c_str() + pos + 9);
    Require(status != 500, "500: an exception or an internal error reached the client");
    Require((status >= 200 && status < 600) || status == 100, "status out of range");
    const size_t end = out.find("\r\n\r\n", pos);
    Require(end != std::string::npos, "an answer without the end of its head");
    if (status == 100) {  // Expect: 100-continue: an interim answer without a body
      pos = end + 4;
      continue;
    }
    std::string head = out.substr(pos, end - pos);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const size_t cl = head.find("\r\ncontent-length: ");
    size_t length = 0;
    if (cl != std::string::npos) length = std::strtoull(head.c_str() + cl + 18, nullptr, 10);
    const std::string body = out.substr(end + 4, length);
    if (head.find("content-type: application/json") != std::string::npos) {
      nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
      Require(!j.is_discarded(), "a JSON answer does not parse");
      if (status >= 400) Require(j.contains("error"), "an error answer without an error object");
    }
    pos = end + 4 + length;
  }
}

// True when the answer starting at `pos` serves one of the dashboard's static files, which are
// public by design (the page asks for the token; every API call it makes carries it).
bool IsDashboardFile(const std::string& out, size_t pos) {
  const size_t end = out.find("\r\n\r\n", pos);
  if (end == std::string::npos) return false;
  const std::string head = out.substr(pos, end - pos);
  if (head.find(std::string("Content-Security-Policy: ") + std::string(retort::kDashboardCsp)) == std::string::npos)
    return false;
  for (const retort::DashboardAsset& a : retort::DashboardAssets())
    if (head.find("Content-Type: " + std::string(a.content_type) + "\r\n") != std::string::npos) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool with_token = data[0] & 1;
  Server* s = Make(with_token);
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  int sv[2];
  Require(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  // The client writes the whole input and closes its side; the router serves the other end on
  // this thread; a third thread collects every answer.
  std::thread writer([fd = sv[0], &input] {
    size_t off = 0;
    while (off < input.size()) {
      const ssize_t n = ::send(fd, input.data() + off, input.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server closed early (a refused request): fine
      off += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
  });
  std::string out;
  std::thread reader([fd = sv[0], &out] {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  });
  s->router->ServeConnection(sv[1]);  // closes sv[1] when the connection ends
  writer.join();
  reader.join();
  ::close(sv[0]);
  Quiesce(s->service, out);
  CheckAnswers(input, out);
  if (with_token) {
    // Without the token nothing but /healthz and refusals before the token check may succeed.
    size_t pos = 0;
    while ((pos = out.find("HTTP/1.1 2", pos)) != std::string::npos) {
      if (input.find(kToken) == std::string::npos && input.find("/healthz") == std::string::npos &&
          !IsDashboardFile(out, pos))
        std::fprintf(stderr, "the answer: %s\n", out.substr(pos, 300).c_str());
      Require(input.find(kToken) != std::string::npos || input.find("/healthz") != std::string::npos ||
                  IsDashboardFile(out, pos),
              "a request without the token was answered 2xx");
      ++pos;
    }
  }
  return 0;
}
