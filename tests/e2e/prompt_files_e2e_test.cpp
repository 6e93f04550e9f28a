// End-to-end (issue #13): the real binary imports an OpenAI batch file and a CSV through a template,
// harvests them from the simulator and exports shards LLaMA-Factory and Arrow read as they are.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/process.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct Out {
  int rc;
  std::string out, err;
};

Out RunRetort(std::vector<std::string> args) {
  args.insert(args.begin(), RETORT_BINARY);
  test::Process p(args);
  const int rc = p.Wait(120s);
  return Out{rc, p.out(), p.err()};
}

}  // namespace

TEST_CASE("import a batch file and a CSV with a template, harvest, export with dataset_info.json", "[e2e]") {
  test::TempDir dir;
  const std::string db = dir.path() + "/c.db";
  test::WriteFile(dir.path() + "/batch.jsonl",
                  R"({"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"2+2?"}],"temperature":0.7,"max_tokens":64,"presence_penalty":1}})"
                  "\n"
                  R"({"custom_id":"req-2","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"3+3?"}],"temperature":0.7,"max_tokens":64}})"
                  "\n");
  Out b = RunRetort({"import", "--db", db, "--set", "s", "--json", dir.path() + "/batch.jsonl"});
  INFO(b.err);
  REQUIRE(b.rc == 0);
  json bj = json::parse(b.out);
  CHECK(bj["imported"] == 2);
  CHECK(bj["batch_requests"] == 2);
  CHECK(bj["batch_models"] == json{{"gpt-4o-mini", 2}});
  CHECK(bj["params_not_kept"] == json{{"presence_penalty", 1}});
  CHECK_THAT(b.err, Catch::Contains("batch.jsonl:1: body.presence_penalty: not kept"));
  CHECK_THAT(b.err, Catch::Contains("every request sets temperature 0.7: harvest with --temperature"));

  test::WriteFile(dir.path() + "/data.csv",
                  "id,question,source\r\n"
                  "c1,\"What is 5+5, in words?\",quiz\r\n"
                  "c2,\"Say \"\"hi\"\"\r\non two lines\",chat\r\n");
  Out c = RunRetort({"import", "--db", db, "--set", "s", "--template", "Solve: {question}", "--system-template",
                     "Answer {{briefly}}.", "--id-field", "id", dir.path() + "/data.csv"});
  INFO(c.err);
  REQUIRE(c.rc == 0);
  CHECK_THAT(c.out, Catch::Contains("imported 2 prompts into set 's'"));

  // A missing column: exit 1, file:line: field, and nothing stored before is lost.
  test::WriteFile(dir.path() + "/bad.csv", "id,text\nz1,hello\n");
  Out m = RunRetort({"import", "--db", db, "--set", "s", "--template", "Solve: {question}", dir.path() + "/bad.csv"});
  CHECK(m.rc == 1);
  CHECK_THAT(m.err, Catch::Contains("bad.csv:2: question: column missing (template 'Solve: {question}')"));

  {
    auto store = test::OpenStoreAt(db);
    auto set = store->GetPromptSet("s");
    REQUIRE(set.ok());
    CHECK(set->prompts == 4);
  }

  auto sim = test::StartSim();
  Out h = RunRetort({"harvest", "--db", db, "--set", "s", "--run", "r", "--base-url",
                     "http://127.0.0.1:" + std::to_string(sim->port()) + "/v1", "--model", "sim-1", "--progress", "off"});
  INFO(h.err);
  REQUIRE(h.rc == 0);

  const std::string out = dir.path() + "/out";
  Out e = RunRetort({"export", "--db", db, "--run", "r", "--out", out, "--format", "sharegpt", "--license", "MIT"});
  INFO(e.err);
  REQUIRE(e.rc == 0);
  const json info = json::parse(test::ReadFile(out + "/dataset_info.json"));
  CHECK(info == json{{"r_train",
                      {{"file_name", "data/train-00000-of-00001.jsonl"},
                       {"formatting", "sharegpt"},
                       {"columns", {{"messages", "conversations"}}},
                       {"tags",
                        {{"role_tag", "from"},
                         {"content_tag", "value"},
                         {"user_tag", "human"},
                         {"assistant_tag", "gpt"},
                         {"system_tag", "system"}}}}}});
  const std::string shard = test::ReadFile(out + "/data/train-00000-of-00001.jsonl");
  CHECK(shard.find("\"metadata\":{}") == std::string::npos);
  CHECK_THAT(shard, Catch::Contains(R"({"id":"c1","sample":0,"conversations":[{"from":"system","value":"Answer {briefly}."},)"
                                    R"({"from":"human","value":"Solve: What is 5+5, in words?"})"));
  CHECK_THAT(shard, Catch::Contains(R"("metadata":{"source":"quiz"})"));
  CHECK_THAT(shard, Catch::Contains(R"("metadata":{"openai_batch":{"model":"gpt-4o-mini","params":{"max_tokens":64,"temperature":0.7}}})"));
  CHECK(test::ReadFile(out + "/README.md").rfind("---\nlicense: mit\n", 0) == 0);

  Out lp = RunRetort({"export", "--db", db, "--run", "r", "--out", dir.path() + "/lp", "--with-logprobs"});
  CHECK(lp.rc == 1);
  CHECK_THAT(lp.err, Catch::Contains("run 'r' was harvested without logprobs"));
  CHECK_FALSE(std::filesystem::exists(dir.path() + "/lp"));
}
