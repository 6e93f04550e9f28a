// Integration: `retort serve` API surface — upload -> run -> export cycle, every error status,
// bearer-token auth beyond loopback, /metrics families, and no secret in any output.
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "service/serve_fixture.h"
#include "sim/simulator.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
using test::json;

namespace {

std::string Jsonl(int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += json{{"id", "q" + std::to_string(i)},
                {"messages", {{{"role", "user"}, {"content", "question " + std::to_string(i) + ": why is the sky blue?"}}}}}
               .dump() +
           "\n";
  return out;
}

json PollExport(test::ServeProcess& srv, std::int64_t id) {
  json last;
  for (int i = 0; i < 3000; ++i) {
    last = srv.Json("GET", "/v1/exports/" + std::to_string(id));
    if (last["state"] != "running") return last;
    std::this_thread::sleep_for(20ms);
  }
  FAIL("export did not finish: " << last.dump());
  return last;
}

// Parses Prometheus text: sample line "name{labels} value" -> value; checks HELP/TYPE order.
struct Scrape {
  std::map<std::string, double> samples;  // "name{k="v",...}" -> value
  std::map<std::string, std::string> types;
};
Scrape ParseMetrics(const std::string& text) {
  Scrape s;
  std::istringstream in(text);
  std::string line;
  static const std::regex kSample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$)");
  std::set<std::string> helped;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      CHECK(helped.count(name) == 1);
      s.types[name] = rest.substr(rest.find(' ') + 1);
      continue;
    }
    std::smatch m;
    INFO(line);
    REQUIRE(std::regex_match(line, m, kSample));
    s.samples[m[1].str() + m[2].str()] = std::stod(m[3].str());
  }
  return s;
}

}  // namespace

TEST_CASE("serve full cycle: upload a set, harvest, export, manifest, metrics families", "[service]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  auto sim = test::StartSim();
  test::ServeProcess srv(db);
  CHECK(srv.Json("GET", "/healthz")["status"] == "ok");
  // Upload with one bad line: reported like `retort import`, the rest stored.
  std::string body = Jsonl(30) + "{not json\n";
  json up = srv.Json("POST", "/v1/prompt-sets/qs", body);
  CHECK(up["imported"] == 30);
  CHECK(up["rejected"] == 1);
  REQUIRE(up["errors"].size() == 1);
  CHECK_THAT(up["errors"][0].get<std::string>(), Catch::StartsWith("body:31:"));
  CHECK(up["rejected_by_reason"]["invalid_json"] == 1);
  // Re-upload: duplicates, nothing new.
  json again = srv.Json("POST", "/v1/prompt-sets/qs", Jsonl(30));
  CHECK(again["imported"] == 0);
  CHECK(again["duplicates"] == 30);
  CHECK(srv.Json("GET", "/v1/prompt-sets/qs")["prompts"] == 30);

  json rb = test::RunBody("r", sim->port(), "qs");
  rb["samples"] = 2;
  rb["max_tokens"] = 64;
  rb["temperature"] = 0.5;
  srv.Json("POST", "/v1/runs", rb.dump(), 202);
  json done = srv.PollRun("r", [](const json& j) { return j["state"] == "done"; });
  CHECK(done["jobs"]["done"] == 60);

  // The default export root is the folder "exports" next to the database.
  const std::string out = dir.path() + "/exports/export";
  json ex = srv.Json("POST", "/v1/exports",
                     json{{"run", "r"}, {"out", "export"}, {"split", "train=0.8,validation=0.2"}, {"seed", 7},
                          {"keep_duplicates", true}}.dump(), 202);
  REQUIRE(ex["id"].is_number_integer());
  json fin = PollExport(srv, ex["id"].get<std::int64_t>());
  INFO(fin.dump());
  REQUIRE(fin["state"] == "done");
  CHECK(fin["exported"] == 60);  // both samples of a prompt carry the same simulated answer: kept
  CHECK(fin["manifest"]["counts"]["filtered"]["duplicate"] == 0);
  CHECK(fin["manifest"].is_object());
  CHECK(std::filesystem::exists(out + "/manifest.json"));
  std::int64_t records = 0;
  for (const json& sp : fin["manifest"]["splits"]) records += sp["records"].get<std::int64_t>();
  CHECK(records == 60);
  CHECK(srv.Request("GET", "/v1/exports/999").first == 404);

  // Metrics: every family of the spec, with the run's numbers.
  auto [st, text] = srv.Request("GET", "/metrics");
  REQUIRE(st == 200);
  Scrape s = ParseMetrics(text);
  CHECK(s.types["retort_requests_total"] == "counter");
  CHECK(s.types["retort_jobs"] == "gauge");
  CHECK(s.types["retort_prompt_tokens_total"] == "counter");
  CHECK(s.types["retort_completion_tokens_total"] == "counter");
  CHECK(s.types["retort_request_duration_seconds"] == "histogram");
  CHECK(s.types["retort_requests_in_flight"] == "gauge");
  CHECK(s.types["retort_concurrency_limit"] == "gauge");
  CHECK(s.types["retort_governor_requests_per_minute"] == "gauge");
  CHECK(s.types["retort_governor_tokens_per_minute"] == "gauge");
  CHECK(s.types["retort_stored_response_bytes"] == "gauge");
  CHECK(s.samples["retort_requests_total{run=\"r\",outcome=\"ok\"}"] == 60);
  CHECK(s.samples.count("retort_requests_total{run=\"r\",outcome=\"rate_limited\"}") == 1);
  CHECK(s.samples["retort_jobs{run=\"r\",state=\"done\"}"] == 60);
  CHECK(s.samples["retort_jobs{run=\"r\",state=\"pending\"}"] == 0);
  // Every request, whatever its outcome, is observed once by the latency histogram.
  double all = 0;
  for (const char* o : {"ok", "retried", "rate_limited", "failed"})
    all += s.samples["retort_requests_total{run=\"r\",outcome=\"" + std::string(o) + "\"}"];
  CHECK(s.samples["retort_request_duration_seconds_count{run=\"r\"}"] == all);
  CHECK(s.samples["retort_request_duration_seconds_bucket{run=\"r\",le=\"+Inf\"}"] == all);
  CHECK(s.samples["retort_completion_tokens_total{run=\"r\"}"] > 0);
  CHECK(s.samples["retort_prompt_tokens_total{run=\"r\"}"] > 0);
  CHECK(s.samples["retort_stored_response_bytes{run=\"r\"}"] > 0);
  CHECK(s.samples["retort_requests_in_flight{run=\"r\"}"] == 0);
  CHECK(s.samples.count("retort_concurrency_limit{run=\"r\"}") == 1);
  // Histogram buckets are cumulative.
  CHECK(s.samples["retort_request_duration_seconds_bucket{run=\"r\",le=\"0.005\"}"] <=
        s.samples["retort_request_duration_seconds_bucket{run=\"r\",le=\"600\"}"]);
}

