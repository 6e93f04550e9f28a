// Integration tests of the simulator's batch APIs (OpenAI Batch, Anthropic Message Batches).
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "sim/sim_test_client.h"

using namespace simtest;  // NOLINT: test helpers

namespace {

using Clock = std::chrono::steady_clock;

const httplib::Headers kOpenAIHeaders = {{"Authorization", "Bearer sk-test"}};
const httplib::Headers kAnthropicHeaders = {{"x-api-key", "sk-test"}, {"anthropic-version", "2023-06-01"}};

json Prompt(int i, const std::string& model = "sim-model") {
  return ChatBody({{"user", "Batch question number " + std::to_string(i) + "?"}}, model);
}

json AnthropicParams(int i, const std::string& model = "claude-sim") {
  return {{"model", model},
          {"max_tokens", 64},
          {"messages", json::array({{{"role", "user"}, {"content", "Batch question number " + std::to_string(i) + "?"}}})}};
}

std::string Line(const std::string& cid, const json& body, const std::string& url = "/v1/chat/completions") {
  return json{{"custom_id", cid}, {"method", "POST"}, {"url", url}, {"body", body}}.dump() + "\n";
}

std::string InputFile(int n, int first = 0) {
  std::string s;
  for (int i = first; i < first + n; ++i) s += Line("req-" + std::to_string(i), Prompt(i));
  return s;
}

std::vector<json> Jsonl(const std::string& body) {
  std::vector<json> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t nl = body.find('\n', pos);
    REQUIRE(nl != std::string::npos);  // every line ends with a newline
    out.push_back(ParseJson(body.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return out;
}

httplib::Result Upload(httplib::Client& cli, const std::string& content, const std::string& purpose = "batch",
                       const httplib::Headers& h = kOpenAIHeaders) {
  httplib::MultipartFormDataItems items = {{"purpose", purpose, "", ""},
                                           {"file", content, "input.jsonl", "application/jsonl"}};
  return cli.Post("/v1/files", h, items);
}

std::string UploadOk(httplib::Client& cli, const std::string& content) {
  auto r = Upload(cli, content);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return ParseJson(r->body)["id"].get<std::string>();
}

httplib::Result CreateOpenAI(httplib::Client& cli, const std::string& file_id, json extra = json::object()) {
  json body = {{"input_file_id", file_id}, {"endpoint", "/v1/chat/completions"}, {"completion_window", "24h"}};
  body.update(extra);
  return cli.Post("/v1/batches", kOpenAIHeaders, body.dump(), "application/json");
}

json CreateOpenAIOk(httplib::Client& cli, const std::string& content) {
  const std::string fid = UploadOk(cli, content);
  auto r = CreateOpenAI(cli, fid);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return ParseJson(r->body);
}

httplib::Result CreateAnthropic(httplib::Client& cli, const json& requests) {
  return cli.Post("/v1/messages/batches", kAnthropicHeaders, json{{"requests", requests}}.dump(), "application/json");
}

json AnthropicRequests(int n, int first = 0) {
  json reqs = json::array();
  for (int i = first; i < first + n; ++i) reqs.push_back({{"custom_id", "req-" + std::to_string(i)}, {"params", AnthropicParams(i)}});
  return reqs;
}

json CreateAnthropicOk(httplib::Client& cli, const json& requests) {
  auto r = CreateAnthropic(cli, requests);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return ParseJson(r->body);
}

json GetJson(httplib::Client& cli, const std::string& path, const httplib::Headers& h) {
  auto r = cli.Get(path, h);
  REQUIRE(r);
  INFO(path << " -> " << r->status << " " << r->body);
  REQUIRE(r->status == 200);
  return ParseJson(r->body);
}

std::string GetBody(httplib::Client& cli, const std::string& path, const httplib::Headers& h) {
  auto r = cli.Get(path, h);
  REQUIRE(r);
  INFO(path << " -> " << r->status);
  REQUIRE(r->status == 200);
  CHECK(r->get_header_value("Content-Length") == std::to_string(r->body.size()));
  return r->body;
}

// Polls `path` until `done(json)` holds: a bounded loop (at most 4000 polls and 20 s), 5 ms apart.
template <typename Pred>
json PollUntil(httplib::Client& cli, const std::string& path, const httplib::Headers& h, Pred done,
               std::vector<std::string>* seen = nullptr, const char* field = "status") {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < 4000 && Clock::now() < deadline; ++i) {
    json j = GetJson(cli, path, h);
    if (seen && (seen->empty() || seen->back() != j[field].get<std::string>())) seen->push_back(j[field]);
    if (done(j)) return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  FAIL("timed out polling " << path);
  return {};
}

bool OpenAITerminal(const json& b) {
  const std::string s = b["status"];
  return s == "completed" || s == "failed" || s == "expired" || s == "cancelled";
}

json PollOpenAI(httplib::Client& cli, const std::string& id, std::vector<std::string>* seen = nullptr) {
  return PollUntil(cli, "/v1/batches/" + id, kOpenAIHeaders, OpenAITerminal, seen);
}

json PollAnthropic(httplib::Client& cli, const std::string& id, std::vector<std::string>* seen = nullptr) {
  return PollUntil(
      cli, "/v1/messages/batches/" + id, kAnthropicHeaders, [](const json& b) { return b["processing_status"] == "ended"; },
      seen, "processing_status");
}

json Stats(httplib::Client& cli) { return GetJson(cli, "/sim/stats", {}); }

SimulatorOptions BatchOpts(double complete_s = 0.3) {
  SimulatorOptions o;
  o.batch_complete_s = complete_s;
  o.api_key = "sk-test";
  return o;
}

std::map<std::string, json> ByCustomId(const std::vector<json>& lines) {
  std::map<std::string, json> m;
  for (const json& l : lines) {
    INFO(l.dump());
    REQUIRE(m.emplace(l["custom_id"].get<std::string>(), l).second);  // each custom_id once
  }
  return m;
}

std::vector<std::string> CustomIds(const std::vector<json>& lines) {
  std::vector<std::string> v;
  for (const json& l : lines) v.push_back(l["custom_id"]);
  return v;
}

}  // namespace

TEST_CASE("SimBatches OpenAI round trip answers every custom_id once, as the online endpoint does", "[teacher]") {
  SimulatorOptions o = BatchOpts(0.3);
  o.reasoning = "reasoning_content";  // the simulator's answer options apply to batches too
  o.answer_style = "boxed";
  o.min_words = 3;
  o.max_words = 9;
  auto sim = StartSim(o);
  auto cli = ClientFor(*sim);
  const int n = 20;
  const std::string input = InputFile(n);
  auto up = Upload(*cli, input);
  REQUIRE(up);
  REQUIRE(up->status == 200);
  const json file = ParseJson(up->body);
  CHECK(file["object"] == "file");
  CHECK(file["purpose"] == "batch");
  CHECK(file["bytes"] == input.size());
  CHECK(file["filename"] == "input.jsonl");
  CHECK(std::regex_match(file["id"].get<std::string>(), std::regex("file-sim[0-9a-f]+")));
  CHECK(GetJson(*cli, "/v1/files/" + file["id"].get<std::string>(), kOpenAIHeaders) == file);
  CHECK(GetBody(*cli, "/v1/files/" + file["id"].get<std::string>() + "/content", kOpenAIHeaders) == input);

  auto cr = CreateOpenAI(*cli, file["id"], {{"metadata", {{"run", "r1"}}}});
  REQUIRE(cr);
  REQUIRE(cr->status == 200);
  const json created = ParseJson(cr->body);
  CHECK(created["object"] == "batch");
  CHECK(created["status"] == "validating");
  CHECK(created["endpoint"] == "/v1/chat/completions");
  CHECK(created["completion_window"] == "24h");
  CHECK(created["input_file_id"] == file["id"]);
  CHECK(created["model"] == "sim-model");
  CHECK(created["metadata"] == json{{"run", "r1"}});
  CHECK(created["request_counts"] == json{{"total", n}, {"completed", 0}, {"failed", 0}});
  CHECK(created["output_file_id"].is_null());
  CHECK(created["errors"].is_null());
  CHECK(created["expires_at"].get<std::int64_t>() - created["created_at"].get<std::int64_t>() >= 59);

  std::vector<std::string> seen;
  const json done = PollOpenAI(*cli, created["id"], &seen);
  REQUIRE(done["status"] == "completed");
  CHECK(seen.front() == "validating");
  CHECK(done["request_counts"] == json{{"total", n}, {"completed", n}, {"failed", 0}});
  CHECK(done["error_file_id"].is_null());
  CHECK(done["completed_at"].is_number_integer());
  CHECK(done["in_progress_at"].is_number_integer());
  CHECK(done["finalizing_at"].is_number_integer());
  REQUIRE(done["output_file_id"].is_string());

  const std::vector<json> lines = Jsonl(GetBody(*cli, "/v1/files/" + done["output_file_id"].get<std::string>() + "/content",
                                                kOpenAIHeaders));
  REQUIRE(lines.size() == static_cast<std::size_t>(n));
  std::vector<std::string> input_order;
  for (int i = 0; i < n; ++i) input_order.push_back("req-" + std::to_string(i));
  CHECK(CustomIds(lines) != input_order);  // clients must join on custom_id
  const auto by_id = ByCustomId(lines);
  std::int64_t in = 0, out = 0;
  for (int i = 0; i < n; ++i) {
    const std::string cid = "req-" + std::to_string(i);
    REQUIRE(by_id.count(cid) == 1);
    const json& l = by_id.at(cid);
    CHECK(std::regex_match(l["id"].get<std::string>(), std::regex("batch_req_[0-9a-f]+")));
    CHECK(l["error"].is_null());
    CHECK(l["response"]["status_code"] == 200);
    CHECK(std::regex_match(l["response"]["request_id"].get<std::string>(), std::regex("req_[0-9a-f]+")));
    auto online = cli->Post("/v1/chat/completions", kOpenAIHeaders, Prompt(i).dump(), "application/json");
    REQUIRE(online);
    REQUIRE(online->status == 200);
    CHECK(l["response"]["body"] == ParseJson(online->body));
    CHECK(l["response"]["body"]["choices"][0]["message"]["reasoning_content"].is_string());
    in += l["response"]["body"]["usage"]["prompt_tokens"].get<std::int64_t>();
    out += l["response"]["body"]["usage"]["completion_tokens"].get<std::int64_t>();
  }
  CHECK(done["usage"]["input_tokens"] == in);
  CHECK(done["usage"]["output_tokens"] == out);
  CHECK(done["usage"]["total_tokens"] == in + out);
  const json out_file = GetJson(*cli, "/v1/files/" + done["output_file_id"].get<std::string>(), kOpenAIHeaders);
  CHECK(out_file["purpose"] == "batch_output");

  json s = Stats(*cli);
  CHECK(s["batch_files_uploaded"] == 1);
  CHECK(s["batches_created"] == 1);
  CHECK(s["batch_requests"] == n);
  CHECK(s["batches_cancelled"] == 0);
  CHECK(s["batch_requests_repeated"] == 0);

  // Resubmitting requests that already succeeded is a paid duplicate.
  const json again = CreateOpenAIOk(*cli, InputFile(3));
  CHECK(PollOpenAI(*cli, again["id"])["status"] == "completed");
  s = Stats(*cli);
  CHECK(s["batch_requests_repeated"] == 3);
  CHECK(s["batch_requests"] == n + 3);
}

TEST_CASE("SimBatches Anthropic round trip answers every custom_id once, as the online endpoint does", "[teacher]") {
  auto sim = StartSim(BatchOpts(0.3));
  auto cli = ClientFor(*sim);
  const int n = 12;
  json reqs = AnthropicRequests(n);
  // Params are validated asynchronously: a bad one is an errored result, not a 400.
  reqs.push_back({{"custom_id", "bad_params"}, {"params", {{"model", "claude-sim"}, {"messages", json::array()}}}});
  const json created = CreateAnthropicOk(*cli, reqs);
  const std::string id = created["id"];
  CHECK(std::regex_match(id, std::regex("msgbatch_sim[0-9a-f]+")));
  CHECK(created["type"] == "message_batch");
  CHECK(created["processing_status"] == "in_progress");
  CHECK(created["request_counts"] ==
        json{{"processing", n + 1}, {"succeeded", 0}, {"errored", 0}, {"canceled", 0}, {"expired", 0}});
  for (const char* k : {"ended_at", "cancel_initiated_at", "archived_at", "results_url"}) CHECK(created[k].is_null());
  const std::regex rfc3339("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z");
  CHECK(std::regex_match(created["created_at"].get<std::string>(), rfc3339));
  CHECK(std::regex_match(created["expires_at"].get<std::string>(), rfc3339));

  auto early = cli->Get("/v1/messages/batches/" + id + "/results", kAnthropicHeaders);
  REQUIRE(early);
  CHECK(early->status == 400);
  CHECK(ParseJson(early->body)["error"]["type"] == "invalid_request_error");

  std::vector<std::string> seen;
  const json done = PollAnthropic(*cli, id, &seen);
  CHECK(seen.front() == "in_progress");
  CHECK(done["request_counts"] ==
        json{{"processing", 0}, {"succeeded", n}, {"errored", 1}, {"canceled", 0}, {"expired", 0}});
  CHECK(std::regex_match(done["ended_at"].get<std::string>(), rfc3339));
  CHECK(done["results_url"] == "http://127.0.0.1:" + std::to_string(sim->port()) + "/v1/messages/batches/" + id + "/results");

  auto rr = cli->Get("/v1/messages/batches/" + id + "/results", kAnthropicHeaders);
  REQUIRE(rr);
  REQUIRE(rr->status == 200);
  CHECK(rr->get_header_value("Content-Type") == "application/binary");
  const std::vector<json> lines = Jsonl(rr->body);
  REQUIRE(lines.size() == static_cast<std::size_t>(n + 1));
  const auto by_id = ByCustomId(lines);
  for (int i = 0; i < n; ++i) {
    const json& l = by_id.at("req-" + std::to_string(i));
    REQUIRE(l["result"]["type"] == "succeeded");
    auto online = PostMessages(*cli, AnthropicParams(i));
    REQUIRE(online);
    REQUIRE(online->status == 200);
    CHECK(l["result"]["message"] == ParseJson(online->body));
  }
  const json& bad = by_id.at("bad_params")["result"];
  CHECK(bad["type"] == "errored");
  CHECK(bad["error"]["type"] == "error");
  CHECK(bad["error"]["error"]["type"] == "invalid_request_error");
  CHECK(bad["error"]["request_id"].is_string());

  json s = Stats(*cli);
  CHECK(s["batches_created"] == 1);
  CHECK(s["batch_requests"] == n + 1);
  CHECK(s["batch_requests_repeated"] == 0);
  const json again = CreateAnthropicOk(*cli, AnthropicRequests(2));
  PollAnthropic(*cli, again["id"]);
  CHECK(Stats(*cli)["batch_requests_repeated"] == 2);
}

TEST_CASE("SimBatches follow the compressed timeline exactly on the injected clock", "[teacher]") {
  retort::FakeClock clock;
  SimulatorOptions o = BatchOpts(1.0);
  o.clock = &clock;
  auto sim = StartSim(o);
  auto cli = ClientFor(*sim);
  const json ob = CreateOpenAIOk(*cli, InputFile(10));
  const json ab = CreateAnthropicOk(*cli, AnthropicRequests(10));
  const std::string op = "/v1/batches/" + ob["id"].get<std::string>();
  const std::string ap = "/v1/messages/batches/" + ab["id"].get<std::string>();
  auto counts = [&](const json& b) {
    return std::make_pair(b["request_counts"]["completed"].get<int>(), b["request_counts"]["failed"].get<int>());
  };
  clock.Advance(99);
  CHECK(GetJson(*cli, op, kOpenAIHeaders)["status"] == "validating");
  clock.Advance(1);  // 100 ms = 10%
  json b = GetJson(*cli, op, kOpenAIHeaders);
  CHECK(b["status"] == "in_progress");
  CHECK(counts(b) == std::make_pair(0, 0));
  clock.Advance(400);  // 500 ms: half of the 0.1..0.9 processing span
  b = GetJson(*cli, op, kOpenAIHeaders);
  CHECK(b["status"] == "in_progress");
  CHECK(counts(b) == std::make_pair(5, 0));
  CHECK(GetJson(*cli, ap, kAnthropicHeaders)["request_counts"]["processing"] == 10);
  clock.Advance(400);  // 900 ms
  b = GetJson(*cli, op, kOpenAIHeaders);
  CHECK(b["status"] == "finalizing");
  CHECK(counts(b) == std::make_pair(10, 0));
  CHECK(b["output_file_id"].is_null());
  CHECK(GetJson(*cli, ap, kAnthropicHeaders)["processing_status"] == "in_progress");
  clock.Advance(100);  // 1000 ms
  b = GetJson(*cli, op, kOpenAIHeaders);
  CHECK(b["status"] == "completed");
  CHECK(b["completed_at"].get<std::int64_t>() >= b["created_at"].get<std::int64_t>());
  const json a = GetJson(*cli, ap, kAnthropicHeaders);
  CHECK(a["processing_status"] == "ended");
  CHECK(a["request_counts"]["succeeded"] == 10);
}

TEST_CASE("SimBatches cancel: cancelling, then cancelled with what was done, and 409 once terminal", "[teacher]") {
  retort::FakeClock clock;
  SimulatorOptions o = BatchOpts(1.0);
  o.clock = &clock;
  auto sim = StartSim(o);
  auto cli = ClientFor(*sim);
  const json ob = CreateOpenAIOk(*cli, InputFile(10));
  const json ab = CreateAnthropicOk(*cli, AnthropicRequests(10));
  const std::string oid = ob["id"], aid = ab["id"];
  clock.Advance(500);  // half done on both APIs
  auto oc = cli->Post("/v1/batches/" + oid + "/cancel", kOpenAIHeaders, "", "application/json");
  REQUIRE(oc);
  REQUIRE(oc->status == 200);
  CHECK(ParseJson(oc->body)["status"] == "cancelling");
  CHECK(ParseJson(oc->body)["cancelling_at"].is_number_integer());
  auto ac = cli->Post("/v1/messages/batches/" + aid + "/cancel", kAnthropicHeaders, "", "application/json");
  REQUIRE(ac);
  REQUIRE(ac->status == 200);
  CHECK(ParseJson(ac->body)["processing_status"] == "canceling");
  CHECK(ParseJson(ac->body)["cancel_initiated_at"].is_string());
  clock.Advance(249);  // cancelled min(0.3 s, 1 s / 4) = 250 ms after the cancel
  CHECK(GetJson(*cli, "/v1/batches/" + oid, kOpenAIHeaders)["status"] == "cancelling");
  clock.Advance(1);
  const json b = GetJson(*cli, "/v1/batches/" + oid, kOpenAIHeaders);
  CHECK(b["status"] == "cancelled");
  CHECK(b["request_counts"] == json{{"total", 10}, {"completed", 5}, {"failed", 0}});
  const auto out = Jsonl(GetBody(*cli, "/v1/files/" + b["output_file_id"].get<std::string>() + "/content", kOpenAIHeaders));
  const auto err = Jsonl(GetBody(*cli, "/v1/files/" + b["error_file_id"].get<std::string>() + "/content", kOpenAIHeaders));
  CHECK(out.size() == 5);
  REQUIRE(err.size() == 5);
  for (const json& l : err) {
    CHECK(l["response"].is_null());
    CHECK(l["error"]["code"] == "batch_cancelled");
  }
  std::set<std::string> all;
  for (const auto& l : out) all.insert(l["custom_id"].get<std::string>());
  for (const auto& l : err) all.insert(l["custom_id"].get<std::string>());
  CHECK(all.size() == 10);

  const json a = GetJson(*cli, "/v1/messages/batches/" + aid, kAnthropicHeaders);
  CHECK(a["processing_status"] == "ended");
  CHECK(a["request_counts"] ==
        json{{"processing", 0}, {"succeeded", 5}, {"errored", 0}, {"canceled", 5}, {"expired", 0}});
  int canceled = 0;
  for (const json& l : Jsonl(GetBody(*cli, "/v1/messages/batches/" + aid + "/results", kAnthropicHeaders))) {
    if (l["result"] == json{{"type", "canceled"}}) ++canceled;
  }
  CHECK(canceled == 5);

  auto again = cli->Post("/v1/batches/" + oid + "/cancel", kOpenAIHeaders, "", "application/json");
  REQUIRE(again);
  CHECK(again->status == 409);
  CHECK(ParseJson(again->body)["error"]["message"].is_string());
  CHECK(Stats(*cli)["batches_cancelled"] == 2);
}

TEST_CASE("SimBatches cancel on the real clock ends shortly after", "[teacher]") {
  auto sim = StartSim(BatchOpts(0.4));
  auto cli = ClientFor(*sim);
  const json ob = CreateOpenAIOk(*cli, InputFile(6));
  auto oc = cli->Post("/v1/batches/" + ob["id"].get<std::string>() + "/cancel", kOpenAIHeaders, "", "application/json");
  REQUIRE(oc);
  REQUIRE(oc->status == 200);
  const json b = PollOpenAI(*cli, ob["id"]);
  CHECK(b["status"] == "cancelled");
  const json ab = CreateAnthropicOk(*cli, AnthropicRequests(4));
  auto ac = cli->Post("/v1/messages/batches/" + ab["id"].get<std::string>() + "/cancel", kAnthropicHeaders, "",
                      "application/json");
  REQUIRE(ac);
  REQUIRE(ac->status == 200);
  const json a = PollAnthropic(*cli, ab["id"]);
  const json& c = a["request_counts"];
  CHECK(c["succeeded"].get<int>() + c["canceled"].get<int>() == 4);
}

TEST_CASE("SimBatches expire-first: the first batches expire half done, and the window expires the rest", "[teacher]") {
  retort::FakeClock clock;
  SimulatorOptions o = BatchOpts(1.0);
  o.clock = &clock;
  o.batch_expire_first = 2;
  auto sim = StartSim(o);
  auto cli = ClientFor(*sim);
  const json ob = CreateOpenAIOk(*cli, InputFile(10));          // ordinal 0: expires
  const json ab = CreateAnthropicOk(*cli, AnthropicRequests(10));  // ordinal 1: expires
  const json later = CreateOpenAIOk(*cli, InputFile(4));        // ordinal 2: completes
  clock.Advance(499);
  CHECK(GetJson(*cli, "/v1/batches/" + ob["id"].get<std::string>(), kOpenAIHeaders)["status"] == "in_progress");
  clock.Advance(1);
  const json b = GetJson(*cli, "/v1/batches/" + ob["id"].get<std::string>(), kOpenAIHeaders);
  CHECK(b["status"] == "expired");
  CHECK(b["expired_at"].is_number_integer());
  CHECK(b["request_counts"]["completed"] == 5);
  const auto out = Jsonl(GetBody(*cli, "/v1/files/" + b["output_file_id"].get<std::string>() + "/content", kOpenAIHeaders));
  const auto err = Jsonl(GetBody(*cli, "/v1/files/" + b["error_file_id"].get<std::string>() + "/content", kOpenAIHeaders));
  CHECK(out.size() == 5);
  REQUIRE(err.size() == 5);
  for (const json& l : err) {
    CHECK(l["response"].is_null());
    CHECK(l["error"] == json{{"code", "batch_expired"},
                             {"message", "This request could not be executed before the completion window expired."}});
  }
  const json a = GetJson(*cli, "/v1/messages/batches/" + ab["id"].get<std::string>(), kAnthropicHeaders);
  CHECK(a["processing_status"] == "ended");
  CHECK(a["request_counts"] ==
        json{{"processing", 0}, {"succeeded", 5}, {"errored", 0}, {"canceled", 0}, {"expired", 5}});
  int expired = 0;
  for (const json& l : Jsonl(GetBody(*cli, "/v1/messages/batches/" + ab["id"].get<std::string>() + "/results",
                                     kAnthropicHeaders))) {
    if (l["result"] == json{{"type", "expired"}}) ++expired;
  }
  CHECK(expired == 5);
  clock.Advance(500);
  CHECK(GetJson(*cli, "/v1/batches/" + later["id"].get<std::string>(), kOpenAIHeaders)["status"] == "completed");

  // A batch slower than the window expires at the window with what is done by then.
  retort::FakeClock clock2;
  SimulatorOptions o2 = BatchOpts(2.0);
  o2.batch_window_s = 1.0;
  o2.clock = &clock2;
  auto sim2 = StartSim(o2);
  auto cli2 = ClientFor(*sim2);
  const json w = CreateOpenAIOk(*cli2, InputFile(10));
  CHECK(w["expires_at"].get<std::int64_t>() - w["created_at"].get<std::int64_t>() <= 1);
  clock2.Advance(1000);  // (1000 - 200) / 1600 = half done
  const json we = GetJson(*cli2, "/v1/batches/" + w["id"].get<std::string>(), kOpenAIHeaders);
  CHECK(we["status"] == "expired");
  CHECK(we["request_counts"]["completed"] == 5);
}

TEST_CASE("SimBatches line errors are retryable server errors drawn per batch and custom_id", "[teacher]") {
  SimulatorOptions o = BatchOpts(0.2);
  o.batch_line_error = 0.5;
  o.seed = 42;
  auto sim = StartSim(o);
  auto cli = ClientFor(*sim);
  const int n = 40;
  const json ob = PollOpenAI(*cli, CreateOpenAIOk(*cli, InputFile(n))["id"]);
  CHECK(ob["status"] == "completed");
  const int failed = ob["request_counts"]["failed"];
  CHECK(failed > 0);
  CHECK(failed < n);
  CHECK(ob["request_counts"]["completed"] == n - failed);
  REQUIRE(ob["error_file_id"].is_string());
  const auto err = Jsonl(GetBody(*cli, "/v1/files/" + ob["error_file_id"].get<std::string>() + "/content", kOpenAIHeaders));
  REQUIRE(err.size() == static_cast<std::size_t>(failed));
  std::string retry;
  for (const json& l : err) {
    CHECK(l["error"].is_null());
    CHECK(l["response"]["status_code"] == 500);
    CHECK(l["response"]["body"]["error"]["type"] == "server_error");
    const int i = std::stoi(l["custom_id"].get<std::string>().substr(4));
    retry += Line(l["custom_id"], Prompt(i));
  }
  // The failed requests resubmitted get a fresh draw: some succeed now.
  const json again = PollOpenAI(*cli, CreateOpenAIOk(*cli, retry)["id"]);
  CHECK(again["request_counts"]["completed"].get<int>() > 0);
  CHECK(Stats(*cli)["batch_requests_repeated"] == 0);

  // Anthropic: errored with api_error.
  SimulatorOptions o2 = BatchOpts(0.2);
  o2.batch_line_error = 1;
  auto sim2 = StartSim(o2);
  auto cli2 = ClientFor(*sim2);
  const json ab = PollAnthropic(*cli2, CreateAnthropicOk(*cli2, AnthropicRequests(5))["id"]);
  CHECK(ab["request_counts"]["errored"] == 5);
  for (const json& l : Jsonl(GetBody(*cli2, "/v1/messages/batches/" + ab["id"].get<std::string>() + "/results",
                                     kAnthropicHeaders))) {
    CHECK(l["result"]["type"] == "errored");
    CHECK(l["result"]["error"]["error"]["type"] == "api_error");
  }
}

TEST_CASE("SimBatches fail_status_for_model/prompt fail single requests", "[teacher]") {
  SimulatorOptions o = BatchOpts(0.2);
  o.fail_status_for_prompt = "400";
  auto sim = StartSim(o);
  auto cli = ClientFor(*sim);
  const std::string input = InputFile(3) + Line("bad", ChatBody({{"user", "a bad-prompt here"}}));
  const json ob = PollOpenAI(*cli, CreateOpenAIOk(*cli, input)["id"]);
  CHECK(ob["request_counts"] == json{{"total", 4}, {"completed", 3}, {"failed", 1}});
  const auto err = Jsonl(GetBody(*cli, "/v1/files/" + ob["error_file_id"].get<std::string>() + "/content", kOpenAIHeaders));
  REQUIRE(err.size() == 1);
  CHECK(err[0]["custom_id"] == "bad");
  CHECK(err[0]["response"]["status_code"] == 400);
  CHECK(err[0]["response"]["body"]["error"]["type"] == "invalid_request_error");

  json reqs = AnthropicRequests(2);
  json p = AnthropicParams(9);
  p["messages"][0]["content"] = "bad-prompt";
  reqs.push_back({{"custom_id", "bad"}, {"params", p}});
  const json ab = PollAnthropic(*cli, CreateAnthropicOk(*cli, reqs)["id"]);
  CHECK(ab["request_counts"]["errored"] == 1);
  const auto by_id = ByCustomId(Jsonl(GetBody(*cli, "/v1/messages/batches/" + ab["id"].get<std::string>() + "/results",
                                              kAnthropicHeaders)));
  CHECK(by_id.at("bad")["result"]["error"]["error"]["type"] == "invalid_request_error");
}

TEST_CASE("SimBatches truncate-first cuts the first outputs mid-line at about half", "[teacher]") {
  SimulatorOptions o = BatchOpts(0.2);
  o.batch_truncate_first = 2;
  auto sim = StartSim(o);
  auto cli = ClientFor(*sim);
  const json first = PollOpenAI(*cli, CreateOpenAIOk(*cli, InputFile(8))["id"]);
  const json fa = PollAnthropic(*cli, CreateAnthropicOk(*cli, AnthropicRequests(8))["id"]);
  const json second = PollOpenAI(*cli, CreateOpenAIOk(*cli, InputFile(8, 100))["id"]);
  const std::string cut = GetBody(*cli, "/v1/files/" + first["output_file_id"].get<std::string>() + "/content", kOpenAIHeaders);
  const std::string whole = GetBody(*cli, "/v1/files/" + second["output_file_id"].get<std::string>() + "/content", kOpenAIHeaders);
  REQUIRE_FALSE(cut.empty());
  CHECK(cut.back() != '\n');
  CHECK(cut.size() > whole.size() / 4);
  CHECK(cut.size() < whole.size() * 3 / 4);
  CHECK(whole.back() == '\n');
  CHECK(Jsonl(whole).size() == 8);
  const std::string acut = GetBody(*cli, "/v1/messages/batches/" + fa["id"].get<std::string>() + "/results", kAnthropicHeaders);
  REQUIRE_FALSE(acut.empty());
  CHECK(acut.back() != '\n');
  CHECK(GetJson(*cli, "/v1/files/" + first["output_file_id"].get<std::string>(), kOpenAIHeaders)["bytes"] == cut.size());
}

TEST_CASE("SimBatches upload-5xx refuses the first uploads and creates with 503", "[teacher]") {
  SimulatorOptions o = BatchOpts(0.2);
  o.batch_upload_5xx = 2;
  auto sim = StartSim(o);
  auto cli = ClientFor(*sim);
  auto u1 = Upload(*cli, InputFile(2));
  REQUIRE(u1);
  CHECK(u1->status == 503);
  CHECK(ParseJson(u1->body)["error"]["type"] == "server_error");
  auto a1 = CreateAnthropic(*cli, AnthropicRequests(2));
  REQUIRE(a1);
  CHECK(a1->status == 503);
  CHECK(ParseJson(a1->body)["type"] == "error");
  CHECK(Stats(*cli)["batch_files_uploaded"] == 0);
  CHECK(Stats(*cli)["batches_created"] == 0);
  CreateOpenAIOk(*cli, InputFile(2));
  CreateAnthropicOk(*cli, AnthropicRequests(2));
  CHECK(Stats(*cli)["batch_files_uploaded"] == 1);
  CHECK(Stats(*cli)["batches_created"] == 2);
}

TEST_CASE("SimBatches list newest first with pagination", "[teacher]") {
  auto sim = StartSim(BatchOpts(0.2));
  auto cli = ClientFor(*sim);
  std::vector<std::string> oids, aids;
  const std::string fid = UploadOk(*cli, InputFile(1));
  for (int i = 0; i < 5; ++i) {
    auto r = CreateOpenAI(*cli, fid);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    oids.insert(oids.begin(), ParseJson(r->body)["id"].get<std::string>());
    aids.insert(aids.begin(), CreateAnthropicOk(*cli, AnthropicRequests(1))["id"].get<std::string>());
  }
  auto ids = [](const json& page) {
    std::vector<std::string> v;
    for (const json& b : page["data"]) v.push_back(b["id"]);
    return v;
  };
  json p1 = GetJson(*cli, "/v1/batches?limit=2", kOpenAIHeaders);
  CHECK(p1["object"] == "list");
  CHECK(ids(p1) == std::vector<std::string>{oids[0], oids[1]});
  CHECK(p1["first_id"] == oids[0]);
  CHECK(p1["last_id"] == oids[1]);
  CHECK(p1["has_more"] == true);
  json p2 = GetJson(*cli, "/v1/batches?limit=2&after=" + oids[1], kOpenAIHeaders);
  CHECK(ids(p2) == std::vector<std::string>{oids[2], oids[3]});
  json p3 = GetJson(*cli, "/v1/batches?limit=2&after=" + oids[3], kOpenAIHeaders);
  CHECK(ids(p3) == std::vector<std::string>{oids[4]});
  CHECK(p3["has_more"] == false);
  CHECK(ids(GetJson(*cli, "/v1/batches", kOpenAIHeaders)) == oids);  // default 20
  for (const char* bad : {"/v1/batches?limit=0", "/v1/batches?limit=101", "/v1/batches?limit=x"}) {
    auto r = cli->Get(bad, kOpenAIHeaders);
    REQUIRE(r);
    CHECK(r->status == 400);
  }

  json a1 = GetJson(*cli, "/v1/messages/batches?limit=2", kAnthropicHeaders);
  CHECK(ids(a1) == std::vector<std::string>{aids[0], aids[1]});
  CHECK(a1["has_more"] == true);
  CHECK(a1["first_id"] == aids[0]);
  CHECK(a1["last_id"] == aids[1]);
  json a2 = GetJson(*cli, "/v1/messages/batches?limit=3&after_id=" + aids[1], kAnthropicHeaders);
  CHECK(ids(a2) == std::vector<std::string>{aids[2], aids[3], aids[4]});
  CHECK(a2["has_more"] == false);
  json a3 = GetJson(*cli, "/v1/messages/batches?limit=2&before_id=" + aids[3], kAnthropicHeaders);
  CHECK(ids(a3) == std::vector<std::string>{aids[1], aids[2]});
  CHECK(a3["has_more"] == true);
  json a4 = GetJson(*cli, "/v1/messages/batches?limit=1000", kAnthropicHeaders);
  CHECK(ids(a4) == aids);
  auto r = cli->Get("/v1/messages/batches?limit=1001", kAnthropicHeaders);
  REQUIRE(r);
  CHECK(r->status == 400);
}

TEST_CASE("SimBatches validation failures", "[teacher]") {
  auto sim = StartSim(BatchOpts(0.2));
  auto cli = ClientFor(*sim);
  // Upload and create.
  auto wrong_purpose = Upload(*cli, InputFile(1), "fine-tune");
  REQUIRE(wrong_purpose);
  CHECK(wrong_purpose->status == 400);
  auto unknown = CreateOpenAI(*cli, "file-nope");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(ParseJson(unknown->body)["error"]["message"].is_string());
  const std::string fid = UploadOk(*cli, InputFile(2));
  for (const json& extra : {json{{"endpoint", "/v1/embeddings"}}, json{{"completion_window", "1h"}},
                            json{{"metadata", {{"k", 1}}}}, json{{"metadata", "x"}}}) {
    auto r = CreateOpenAI(*cli, fid, extra);
    REQUIRE(r);
    INFO(extra.dump());
    CHECK(r->status == 400);
  }
  json many = json::object();
  for (int i = 0; i < 17; ++i) many["k" + std::to_string(i)] = "v";
  auto r17 = CreateOpenAI(*cli, fid, {{"metadata", many}});
  REQUIRE(r17);
  CHECK(r17->status == 400);
  auto nf = cli->Get("/v1/files/file-nope/content", kOpenAIHeaders);
  REQUIRE(nf);
  CHECK(nf->status == 404);
  auto nb = cli->Get("/v1/batches/batch_nope", kOpenAIHeaders);
  REQUIRE(nb);
  CHECK(nb->status == 404);

  // A bad file: the batch is created, then fails with the bad lines named; nothing is answered.
  std::string bad = Line("a", Prompt(1));                                // 1 ok
  bad += "not json\n";                                                   // 2
  bad += Line("a", Prompt(2));                                           // 3 duplicate
  bad += Line("c", Prompt(3), "/v1/embeddings");                         // 4 url
  bad += Line("d", Prompt(4, "other-model"));                            // 5 model
  bad += Line("e", json{{"model", "sim-model"}});                        // 6 body
  bad += json{{"custom_id", "f"}, {"method", "GET"}, {"url", "/v1/chat/completions"}, {"body", Prompt(5)}}.dump() + "\n";  // 7
  const json fb = PollOpenAI(*cli, CreateOpenAIOk(*cli, bad)["id"]);
  CHECK(fb["status"] == "failed");
  CHECK(fb["failed_at"].is_number_integer());
  CHECK(fb["output_file_id"].is_null());
  REQUIRE(fb["errors"]["object"] == "list");
  std::vector<int> lines;
  for (const json& e : fb["errors"]["data"]) {
    CHECK(e["code"].is_string());
    CHECK(e["message"].is_string());
    lines.push_back(e["line"]);
  }
  CHECK(lines == std::vector<int>{2, 3, 4, 5, 6, 7});
  CHECK(Stats(*cli)["batch_requests"] == 0);

  // Anthropic create: 400 for each of these.
  const std::vector<std::string> bodies = {
      "not json", "{}", R"({"requests":[]})", R"({"requests":{}})",
      json{{"requests", {{{"custom_id", "has space"}, {"params", AnthropicParams(1)}}}}}.dump(),
      json{{"requests", {{{"custom_id", std::string(65, 'a')}, {"params", AnthropicParams(1)}}}}}.dump(),
      json{{"requests", {{{"custom_id", "x"}, {"params", AnthropicParams(1)}}, {{"custom_id", "x"}, {"params", AnthropicParams(2)}}}}}.dump(),
      json{{"requests", {{{"custom_id", "x"}, {"params", "p"}}}}}.dump()};
  for (const std::string& body : bodies) {
    auto r = cli->Post("/v1/messages/batches", kAnthropicHeaders, body, "application/json");
    REQUIRE(r);
    INFO(body);
    CHECK(r->status == 400);
    CHECK(ParseJson(r->body)["error"]["type"] == "invalid_request_error");
  }
  auto na = cli->Get("/v1/messages/batches/msgbatch_nope", kAnthropicHeaders);
  REQUIRE(na);
  CHECK(na->status == 404);
  CHECK(ParseJson(na->body)["error"]["type"] == "not_found_error");
}

TEST_CASE("SimBatches require the API key on every batch route", "[teacher]") {
  auto sim = StartSim(BatchOpts(0.2));
  auto cli = ClientFor(*sim);
  const std::string fid = UploadOk(*cli, InputFile(1));
  const json ob = CreateOpenAIOk(*cli, InputFile(1));
  const json ab = CreateAnthropicOk(*cli, AnthropicRequests(1));
  const std::string o = ob["id"], a = ab["id"];
  const httplib::Headers wrong_oa = {{"Authorization", "Bearer nope"}};
  const httplib::Headers wrong_an = {{"x-api-key", "nope"}, {"anthropic-version", "2023-06-01"}};
  int n = 0;
  auto expect401 = [&](const httplib::Result& r) {
    REQUIRE(r);
    CHECK(r->status == 401);
    ++n;
  };
  expect401(Upload(*cli, InputFile(1), "batch", wrong_oa));
  expect401(cli->Get("/v1/files/" + fid, wrong_oa));
  expect401(cli->Get("/v1/files/" + fid + "/content", wrong_oa));
  expect401(cli->Post("/v1/batches", wrong_oa, "{}", "application/json"));
  expect401(cli->Get("/v1/batches", wrong_oa));
  expect401(cli->Get("/v1/batches/" + o, wrong_oa));
  expect401(cli->Post("/v1/batches/" + o + "/cancel", wrong_oa, "", "application/json"));
  expect401(cli->Post("/v1/messages/batches", wrong_an, "{}", "application/json"));
  expect401(cli->Get("/v1/messages/batches", wrong_an));
  expect401(cli->Get("/v1/messages/batches/" + a, wrong_an));
  expect401(cli->Post("/v1/messages/batches/" + a + "/cancel", wrong_an, "", "application/json"));
  expect401(cli->Get("/v1/messages/batches/" + a + "/results", httplib::Headers{}));
  CHECK(Stats(*cli)["unauthorized"] == n);
  CHECK(Stats(*cli)["batches_cancelled"] == 0);
}

TEST_CASE("SimBatches stay consistent under concurrent creates and polls", "[teacher]") {
  auto sim = StartSim(BatchOpts(0.2));
  const int threads = 4, per = 3, n = 5;
  std::vector<std::string> problems(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      httplib::Client cli("127.0.0.1", sim->port());
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(20, 0);
      for (int k = 0; k < per; ++k) {
        const bool openai = (t + k) % 2 == 0;
        const int first = (t * per + k) * 100;
        std::string id, path;
        const httplib::Headers& h = openai ? kOpenAIHeaders : kAnthropicHeaders;
        if (openai) {
          httplib::MultipartFormDataItems items = {{"purpose", "batch", "", ""}, {"file", InputFile(n, first), "f", ""}};
          auto up = cli.Post("/v1/files", h, items);
          if (!up || up->status != 200) { problems[t] += "upload;"; return; }
          json body = {{"input_file_id", json::parse(up->body)["id"]}, {"endpoint", "/v1/chat/completions"},
                       {"completion_window", "24h"}};
          auto cr = cli.Post("/v1/batches", h, body.dump(), "application/json");
          if (!cr || cr->status != 200) { problems[t] += "create;"; return; }
          id = json::parse(cr->body)["id"];
          path = "/v1/batches/" + id;
        } else {
          auto cr = cli.Post("/v1/messages/batches", h, json{{"requests", AnthropicRequests(n, first)}}.dump(), "application/json");
          if (!cr || cr->status != 200) { problems[t] += "create;"; return; }
          id = json::parse(cr->body)["id"];
          path = "/v1/messages/batches/" + id;
        }
        bool ended = false;
        const auto deadline = Clock::now() + std::chrono::seconds(20);
        for (int i = 0; i < 4000 && !ended && Clock::now() < deadline; ++i) {
          auto r = cli.Get(path, h);
          if (!r || r->status != 200) { problems[t] += "poll;"; return; }
          cli.Get(openai ? "/v1/batches?limit=5" : "/v1/messages/batches?limit=5", h);
          const json j = json::parse(r->body);
          ended = openai ? j["status"] == "completed" : j["processing_status"] == "ended";
          if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        if (!ended) { problems[t] += "timeout;"; return; }
        const json j = json::parse(cli.Get(path, h)->body);
        const std::string rpath = openai ? "/v1/files/" + j["output_file_id"].get<std::string>() + "/content"
                                         : path + "/results";
        auto rr = cli.Get(rpath, h);
        if (!rr || rr->status != 200) { problems[t] += "results;"; return; }
        if (std::count(rr->body.begin(), rr->body.end(), '\n') != n) problems[t] += "lines;";
      }
    });
  }
  for (auto& th : ts) th.join();
  for (const auto& p : problems) CHECK(p.empty());
  auto cli = ClientFor(*sim);
  const json s = Stats(*cli);
  CHECK(s["batches_created"] == threads * per);
  CHECK(s["batch_requests"] == threads * per * n);
  CHECK(s["batch_requests_repeated"] == 0);
}

TEST_CASE("SimulatorOptions::Validate refuses bad batch options", "[teacher]") {
  SimulatorOptions o;
  CHECK(o.Validate().ok());
  auto bad = [](auto edit) {
    SimulatorOptions x;
    edit(x);
    return !x.Validate().ok();
  };
  CHECK(bad([](SimulatorOptions& x) { x.batch_complete_s = 0; }));
  CHECK(bad([](SimulatorOptions& x) { x.batch_window_s = -1; }));
  CHECK(bad([](SimulatorOptions& x) { x.batch_expire_first = -1; }));
  CHECK(bad([](SimulatorOptions& x) { x.batch_truncate_first = -1; }));
  CHECK(bad([](SimulatorOptions& x) { x.batch_upload_5xx = -1; }));
  CHECK(bad([](SimulatorOptions& x) { x.batch_line_error = 1.5; }));
  CHECK(bad([](SimulatorOptions& x) { x.batch_line_error = -0.1; }));
}
