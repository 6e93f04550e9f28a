// Tests of what trainers' loaders read beside the shards: dataset_info.json, metadata, licences (issue #13).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "export/hub_license.h"
#include "retort/exporter.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

using namespace retort;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Store> OpenStore(const std::string& path) {
  auto s = Store::Open(StoreOptions{path});
  REQUIRE(s.ok());
  return std::move(*s);
}

// Three prompts: one with metadata, one without, one stored with "{}" metadata.
void Populate(Store& store, std::optional<int> logprobs = std::nullopt) {
  std::vector<Prompt> ps = {
      test::MakePrompt("a", {{"system", "Be terse."}, {"user", "one"}}, R"({"src":"x"})"),
      test::MakePrompt("b", {{"user", "two"}}),
      test::MakePrompt("c", {{"user", "three"}}, "{}"),
  };
  test::PopulateRun(store, ps, 1, [](const Prompt& p, int) -> std::optional<ResponseRecord> {
    return test::Answer("answer to " + p.messages.back().content);
  }, "r", logprobs);
}

ExportOptions Opts(const std::string& out, ExportFormat f) {
  ExportOptions o;
  o.run = "r";
  o.out_dir = out;
  o.format = f;
  return o;
}

std::vector<json> Records(const std::string& text) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    REQUIRE(nl != std::string::npos);
    out.push_back(json::parse(text.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("HubLicenseId matches the Hub's licence list without regard to case", "[export]") {
  CHECK(HubLicenseId("MIT") == "mit");
  CHECK(HubLicenseId("CC-BY-4.0") == "cc-by-4.0");
  CHECK(HubLicenseId("Apache-2.0") == "apache-2.0");
  CHECK(HubLicenseId("openrail++") == "openrail++");
  CHECK(HubLicenseId("LLaMA2") == "llama2");
  CHECK_FALSE(HubLicenseId("apache 2.0"));
  CHECK_FALSE(HubLicenseId("GPL-3.0-or-later"));  // an SPDX id the Hub does not list
  CHECK_FALSE(HubLicenseId("other"));
  CHECK_FALSE(HubLicenseId("unknown"));
  CHECK_FALSE(HubLicenseId(""));
}

TEST_CASE("The card's licence: Hub id in the Hub's spelling, else other with license_name/link", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  Populate(*store);
  const std::string out = dir.path() + "/out";
  ExportOptions o = Opts(out, ExportFormat::kMessages);
  o.license = "CC-BY-4.0";
  REQUIRE(RunExport(*store, o, nullptr).ok());
  CHECK(test::ReadFile(out + "/README.md").rfind("---\nlicense: cc-by-4.0\npretty_name:", 0) == 0);

  o.license = "Llama 3.1 Community License";
  o.license_name = "llama3.1-community";
  o.license_link = "https://example.com/LICENSE";
  REQUIRE(RunExport(*store, o, nullptr).ok());
  const std::string card = test::ReadFile(out + "/README.md");
  CHECK(card.rfind("---\nlicense: other\nlicense_name: \"llama3.1-community\"\n"
                   "license_link: \"https://example.com/LICENSE\"\npretty_name:",
                   0) == 0);
  CHECK_THAT(card, Catch::Contains("Licence: Llama 3.1 Community License (https://example.com/LICENSE)."));
  const json m = json::parse(test::ReadFile(out + "/manifest.json"));
  CHECK(m["options"]["license_name"] == "llama3.1-community");

  o.license = "MIT";
  CHECK_THAT(o.Validate().message(), Catch::Contains("--license-name: only for a licence outside"));
  o.license_name.clear();
  o.license_link = "a\nb";
  CHECK_THAT(o.Validate().message(), Catch::Contains("--license-link: must be one line"));
}

TEST_CASE("Exported metadata is an object with keys or null, in every record", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  Populate(*store);
  for (ExportFormat f : {ExportFormat::kMessages, ExportFormat::kPromptCompletion, ExportFormat::kShareGpt,
                         ExportFormat::kAlpaca}) {
    const std::string out = dir.path() + "/out";
    REQUIRE(RunExport(*store, Opts(out, f), nullptr).ok());
    const std::string text = test::ReadFile(out + "/data/train-00000-of-00001.jsonl");
    CHECK(text.find("{}") == std::string::npos);
    auto recs = Records(text);
    REQUIRE(recs.size() == 3);
    CHECK(recs[0]["metadata"] == json{{"src", "x"}});
    CHECK(recs[1]["metadata"].is_null());
    CHECK(recs[2]["metadata"].is_null());
    for (const json& r : recs) CHECK(r.contains("metadata"));
  }
}

TEST_CASE("dataset_info.json maps our record keys for LLaMA-Factory, one entry per split", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  Populate(*store);
  const std::string out = dir.path() + "/out";

  ExportOptions o = Opts(out, ExportFormat::kAlpaca);
  o.splits = {{"train", 0.5}, {"validation", 0.5}};
  Result<ExportSummary> sum = Status::NotFound("no seed tried");
  for (o.seed = 0; o.seed < 64; ++o.seed) {  // a seed that puts prompts in both splits
    sum = RunExport(*store, o, nullptr);
    REQUIRE(sum.ok());
    if (sum->splits[0].records > 0 && sum->splits[1].records > 0) break;
  }
  json info = json::parse(test::ReadFile(out + "/dataset_info.json"));
  json want = json::object();
  for (const SplitSummary& sp : sum->splits) {
    if (sp.records == 0) continue;
    want["r_" + sp.name] = {{"file_name", "data/" + sp.name + "-00000-of-00001.jsonl"},
                            {"formatting", "alpaca"},
                            {"columns",
                             {{"prompt", "instruction"},
                              {"query", "input"},
                              {"response", "output"},
                              {"system", "system"},
                              {"history", "history"}}}};
  }
  CHECK(want.size() == 2);
  CHECK(info == want);
  CHECK_FALSE(fs::exists(out + "/data/dataset_info.json"));  // never among the shards

  o = Opts(out, ExportFormat::kShareGpt);
  REQUIRE(RunExport(*store, o, nullptr).ok());
  info = json::parse(test::ReadFile(out + "/dataset_info.json"));
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
  // The keys the mapping names are the keys of our records.
  const json rec = Records(test::ReadFile(out + "/data/train-00000-of-00001.jsonl"))[0];
  CHECK(rec["conversations"][0]["from"] == "system");
  CHECK(rec["conversations"][1]["from"] == "human");
  CHECK(rec["conversations"][2]["from"] == "gpt");

  o = Opts(out, ExportFormat::kMessages);
  o.compress = Compression::kGzip;
  REQUIRE(RunExport(*store, o, nullptr).ok());
  info = json::parse(test::ReadFile(out + "/dataset_info.json"));
  CHECK(info["r_train"]["file_name"] == "data/train-00000-of-00001.jsonl");
  CHECK(fs::exists(out + "/data/train-00000-of-00001.jsonl.gz"));
  CHECK_THAT(info["r_train"]["retort_note"].get<std::string>(), Catch::Contains("gunzip -k data/*.jsonl.gz"));
  CHECK(info["r_train"]["tags"]["role_tag"] == "role");

  REQUIRE(RunExport(*store, Opts(out, ExportFormat::kPromptCompletion), nullptr).ok());
  CHECK_FALSE(fs::exists(out + "/dataset_info.json"));  // LLaMA-Factory has no prompt-completion form
}

TEST_CASE("Export with logprobs of a run harvested without logprobs is an error naming the run", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  Populate(*store);
  ExportOptions o = Opts(dir.path() + "/out", ExportFormat::kMessages);
  o.with_logprobs = true;
  auto sum = RunExport(*store, o, nullptr);
  REQUIRE_FALSE(sum.ok());
  CHECK(sum.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(sum.status().message(), Catch::Contains("run 'r' was harvested without logprobs"));
  CHECK_THAT(sum.status().message(), Catch::Contains("--logprobs K"));
  CHECK_FALSE(fs::exists(dir.path() + "/out"));
}
