// Integration: issue #12 — `retort serve` safe on a workstation and on a shared host. Each test
// drives the real binary over loopback the way an attacker would and checks that nothing started.
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>

#include "service/serve_fixture.h"
#include "sim/simulator.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
using test::json;

TEST_CASE("Issue 12: a body nested 1,000,000 deep gets 400 and the server and its harvests keep running",
          "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 40);
  SimulatorOptions so;
  so.latency_ms = 30;
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db);
  json run = test::RunBody("r", sim->port());
  run["concurrency"] = 2;
  srv.Json("POST", "/v1/runs", run.dump(), 202);
  srv.PollRun("r", [](const json& j) { return j["jobs"]["done"].get<int>() >= 2; });
  const int kDepth = 1'000'000;  // 2 MB of brackets
  const std::string deep = std::string(kDepth, '[') + std::string(kDepth, ']');
  json bad = test::RunBody("deep", sim->port());
  std::string body = bad.dump();
  body.insert(body.size() - 1, ",\"extra_body\":{\"x\":" + deep + "}");
  for (const char* path : {"/v1/runs", "/v1/exports"}) {
    auto [st, text] = srv.Request("POST", path, body);
    INFO(path << " -> " << st << " " << text.substr(0, 200));
    CHECK(st == 400);
    CHECK_THAT(text, Catch::Contains("nested deeper than 512 levels"));
  }
  CHECK(srv.Json("GET", "/healthz")["status"] == "ok");
  CHECK(srv.Request("GET", "/v1/runs/deep").first == 404);  // nothing started
  // The harvest that was running finishes.
  json done = srv.PollRun("r", [](const json& j) { return j["state"] == "done"; });
  CHECK(done["jobs"]["done"] == 40);
  srv.process().Signal(SIGTERM);
  CHECK(srv.process().Wait(60s) == 0);
}

namespace {

std::string Jsonl(int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += json{{"id", "q" + std::to_string(i)}, {"prompt", "question " + std::to_string(i)}}.dump() + "\n";
  return out;
}

// A raw request with the given method, path, extra header lines and body (Content-Length added
// when `body` is not empty). Host is 127.0.0.1:PORT unless the headers name one.
std::string Raw(int port, const std::string& method, const std::string& path, const std::string& headers,
                const std::string& body = "") {
  std::string r = method + " " + path + " HTTP/1.1\r\n";
  if (headers.find("Host:") == std::string::npos) r += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  r += headers;
  if (!body.empty()) r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n\r\n" + body;
  return test::RawExchange(port, r);
}

}  // namespace

