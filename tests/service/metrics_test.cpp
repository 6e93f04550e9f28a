// Unit: the Prometheus text writer, histogram, run observer and JSON run options conversion.
#include <catch2/catch.hpp>

#include "service/api_router.h"
#include "service/metrics.h"
#include "service/run_request.h"

using namespace retort;
using nlohmann::json;

TEST_CASE("MetricsText writes HELP, TYPE, escaped labels and cumulative histogram buckets", "[service]") {
  Histogram h({0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(0.5);
  h.Observe(7);
  MetricsText m;
  m.Family("x_total", MetricsText::Type::kCounter, "Things.");
  m.Sample({{"run", "a\"b\\c\nd"}}, 3);
  m.Family("lat_seconds", MetricsText::Type::kHistogram, "Latency.");
  m.HistogramSample({{"run", "r"}}, h.Snap());
  CHECK(m.text() ==
        "# HELP x_total Things.\n"
        "# TYPE x_total counter\n"
        "x_total{run=\"a\\\"b\\\\c\\nd\"} 3\n"
        "# HELP lat_seconds Latency.\n"
        "# TYPE lat_seconds histogram\n"
        "lat_seconds_bucket{run=\"r\",le=\"0.1\"} 1\n"
        "lat_seconds_bucket{run=\"r\",le=\"1\"} 3\n"
        "lat_seconds_bucket{run=\"r\",le=\"+Inf\"} 4\n"
        "lat_seconds_sum{run=\"r\"} 8.05\n"
        "lat_seconds_count{run=\"r\"} 4\n");
}

TEST_CASE("RunMetrics counts requests by outcome and ignores unknown outcomes", "[service]") {
  RunMetrics rm;
  rm.OnRequest("ok", 0.2);
  rm.OnRequest("ok", 0.3);
  rm.OnRequest("rate_limited", 0.01);
  rm.OnRequest("bogus", 1);
  CHECK(rm.requests("ok") == 2);
  CHECK(rm.requests("rate_limited") == 1);
  CHECK(rm.requests("retried") == 0);
  CHECK(rm.requests("bogus") == 0);
  CHECK(rm.latency().count == 4);
}

TEST_CASE("HarvestOptionsFromJson applies the option table and rejects loudly", "[service]") {
  json base = {{"name", "r"}, {"set", "s"}, {"base_url", "http://127.0.0.1:1/v1"}, {"model", "m"}};
  json j = base;
  j["max_tokens"] = 100;
  j["temperature"] = 0.7;
  j["stop"] = json::array({"a", "b"});
  j["stream"] = true;
  j["api_key_env"] = "MY_KEY";
  j["extra_body"] = {{"top_k", 5}};
  j["max_total_tokens"] = 1000;
  auto o = HarvestOptionsFromJson(j);
  REQUIRE(o.ok());
  CHECK(o->run == "r");
  CHECK(o->set == "s");
  CHECK(o->params.max_tokens == 100);
  CHECK(o->params.temperature == 0.7);
  CHECK(o->params.stop == std::vector<std::string>{"a", "b"});
  CHECK(o->params.stream);
  CHECK(o->api_key_env == "MY_KEY");
  CHECK(o->params.extra_body_json == "{\"top_k\":5}");
  CHECK(o->max_total_tokens == 1000);
  struct Case {
    const char* field;
    json value;
    const char* needle;
  };
  for (const Case& c : {Case{"max_tokens", "5", "max_tokens: expected an integer"},
                        Case{"temperature", true, "temperature: expected a number"},
                        Case{"stream", 1, "stream: expected true or false"},
                        Case{"base_url", json::array({1}), "base_url: expected an array of strings"},
                        Case{"samples", 0, "samples: expected 1..1000"},
                        Case{"api_key", "sk-x", "api_key: API keys come from the server's environment: use api_key_env"},
                        Case{"password", "x", "use api_key_env"},
                        Case{"openai-api-key", "x", "use api_key_env"},
                        Case{"apiKey", "x", "use api_key_env"},
                        Case{"run", "x", "run: unknown field"},
                        Case{"max_tokenz", 3, "max_tokenz: unknown field"}}) {
    json b = base;
    b[c.field] = c.value;
    auto r = HarvestOptionsFromJson(b);
    INFO(c.field);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::Contains(c.needle));
  }
  json nm = base;
  nm.erase("name");
  auto r = HarvestOptionsFromJson(nm);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::StartsWith("name:"));
}

TEST_CASE("ErrorBody is JSON even when the message quotes bytes that are not UTF-8", "[service][regression]") {
  // Found by fuzz_service_router: POST /v1\xff/runs answered 500 (the 404 message quoted the
  // path and the JSON dump threw).
  const std::string body = ErrorBody("not_found", "no route POST /v1\xff/runs");
  json j = json::parse(body, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(j["error"]["message"] == "no route POST /v1\xEF\xBF\xBD/runs");
}

TEST_CASE("ConstantTimeEquals and HttpStatusOf", "[service]") {
  CHECK(ConstantTimeEquals("Bearer abc", "Bearer abc"));
  CHECK_FALSE(ConstantTimeEquals("Bearer ab", "Bearer abc"));
  CHECK_FALSE(ConstantTimeEquals("Bearer abd", "Bearer abc"));
  CHECK_FALSE(ConstantTimeEquals("", "x"));
  CHECK(HttpStatusOf(Status::InvalidArgument("x")) == 400);
  CHECK(HttpStatusOf(Status::NotFound("x")) == 404);
  CHECK(HttpStatusOf(Status::FailedPrecondition("x")) == 409);
  CHECK(HttpStatusOf(Status::Unauthenticated("x")) == 401);
  CHECK(HttpStatusOf(Status::IOError("x")) == 500);
}
