// Integration: the dashboard's server side (issue #16) — embedded page and CSP, token rules for
// the page and the API, the response browser routes and the rate samples.
#include <catch2/catch.hpp>

#include "service/serve_fixture.h"
#include "sim/simulator.h"
#include "test_support/db_query.h"
#include "test_support/temp_dir.h"

using namespace retort;
using test::json;

namespace {

std::string Jsonl(int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += json{{"id", "q" + std::to_string(i)},
                {"messages", {{{"role", "user"}, {"content", (i == 3 ? "find ME here " : "question ") + std::to_string(i)}}}}}
               .dump() +
           "\n";
  return out;
}

}  // namespace

TEST_CASE("serve: the dashboard is embedded, with a same-origin CSP, and open without the token", "[service]") {
  test::TempDir dir;
  const std::string kToken = "dash-token-0123456789";
  test::ServeProcess srv(dir.path() + "/c.db", {"--token-env", "RETORT_TEST_TOKEN"}, {"RETORT_TEST_TOKEN=" + kToken});
  auto c = srv.Client();
  for (const char* path : {"/", "/ui/app.js", "/ui/app.css", "/ui/icon.svg"}) {
    INFO(path);
    httplib::Result r = c->Get(path);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK_FALSE(r->body.empty());
    const std::string csp = r->get_header_value("Content-Security-Policy");
    CHECK_THAT(csp, Catch::Contains("default-src 'none'") && Catch::Contains("script-src 'self'") &&
                        Catch::Contains("style-src 'self'") && Catch::Contains("connect-src 'self'"));
    CHECK_THAT(csp, !Catch::Contains("unsafe-inline") && !Catch::Contains("unsafe-eval"));
    CHECK(r->get_header_value("X-Content-Type-Options") == "nosniff");
  }
  httplib::Result page = c->Get("/");
  REQUIRE(page);
  CHECK_THAT(page->get_header_value("Content-Type"), Catch::StartsWith("text/html"));
  CHECK_THAT(page->body, Catch::Contains("<script src=\"/ui/app.js\""));
  CHECK_THAT(page->body, !Catch::Contains("<script>"));  // no inline script
  CHECK_THAT(page->body, !Catch::Contains("style=\""));  // no inline style
  // The API still needs the token; the page's Host/Origin checks still apply.
  CHECK(srv.Request("GET", "/v1/runs").first == 401);
  CHECK(srv.Request("GET", "/v1/runs/x/responses").first == 401);
  CHECK(srv.Request("GET", "/", "", "", {{"Origin", "http://evil.example"}}).first == 403);
  CHECK(test::RawStatus(test::RawExchange(srv.port(), "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n")) == 421);
  // Only GET is open: a POST to the page's path is still refused without the token.
  CHECK(srv.Request("POST", "/", "{}").first == 401);
}

TEST_CASE("serve: the response browser pages a harvested run by keyset and shows raw bodies", "[service]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  auto sim = test::StartSim();
  test::ServeProcess srv(db, {});
  srv.Json("POST", "/v1/prompt-sets/s", Jsonl(30));
  json body = test::RunBody("r", sim->port());
  body["max_cost"] = 5.0;
  body["price_input"] = 1.0;
  body["price_output"] = 2.0;
  srv.Json("POST", "/v1/runs", body.dump(), 202);
  json run = srv.PollRun("r", [](const json& j) { return j["state"] == "done"; });
  CHECK(run["max_cost"] == 5.0);

  std::vector<std::int64_t> ids;
  std::string after = "0";
  for (int pages = 0; pages < 20; ++pages) {
    json page = srv.Json("GET", "/v1/runs/r/responses?limit=7&after=" + after);
    for (const json& r : page["responses"]) {
      ids.push_back(r["job_id"]);
      CHECK(r["state"] == "done");
      CHECK(r["messages"].is_array());
      CHECK(r["content"].is_string());
      CHECK(r.contains("latency_ms"));
      CHECK(r["tokens"].contains("completion"));
    }
    if (page["next_after"].is_null()) break;
    after = std::to_string(page["next_after"].get<std::int64_t>());
  }
  CHECK(ids.size() == 30);
  CHECK(std::is_sorted(ids.begin(), ids.end()));

  json found = srv.Json("GET", "/v1/runs/r/responses?q=find%20me");
  REQUIRE(found["responses"].size() == 1);
  const std::int64_t job = found["responses"][0]["job_id"];
  json one = srv.Json("GET", "/v1/runs/r/responses/" + std::to_string(job));
  CHECK(one["raw_body"] == test::QueryText(db, "SELECT body FROM responses WHERE job_id = " + std::to_string(job)));
  CHECK(one["content"] == test::QueryText(db, "SELECT content FROM responses WHERE job_id = " + std::to_string(job)));

  CHECK(srv.Json("GET", "/v1/runs/r/responses?status=failed")["responses"].empty());
  CHECK(srv.Json("GET", "/v1/runs/r/responses?finish_reason=no-such")["responses"].empty());
  // Strict parameters, 404s.
  CHECK(srv.Request("GET", "/v1/runs/r/responses?offset=10").first == 400);
  CHECK(srv.Request("GET", "/v1/runs/r/responses?limit=0").first == 400);
  CHECK(srv.Request("GET", "/v1/runs/r/responses?limit=201").first == 400);
  CHECK(srv.Request("GET", "/v1/runs/r/responses?after=-1").first == 400);
  CHECK(srv.Request("GET", "/v1/runs/r/responses?status=all").first == 400);
  CHECK(srv.Request("GET", "/v1/runs/nope/responses").first == 404);
  CHECK(srv.Request("GET", "/v1/runs/r/responses/999999").first == 404);
  CHECK(srv.Request("GET", "/v1/runs/r/responses/abc").first == 404);

  // Samples: the run harvested in this process; the shape is there (it may have been too
  // quick for a sample), `since` filters, unknown parameters are refused.
  json samples = srv.Json("GET", "/v1/runs/r/samples");
  CHECK(samples["interval_ms"] == 2000);
  CHECK(samples["samples"].is_array());
  CHECK(srv.Json("GET", "/v1/runs/r/samples?since=99999999999999")["samples"].empty());
  CHECK(srv.Request("GET", "/v1/runs/r/samples?bogus=1").first == 400);
  CHECK(srv.Request("GET", "/v1/runs/nope/samples").first == 404);
}