TEST_CASE("Issue 12: cross-site and DNS-rebinding requests are refused and start nothing", "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 10);
  auto sim = test::StartSim();
  test::ServeProcess srv(db, {"--allow-host", "retort.internal"});
  const int port = srv.port();
  const std::string run = test::RunBody("r", sim->port()).dump();
  const std::string self = "127.0.0.1:" + std::to_string(port);
  struct Attack {
    const char* what;
    std::string method, path, headers, body;
    int status;
  };
  const std::vector<Attack> attacks = {
      // A page's fetch/form sends these cross-site without a preflight.
      {"text/plain run", "POST", "/v1/runs", "Content-Type: text/plain\r\n", run, 415},
      {"form run", "POST", "/v1/runs", "Content-Type: application/x-www-form-urlencoded\r\n", run, 415},
      {"multipart run", "POST", "/v1/runs", "Content-Type: multipart/form-data; boundary=x\r\n", run, 415},
      {"run without a type", "POST", "/v1/runs", "", run, 415},
      {"text/plain export", "POST", "/v1/exports", "Content-Type: text/plain\r\n",
       json{{"run", "r"}, {"out", "x"}}.dump(), 415},
      {"text/plain upload", "POST", "/v1/prompt-sets/evil", "Content-Type: text/plain\r\n", Jsonl(3), 415},
      {"empty form pause", "POST", "/v1/runs/r/pause", "Content-Type: application/x-www-form-urlencoded\r\n", "", 415},
      // DNS rebinding: the page's own name resolves to 127.0.0.1; the browser sends it as Host.
      {"rebinding run", "POST", "/v1/runs", "Host: attacker.example:" + std::to_string(port) +
                                                "\r\nContent-Type: application/json\r\n", run, 421},
      {"rebinding read", "GET", "/v1/runs", "Host: attacker.example:" + std::to_string(port) + "\r\n", "", 421},
      {"rebinding prefix", "GET", "/v1/runs", "Host: 127.0.0.1.attacker.example:" + std::to_string(port) + "\r\n", "",
       421},
      {"empty Host", "GET", "/v1/runs", "Host:\r\n", "", 400},
      {"two Hosts", "GET", "/v1/runs", "Host: " + self + "\r\nHost: attacker.example\r\n", "", 400},
      // A foreign page that managed a JSON request (or any request) carries its Origin.
      {"foreign origin run", "POST", "/v1/runs", "Origin: http://attacker.example\r\nContent-Type: application/json\r\n",
       run, 403},
      {"null origin run", "POST", "/v1/runs", "Origin: null\r\nContent-Type: application/json\r\n", run, 403},
      {"foreign origin pause", "POST", "/v1/runs/r/pause", "Origin: https://attacker.example\r\n", "", 403},
      {"foreign origin read", "GET", "/v1/runs", "Origin: http://attacker.example\r\n", "", 403},
      {"lookalike origin", "POST", "/v1/runs",
       "Origin: http://" + self + ".attacker.example\r\nContent-Type: application/json\r\n", run, 403},
      // Request smuggling shapes are not guessed at.
      {"length and chunked", "POST", "/v1/runs",
       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", run, 400},
  };
  for (const Attack& a : attacks) {
    const std::string raw = Raw(port, a.method, a.path, a.headers, a.body);
    INFO(a.what << ": " << raw.substr(0, 300));
    CHECK(test::RawStatus(raw) == a.status);
    CHECK_THAT(raw, Catch::Contains("\"error\""));
  }
  // Nothing started, nothing was created, the teacher never heard of it.
  CHECK(srv.Request("GET", "/v1/runs/r").first == 404);
  CHECK(srv.Request("GET", "/v1/prompt-sets/evil").first == 404);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs") == 0);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM exports") == 0);
  CHECK(sim->Stats().requests == 0);
  // What is allowed: the listen address, localhost, a same-origin page, an --allow-host name.
  for (const std::string& h : std::vector<std::string>{"Host: localhost:" + std::to_string(port) + "\r\n",
                                                       "Host: " + self + "\r\nOrigin: http://" + self + "\r\n",
                                                       "Host: retort.internal\r\nOrigin: https://retort.internal\r\n",
                                                       "Host: RETORT.internal:443\r\n"})
    CHECK(test::RawStatus(Raw(port, "GET", "/v1/runs", h)) == 200);
  CHECK(test::RawStatus(Raw(port, "GET", "/healthz", "Host: attacker.example\r\n")) == 200);  // says only "ok"
  auto [st, text] = srv.Request("POST", "/v1/runs", run, "application/json; charset=utf-8");
  INFO(text);
  CHECK(st == 202);
  srv.PollRun("r", [](const json& j) { return j["state"] == "done"; });
}