TEST_CASE("serve answers every error with the right status and a JSON error naming the field", "[service]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  SimulatorOptions so;
  so.latency_ms = 50;
  auto sim = test::StartSim(so);
  test::ServeProcess srv(db, {"--max-body-bytes", "4096"});
  auto expect = [&](const std::string& method, const std::string& path, const std::string& body, int status,
                    const std::string& code, const std::string& needle) {
    auto [st, text] = srv.Request(method, path, body);
    INFO(method << " " << path << " " << body << " -> " << st << " " << text);
    CHECK(st == status);
    json j = json::parse(text, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    CHECK(j["error"]["code"] == code);
    CHECK_THAT(j["error"]["message"].get<std::string>(), Catch::Contains(needle));
  };
  srv.Json("POST", "/v1/prompt-sets/s", Jsonl(20));
  const json good = test::RunBody("r", sim->port());
  // 400: bad input naming the field.
  expect("POST", "/v1/runs", "{nope", 400, "invalid_argument", "body");
  expect("POST", "/v1/runs", "[1,2]", 400, "invalid_argument", "body");
  json b = good;
  b["colour"] = "red";
  expect("POST", "/v1/runs", b.dump(), 400, "invalid_argument", "colour");
  b = good;
  b["max_tokens"] = "64";
  expect("POST", "/v1/runs", b.dump(), 400, "invalid_argument", "max_tokens");
  b = good;
  b["max_tokens"] = 1.5;
  expect("POST", "/v1/runs", b.dump(), 400, "invalid_argument", "max_tokens");
  b = good;
  b["concurrency"] = 0;
  expect("POST", "/v1/runs", b.dump(), 400, "invalid_argument", "concurrency");
  b = good;
  b["stream"] = "yes";
  expect("POST", "/v1/runs", b.dump(), 400, "invalid_argument", "stream");
  b = good;
  b.erase("model");
  expect("POST", "/v1/runs", b.dump(), 400, "invalid_argument", "model");
  b = good;
  b["name"] = "../etc";
  expect("POST", "/v1/runs", b.dump(), 400, "invalid_argument", "name");
  for (const char* secret : {"api_key", "openai_api_key", "token", "Authorization"}) {
    b = good;
    b[secret] = "sk-should-never-be-accepted";
    expect("POST", "/v1/runs", b.dump(), 400, "invalid_argument", "use api_key_env");
  }
  expect("POST", "/v1/exports", json{{"run", "r"}}.dump(), 400, "invalid_argument", "out");
  expect("POST", "/v1/exports", json{{"run", "r"}, {"out", "/tmp/x"}, {"format", "csv"}}.dump(), 400,
         "invalid_argument", "format");
  expect("POST", "/v1/exports", json{{"run", "r"}, {"out", "/tmp/x"}, {"shard_records", "9"}}.dump(), 400,
         "invalid_argument", "shard_records");
  expect("POST", "/v1/prompt-sets/bad", "{not json\n", 400, "invalid_argument", "body:1");
  // 404: unknown names and routes.
  expect("GET", "/v1/runs/nope", "", 404, "not_found", "nope");
  expect("POST", "/v1/runs/nope/pause", "", 404, "not_found", "nope");
  expect("GET", "/v1/prompt-sets/nope", "", 404, "not_found", "nope");
  b = good;
  b["set"] = "nope";
  expect("POST", "/v1/runs", b.dump(), 404, "not_found", "set");
  expect("POST", "/v1/exports", json{{"run", "nope"}, {"out", "o"}}.dump(), 404, "not_found", "run");
  expect("GET", "/v1/exports/abc", "", 404, "not_found", "abc");
  expect("GET", "/v2/whatever", "", 404, "not_found", "/v2/whatever");
  expect("GET", "/v1/runs/%FF", "", 404, "not_found", "no run");  // not UTF-8: still a JSON error
  expect("POST", "/v1%FF/runs", "", 404, "not_found", "no route");
  // 413: a body over --max-body-bytes.
  expect("POST", "/v1/prompt-sets/big", Jsonl(200), 413, "payload_too_large", "max-body-bytes");
  // 409: conflicting state.
  expect("POST", "/v1/runs/r/pause", "", 404, "not_found", "r");
  b = good;
  b["concurrency"] = 1;
  srv.Json("POST", "/v1/runs", b.dump(), 202);
  expect("POST", "/v1/runs", b.dump(), 409, "failed_precondition", "already harvesting");
  expect("POST", "/v1/runs/r/resume", "", 409, "failed_precondition", "already harvesting");
  srv.Json("POST", "/v1/runs/r/pause");
  expect("POST", "/v1/runs/r/pause", "", 409, "failed_precondition", "not harvesting");
  b["model"] = "other-model";
  expect("POST", "/v1/runs", b.dump(), 409, "failed_precondition", "model");
}

TEST_CASE("serve beyond loopback requires a token, 401 without it, no secret in any output", "[service][security]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  {  // Refuses to start on a non-loopback address without --token-env.
    test::Process p({RETORT_BINARY, "serve", "--db", db, "--listen", "0.0.0.0:0"});
    CHECK(p.Wait(20s) == 2);
    CHECK_THAT(p.err(), Catch::Contains("--token-env"));
  }
  {  // Issue 12: a name that only starts like a loopback address is not one.
    test::Process p({RETORT_BINARY, "serve", "--db", db, "--listen", "127.attacker.invalid:0"});
    CHECK(p.Wait(20s) == 2);
    CHECK_THAT(p.err(), Catch::Contains("--listen"));
    CHECK(p.out().find("listening on") == std::string::npos);
  }
  {  // --token-env naming an unset variable is refused too.
    test::Process p({RETORT_BINARY, "serve", "--db", db, "--listen", "0.0.0.0:0", "--token-env", "RETORT_UNSET_VAR_X"});
    CHECK(p.Wait(20s) == 2);
  }
  const std::string kKey = "sk-test-SECRET-123";
  const std::string kToken = "tok-test-SECRET-456";
  auto sim = test::StartSim();
  // Bound to every interface; the test only ever connects over 127.0.0.1.
  test::ServeProcess srv(db, {"--token-env", "RETORT_TEST_TOKEN", "--log-level", "debug", "--allow-key-env",
                              "RETORT_TEST_KEY", "--export-root", dir.path() + "/ex-root"},
                         {"RETORT_TEST_KEY=" + kKey, "RETORT_TEST_TOKEN=" + kToken}, "0.0.0.0");
  // No token, a wrong token, a token without "Bearer": 401. /healthz is open.
  for (const char* path : {"/v1/runs", "/metrics", "/v1/prompt-sets"}) {
    auto [st, text] = srv.Request("GET", path);
    CHECK(st == 401);
    CHECK_THAT(text, Catch::Contains("unauthenticated"));
  }
  {
    auto c = srv.Client();
    c->set_bearer_token_auth("tok-test-SECRET-45");  // a prefix of the real token
    auto r = c->Get("/v1/runs");
    REQUIRE(r);
    CHECK(r->status == 401);
    httplib::Headers h = {{"Authorization", kToken}};
    auto r2 = c->Get("/v1/runs", h);
    REQUIRE(r2);
    CHECK(r2->status == 401);
  }
  CHECK(srv.Request("POST", "/v1/prompt-sets/s", Jsonl(10)).first == 401);
  CHECK(srv.Request("GET", "/healthz").first == 200);
  {  // Issue 12: the scheme is case-insensitive (RFC 9110); the token is not.
    auto c = srv.Client();
    for (const std::string& value : {"bearer " + kToken, "BEARER " + kToken, "Bearer  " + kToken}) {
      auto r = c->Get("/v1/runs", httplib::Headers{{"Authorization", value}});
      REQUIRE(r);
      CHECK(r->status == 200);
    }
    auto r = c->Get("/v1/runs", httplib::Headers{{"Authorization", "bearer TOK-TEST-SECRET-456"}});
    REQUIRE(r);
    CHECK(r->status == 401);
  }
  srv.set_token(kToken);
  srv.Json("POST", "/v1/prompt-sets/s", Jsonl(10));
  json b = test::RunBody("r", sim->port());
  b["api_key_env"] = "RETORT_TEST_KEY";
  srv.Json("POST", "/v1/runs", b.dump(), 202);
  srv.PollRun("r", [](const json& j) { return j["state"] == "done"; });
  srv.Json("GET", "/v1/runs");
  srv.Request("GET", "/metrics");
  json ex = srv.Json("POST", "/v1/exports", json{{"run", "r"}, {"out", "ex"}}.dump(), 202);
  PollExport(srv, ex["id"].get<std::int64_t>());
  srv.process().Signal(SIGTERM);
  CHECK(srv.process().Wait(60s) == 0);
  const std::string err = srv.process().err();
  CHECK_THAT(err, Catch::Contains("401"));  // the rejected requests are logged...
  for (const std::string& secret : {kKey, kToken}) {  // ...without the token
    INFO("secret " << secret);
    CHECK(srv.responses().find(secret) == std::string::npos);
    CHECK(err.find(secret) == std::string::npos);
    CHECK(srv.process().out().find(secret) == std::string::npos);
    for (const char* suffix : {"", "-wal", "-shm"}) {
      const std::string f = db + suffix;
      if (std::filesystem::exists(f)) CHECK(test::ReadFile(f).find(secret) == std::string::npos);
    }
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path() + "/ex-root/ex"))
      if (e.is_regular_file()) CHECK(test::ReadFile(e.path().string()).find(secret) == std::string::npos);
  }
}

TEST_CASE("serve answers GET /v1/openapi.json with the OpenAPI document, behind the guard and the token",
          "[service][openapi]") {
  test::TempDir dir;
  const std::string kToken = "tok-openapi-test";
  test::ServeProcess srv(dir.path() + "/c.db", {"--token-env", "RETORT_TEST_TOKEN"}, {"RETORT_TEST_TOKEN=" + kToken});
  // The token rule of the other /v1 reads: 401 without it.
  CHECK(srv.Request("GET", "/v1/openapi.json").first == 401);
  srv.set_token(kToken);
  auto c = srv.Client();
  httplib::Result r = c->Get("/v1/openapi.json");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "application/json");
  json doc = json::parse(r->body, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc["openapi"] == "3.1.0");
  CHECK(doc["paths"].contains("/v1/openapi.json"));
  // The request guard holds as for every GET: a foreign Host (DNS rebinding) is 421.
  const std::string raw = test::RawExchange(
      srv.port(), "GET /v1/openapi.json HTTP/1.1\r\nHost: attacker.example\r\nAuthorization: Bearer " + kToken +
                      "\r\nConnection: close\r\n\r\n");
  CHECK(test::RawStatus(raw) == 421);
}