TEST_CASE("Issue 12: a chunked upload is held to --max-body-bytes", "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::ServeProcess srv(db, {"--max-body-bytes", "4096"});
  auto chunked = [&](const std::string& set, const std::string& body) {
    auto c = srv.Client();
    httplib::Result r = c->Post(
        ("/v1/prompt-sets/" + set).c_str(), httplib::Headers{},
        [&body](size_t offset, httplib::DataSink& sink) {
          if (offset >= body.size()) {
            sink.done();
            return true;
          }
          const size_t n = std::min<size_t>(1000, body.size() - offset);  // many small chunks
          return sink.write(body.data() + offset, n);
        },
        "application/x-ndjson");
    return r ? std::pair<int, std::string>{r->status, r->body} : std::pair<int, std::string>{-1, ""};
  };
  const std::string big = Jsonl(3700);  // ~146 KB, the reproduction
  REQUIRE(big.size() > 140'000);
  auto [st, text] = chunked("big", big);
  INFO(text);
  CHECK(st == 413);
  CHECK_THAT(text, Catch::Contains("max-body-bytes"));
  CHECK(srv.Request("GET", "/v1/prompt-sets/big").first == 404);
  // A chunked body under the limit is read whole.
  const std::string small = Jsonl(20);
  REQUIRE(small.size() < 4096);
  auto [st2, text2] = chunked("small", small);
  INFO(text2);
  CHECK(st2 == 200);
  CHECK(srv.Json("GET", "/v1/prompt-sets/small")["prompts"] == 20);
  // A declared Content-Length above the limit is refused before its body is read.
  const std::string raw = test::RawExchange(
      srv.port(), "POST /v1/prompt-sets/huge HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(srv.port()) +
                      "\r\nContent-Type: application/x-ndjson\r\nContent-Length: 17179869184\r\n\r\n");
  CHECK(test::RawStatus(raw) == 413);
}

TEST_CASE("Issue 12: POST pause/resume/cancel without a body, as curl -X POST sends them", "[service]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 60);
  SimulatorOptions so;
  so.latency_ms = 40;
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db);
  json b = test::RunBody("r", sim->port());
  b["concurrency"] = 1;
  srv.Json("POST", "/v1/runs", b.dump(), 202);
  // No Content-Length, no Content-Type, no body: exactly `curl -X POST URL`.
  auto bare = [&](const std::string& op) {
    return test::RawExchange(srv.port(), "POST /v1/runs/r/" + op + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                                             std::to_string(srv.port()) + "\r\nUser-Agent: curl/7.88.1\r\n"
                                             "Accept: */*\r\n\r\n",
                             std::chrono::seconds(30));
  };
  std::string raw = bare("pause");
  INFO(raw);
  REQUIRE(test::RawStatus(raw) == 200);
  CHECK_THAT(raw, Catch::Contains("\"state\":\"paused\""));
  raw = bare("resume");
  CHECK(test::RawStatus(raw) == 200);
  raw = bare("cancel");
  CHECK(test::RawStatus(raw) == 200);
  CHECK_THAT(raw, Catch::Contains("\"state\":\"cancelled\""));
}

TEST_CASE("Issue 12: runs name only allowed key variables and teacher URLs, exports stay in the export root",
          "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 10);
  auto sim = test::StartSim();
  const std::string secret = "aws-SECRET-do-not-send-0123456789";
  std::filesystem::create_directories(dir.path() + "/outside");
  std::filesystem::create_directories(dir.path() + "/exports");
  std::filesystem::create_directory_symlink(dir.path() + "/outside", dir.path() + "/exports/link");
  test::ServeProcess srv(db, {}, {"AWS_SECRET_ACCESS_KEY=" + secret});
  auto refused = [&](const std::string& path, const json& body, const std::string& needle) {
    auto [st, text] = srv.Request("POST", path, body.dump());
    INFO(path << " " << body.dump() << " -> " << st << " " << text);
    CHECK(st == 400);
    CHECK_THAT(text, Catch::Contains(needle));
  };
  json b = test::RunBody("r", sim->port());
  b["api_key_env"] = "AWS_SECRET_ACCESS_KEY";
  refused("/v1/runs", b, "api_key_env: 'AWS_SECRET_ACCESS_KEY' is not an allowed key variable");
  for (const char* url : {"http://10.255.255.1:8080/v1", "http://169.254.169.254/latest", "https://example.com/v1",
                          "http://api.openai.com/v1", "https://api.openai.com@127.0.0.1/v1"}) {
    b = test::RunBody("r", sim->port());
    b["base_url"] = json::array({"http://127.0.0.1:" + std::to_string(sim->port()) + "/v1", url});
    refused("/v1/runs", b, "base_url: ");
  }
  for (const std::string& out : {dir.path() + "/outside/x", std::string("../outside"), std::string("a/../../x"),
                                 std::string("link"), std::string("link/x"), std::string(".")})
    refused("/v1/exports", json{{"run", "r"}, {"out", out}}, "out: ");
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM runs") == 0);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM exports") == 0);
  CHECK(sim->Stats().requests == 0);
  CHECK(std::filesystem::is_empty(dir.path() + "/outside"));
  // The defaults still work: a loopback teacher, the provider's default variable, an export below
  // the root.
  srv.Json("POST", "/v1/runs", test::RunBody("r", sim->port()).dump(), 202);
  srv.PollRun("r", [](const json& j) { return j["state"] == "done"; });
  json ex = srv.Json("POST", "/v1/exports", json{{"run", "r"}, {"out", "team/r1"}}.dump(), 202);
  CHECK(ex["out"] == "team/r1");
  for (int i = 0; i < 3000 && srv.Json("GET", "/v1/exports/" + std::to_string(ex["id"].get<int>()))["state"] ==
                                  "running";
       ++i)
    std::this_thread::sleep_for(20ms);
  CHECK(std::filesystem::exists(dir.path() + "/exports/team/r1/manifest.json"));
  srv.process().Signal(SIGTERM);
  REQUIRE(srv.process().Wait(60s) == 0);
  CHECK(srv.process().err().find(secret) == std::string::npos);
  CHECK(srv.responses().find(secret) == std::string::npos);
}

TEST_CASE("Issue 12: --allow-base-url and --allow-key-env are enforced on start and on resume", "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 200);
  SimulatorOptions so;
  so.latency_ms = 50;
  auto sim = test::StartSim(so);
  auto other = test::StartSim();
  const std::string sim_url = "http://127.0.0.1:" + std::to_string(sim->port()) + "/v1";
  {
    test::ServeProcess srv(db, {"--allow-base-url", sim_url, "--allow-key-env", "RETORT_TEAM_KEY"},
                           {"RETORT_TEAM_KEY=team-key"});
    // Only the listed prefix: another loopback teacher is refused now.
    auto [st, text] = srv.Request("POST", "/v1/runs", test::RunBody("x", other->port()).dump());
    INFO(text);
    CHECK(st == 400);
    CHECK_THAT(text, Catch::Contains("matches no --allow-base-url prefix"));
    json b = test::RunBody("r", sim->port());
    b["api_key_env"] = "RETORT_TEAM_KEY";
    b["concurrency"] = 1;
    srv.Json("POST", "/v1/runs", b.dump(), 202);
    srv.PollRun("r", [](const json& j) { return j["jobs"]["done"].get<int>() >= 1; });
    srv.process().Signal(SIGTERM);  // paused by the shutdown: it would resume by itself
    REQUIRE(srv.process().Wait(60s) == 0);
  }
  CHECK(other->Stats().requests == 0);
  // Restarted without --allow-key-env: the saved run is not resumed, and cannot be.
  test::ServeProcess again(db, {"--allow-base-url", sim_url});
  json r = again.Json("GET", "/v1/runs/r");
  CHECK(r["harvesting"] == false);
  auto [st, text] = again.Request("POST", "/v1/runs/r/resume");
  INFO(text);
  CHECK(st == 400);
  CHECK_THAT(text, Catch::Contains("RETORT_TEAM_KEY"));
  again.process().Signal(SIGTERM);
  REQUIRE(again.process().Wait(60s) == 0);
  CHECK_THAT(again.process().err(), Catch::Contains("not resumed: api_key_env"));
}

namespace {

int ThreadsOf(int pid) {
  const std::string status = test::ReadFile("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("\nThreads:");
  return at == std::string::npos ? -1 : std::atoi(status.c_str() + at + 9);
}

json WaitExport(test::ServeProcess& srv, std::int64_t id) {
  json last;
  for (int i = 0; i < 3000; ++i) {
    last = srv.Json("GET", "/v1/exports/" + std::to_string(id));
    if (last["state"] == "done" || last["state"] == "failed") return last;
    std::this_thread::sleep_for(5ms);
  }
  FAIL("export did not finish: " << last.dump());
  return last;
}

}  // namespace

TEST_CASE("Issue 12: 200 failing exports leave no thread behind", "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 5);
  auto sim = test::StartSim();
  test::ServeProcess srv(db);
  srv.Json("POST", "/v1/runs", test::RunBody("r", sim->port()).dump(), 202);
  srv.PollRun("r", [](const json& j) { return j["state"] == "done"; });
  // A file where the export folder should go: every export fails at once.
  std::filesystem::create_directories(dir.path() + "/exports");
  test::WriteFile(dir.path() + "/exports/file", "not a folder");
  json first = WaitExport(srv, srv.Json("POST", "/v1/exports", json{{"run", "r"}, {"out", "file"}}.dump(), 202)["id"]);
  CHECK(first["state"] == "failed");
  const int before = ThreadsOf(srv.process().pid());
  REQUIRE(before > 0);
  for (int i = 0; i < 200; ++i) {
    json ex = srv.Json("POST", "/v1/exports", json{{"run", "r"}, {"out", "file"}}.dump(), 202);
    CHECK(WaitExport(srv, ex["id"])["state"] == "failed");
  }
  const int after = ThreadsOf(srv.process().pid());
  INFO("threads before " << before << ", after " << after);
  CHECK(after <= before + 1);  // at most the second export worker
}

namespace {

// A loopback connection that sends `bytes` and then stays open, silent, until destroyed.
struct SilentConnection {
  int fd = -1;
  SilentConnection(int port, const std::string& bytes) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  }
  ~SilentConnection() { ::close(fd); }
  SilentConnection(const SilentConnection&) = delete;
  SilentConnection& operator=(const SilentConnection&) = delete;
};

}  // namespace

TEST_CASE("Issue 12: slow clients do not stall the server: /healthz and reads answer while heads and bodies trickle",
          "[service][security]") {
  // 32 connections sending one header line every 3 s made /healthz time out: each held one of
  // the 16 workers for the library's 5 s per-read timeout.
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::ServeProcess srv(db);
  const std::string host = "Host: 127.0.0.1:" + std::to_string(srv.port()) + "\r\n";
  std::vector<std::unique_ptr<SilentConnection>> slow;
  for (int i = 0; i < 64; ++i)  // heads that never end
    slow.push_back(std::make_unique<SilentConnection>(srv.port(), "GET /v1/runs HTTP/1.1\r\n" + host + "X-Slow: 1\r\n"));
  for (int i = 0; i < 32; ++i)  // complete heads whose bodies never come
    slow.push_back(std::make_unique<SilentConnection>(
        srv.port(), "POST /v1/prompt-sets/slow" + std::to_string(i) + " HTTP/1.1\r\n" + host +
                        "Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{\"prompt\":"));
  for (int i = 0; i < 64; ++i)  // connections that send nothing at all
    slow.push_back(std::make_unique<SilentConnection>(srv.port(), ""));
  for (int round = 0; round < 5; ++round) {
    auto c = srv.Client();
    c->set_read_timeout(3);  // an answer, not a wait for the slow ones to time out
    auto h = c->Get("/healthz");
    REQUIRE(h);
    CHECK(h->status == 200);
    auto r = c->Get("/v1/runs");
    REQUIRE(r);
    CHECK(r->status == 200);
    auto m = c->Get("/metrics");
    REQUIRE(m);
    CHECK(m->status == 200);
  }
  // A shutdown does not wait for the stalled bodies' deadline (60 s): their reads are cut.
  srv.process().Signal(SIGTERM);
  CHECK(srv.process().Wait(20s) == 0);
  slow.clear();
}

TEST_CASE("Issue 12: a head or a body that stops arriving is cut off by its deadline", "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::ServeProcess srv(db, {"--header-timeout", "0.5", "--body-timeout", "0.5"});
  const std::string host = "Host: 127.0.0.1:" + std::to_string(srv.port()) + "\r\n";
  // The server answers and closes by itself; the exchange only waits for that (bounded).
  const std::string head = test::RawExchange(srv.port(), "GET /v1/runs HTTP/1.1\r\n" + host + "X-Slow: 1\r\n");
  INFO(head);
  CHECK(test::RawStatus(head) == 408);
  const std::string body = test::RawExchange(
      srv.port(), "POST /v1/prompt-sets/part HTTP/1.1\r\n" + host +
                      "Content-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n{\"prompt\":\"hi\"}\n");
  INFO(body);
  CHECK(test::RawStatus(body) == 400);
  CHECK_THAT(body, Catch::Contains("could not be read"));
  CHECK(srv.Request("GET", "/v1/prompt-sets/part").first == 404);
}

TEST_CASE("Issue 12: a %0A in a request path cannot forge a log line", "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::ServeProcess srv(db, {"--log-level", "debug"});
  const std::string forged = "retort: error: FORGED by a request";
  CHECK(srv.Request("GET", "/v1/runs/x%0A" + std::string("retort:%20error:%20FORGED%20by%20a%20request%0D%1B[2J")).first ==
        404);
  CHECK(srv.Request("GET", "/v1/prompt-sets/y%0Aretort:%20info:%20FORGED").first == 404);
  srv.process().Signal(SIGTERM);
  REQUIRE(srv.process().Wait(60s) == 0);
  const std::string err = srv.process().err();
  INFO(err);
  CHECK(err.find("\n" + forged) == std::string::npos);
  CHECK(err.find("\nretort: info: FORGED") == std::string::npos);
  CHECK(err.find('\x1b') == std::string::npos);
  CHECK(err.find('\r') == std::string::npos);
  CHECK_THAT(err, Catch::Contains("/v1/runs/x\\n" + forged + "\\r\\x1b[2J"));
}
