#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <zstd.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "retort/exporter.h"
#include "store/sha256.h"
#include "test_support/capture_log_sink.h"
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
std::vector<Prompt> SomePrompts(int n, int offset = 0) {
  std::vector<Prompt> ps;
  for (int i = offset; i < offset + n; ++i)
    ps.push_back(test::MakePrompt("p" + std::to_string(1000 + i), {{"user", "question " + std::to_string(i)}},
                                  i % 2 ? R"({"topic":"odd"})" : ""));
  return ps;
}
// p1000.. answers: sample 0 "answer i", sample 1 the same (duplicate) for even i; every 7th
// prompt truncated; prompt 3 sample 1 failed; prompt 5 has reasoning.
std::optional<ResponseRecord> Answers(const Prompt& p, int sample) {
  int i = std::stoi(p.key.substr(1)) - 1000;
  if (i == 3 && sample == 1) return std::nullopt;
  std::string content = "answer " + std::to_string(i) + (i % 2 && sample ? " again" : "");
  ResponseRecord r = test::Answer(content, i == 5 ? std::optional<std::string>("thinking") : std::nullopt,
                                  i % 7 == 6 ? "length" : "stop");
  if (i == 5) r.logprobs = {TokenLogprob{"answer", -0.5, {{"reply", -1.25}}}};
  return r;
}
ExportOptions Opts(const std::string& out) {
  ExportOptions o;
  o.run = "r";
  o.out_dir = out;
  return o;
}
std::map<std::string, std::string> ReadTree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).string()] = test::ReadFile(e.path().string());
  return out;
}
std::vector<json> Lines(const std::string& text) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    REQUIRE(nl != std::string::npos);
    json j = json::parse(text.substr(pos, nl - pos), nullptr, false);
    REQUIRE(j.is_object());
    out.push_back(j);
    pos = nl + 1;
  }
  return out;
}
}  // namespace

TEST_CASE("Exporter writes shards, manifest with checksums and counts, and a card", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  test::PopulateRun(*store, SomePrompts(20), 2, Answers);
  ExportOptions o = Opts(dir.path() + "/out");
  o.splits = {{"train", 0.8}, {"validation", 0.2}};
  o.shard_records = 5;
  test::CaptureLogSink log;
  auto sum = RunExport(*store, o, &log);
  REQUIRE(sum.ok());
  // 40 jobs: 1 failed -> 39 responses; prompts 6, 13 (i%7==6) truncated: 4; even prompts'
  // second sample duplicates the first: 10 even prompts, minus truncated even prompt 6 -> 9.
  CHECK(sum->responses == 39);
  CHECK(sum->filtered.at("truncated") == 4);
  CHECK(sum->filtered.at("duplicate") == 9);
  CHECK(sum->filtered.at("failed_jobs") == 1);
  CHECK(sum->exported == 39 - 4 - 9);

  const std::string out = dir.path() + "/out";
  json m = json::parse(test::ReadFile(out + "/manifest.json"), nullptr, false);
  REQUIRE(m.is_object());
  CHECK(m["format"] == "messages");
  CHECK(m["teacher"]["model"] == "teacher-1");
  CHECK(m["teacher"]["endpoints"] == json::array({"api.example.com:8443"}));
  CHECK(m["teacher"]["params"]["temperature"] == 0.7);
  CHECK(m["counts"]["exported"] == sum->exported);
  CHECK(m["counts"]["filtered"]["truncated"] == 4);
  CHECK(m["responses_received"]["first"].get<std::string>().substr(0, 4) == "2026");
  std::int64_t total = 0;
  std::set<std::string> listed;
  for (const json& sp : m["splits"]) {
    for (const json& sh : sp["shards"]) {
      const std::string file = sh["file"];
      listed.insert(file);
      const std::string bytes = test::ReadFile(out + "/" + file);
      CHECK(sh["sha256"] == Sha256Hex(bytes));
      CHECK(sh["bytes"] == bytes.size());
      auto recs = Lines(bytes);
      CHECK(sh["records"] == recs.size());
      CHECK(recs.size() <= 5);
      total += static_cast<std::int64_t>(recs.size());
      // Same keys and JSON types in every record.
      for (const json& r : recs) {
        CHECK(r.size() == 4);
        CHECK(r["id"].is_string());
        CHECK(r["sample"].is_number_integer());
        // Metadata is an object with keys or null, never {} (Arrow cannot write an empty struct).
        CHECK((r["metadata"].is_null() || (r["metadata"].is_object() && !r["metadata"].empty())));
        CHECK(r["messages"].back()["reasoning_content"].is_string());
      }
    }
  }
  CHECK(total == sum->exported);
  // Nothing but the listed shards inside data/; manifest and card outside.
  std::set<std::string> in_data;
  for (auto& e : fs::directory_iterator(out + "/data")) in_data.insert("data/" + e.path().filename().string());
  CHECK(in_data == listed);
  const size_t ntrain = m["splits"][0]["shards"].size();
  CHECK(ntrain >= 2);
  CHECK(m["splits"][0]["shards"][0]["file"] == "data/train-00000-of-0000" + std::to_string(ntrain) + ".jsonl");
  const std::string card = test::ReadFile(out + "/README.md");
  CHECK(card.rfind("---\nlicense: unknown\n", 0) == 0);
  // LLaMA-Factory's registration beside data/: one entry per shard of the two-shard splits.
  const json lf = json::parse(test::ReadFile(out + "/dataset_info.json"));
  CHECK(lf.size() == listed.size());
  CHECK(lf["r_train_00000"]["file_name"] == "data/train-00000-of-0000" + std::to_string(ntrain) + ".jsonl");
  CHECK(lf["r_train_00000"]["formatting"] == "sharegpt");
  CHECK(lf["r_train_00000"]["columns"] == json{{"messages", "messages"}});
  for (const auto& [name, e] : lf.items()) CHECK(listed.count(e["file_name"].get<std::string>()) == 1);
  CHECK_THAT(card, Catch::Contains("configs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                   "    path: \"data/train-*\"\n  - split: validation\n    path: \"data/validation-*\""));
  CHECK_THAT(card, Catch::Contains("size_categories:\n- n<1K"));
  // No credential or query string anywhere.
  for (const auto& [name, text] : ReadTree(out)) CHECK(text.find("sekrit") == std::string::npos);
  // Recorded in the exports table with the manifest.
  auto info = store->GetExport(sum->export_id);
  REQUIRE(info.ok());
  CHECK(info->state == "done");
  CHECK(info->manifest_json == sum->manifest_json);
  CHECK_FALSE(fs::exists(out + ".tmp-" + std::to_string(::getpid())));
}

TEST_CASE("Exporter output is byte-identical across runs, every file included", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  test::PopulateRun(*store, SomePrompts(30), 2, Answers, "r", 2);
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    ExportOptions a = Opts(dir.path() + "/a"), b = Opts(dir.path() + "/b");
    a.compress = b.compress = c;
    a.splits = b.splits = {{"train", 0.5}, {"test", 0.5}};
    a.shard_records = b.shard_records = 7;
    a.with_logprobs = b.with_logprobs = true;
    REQUIRE(RunExport(*store, a, nullptr).ok());
    REQUIRE(RunExport(*store, b, nullptr).ok());
    auto ta = ReadTree(dir.path() + "/a"), tb = ReadTree(dir.path() + "/b");
    CHECK(ta.size() >= 4);
    CHECK(ta == tb);
  }
}

TEST_CASE("Exporter keeps a prompt's split when prompts are added", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  auto splits_of = [&](const std::string& out) {
    std::map<std::string, std::string> where;
    for (const std::string split : {"train", "validation"})
      for (auto& e : fs::directory_iterator(out + "/data"))
        if (e.path().filename().string().rfind(split + "-", 0) == 0)
          for (const json& r : Lines(test::ReadFile(e.path().string()))) where[r["id"]] = split;
    return where;
  };
  test::PopulateRun(*store, SomePrompts(40), 1, Answers);
  ExportOptions o = Opts(dir.path() + "/one");
  o.splits = {{"train", 0.7}, {"validation", 0.3}};
  REQUIRE(RunExport(*store, o, nullptr).ok());
  auto before = splits_of(dir.path() + "/one");
  // More prompts in the set, then resume the run to answer them.
  test::PopulateRun(*store, SomePrompts(40, 40), 1, Answers);
  o.out_dir = dir.path() + "/two";
  REQUIRE(RunExport(*store, o, nullptr).ok());
  auto after = splits_of(dir.path() + "/two");
  CHECK(after.size() > before.size());
  int val = 0;
  for (const auto& [id, split] : before) {
    CHECK(after.at(id) == split);
    val += split == "validation";
  }
  CHECK(val > 0);
  CHECK(val < static_cast<int>(before.size()));
  // Another seed moves some prompts.
  o.out_dir = dir.path() + "/three";
  o.seed = 99;
  REQUIRE(RunExport(*store, o, nullptr).ok());
  auto reseeded = splits_of(dir.path() + "/three");
  int moved = 0;
  for (const auto& [id, split] : after) moved += reseeded.at(id) != split;
  CHECK(moved > 0);
}

TEST_CASE("Exporter replaces a previous export but refuses a foreign directory", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  test::PopulateRun(*store, SomePrompts(10), 1, Answers);
  const std::string out = dir.path() + "/out";
  ExportOptions o = Opts(out);
  o.shard_records = 2;
  REQUIRE(RunExport(*store, o, nullptr).ok());
  CHECK(fs::exists(out + "/data/train-00000-of-00005.jsonl"));
  o.shard_records = 0;
  REQUIRE(RunExport(*store, o, nullptr).ok());
  CHECK_FALSE(fs::exists(out + "/data/train-00000-of-00005.jsonl"));  // old shards gone
  CHECK(fs::exists(out + "/data/train-00000-of-00001.jsonl"));

  const std::string foreign = dir.path() + "/mine";
  fs::create_directories(foreign);
  test::WriteFile(foreign + "/notes.txt", "keep me");
  auto r = RunExport(*store, Opts(foreign), nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kFailedPrecondition);
  CHECK(test::ReadFile(foreign + "/notes.txt") == "keep me");

  auto missing = RunExport(*store, [&] { auto x = Opts(out); x.run = "nope"; return x; }(), nullptr);
  CHECK(missing.status().code() == StatusCode::kNotFound);
}

TEST_CASE("Exporter filters by length and pattern, keeps truncated on request, counts per pattern", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  test::PopulateRun(*store, SomePrompts(10), 1, [](const Prompt& p, int) -> std::optional<ResponseRecord> {
    int i = std::stoi(p.key.substr(1)) - 1000;
    if (i == 0) return test::Answer("");
    if (i == 1) return test::Answer("I'm sorry, I cannot help.");
    if (i == 2) return test::Answer("tiny");
    return test::Answer("a normal answer " + std::to_string(i), std::nullopt, i == 9 ? "length" : "stop");
  });
  ExportOptions o = Opts(dir.path() + "/out");
  o.keep_truncated = true;
  o.min_chars = 5;
  o.drop_patterns = {"^I'm sorry", "never matches"};
  o.format = ExportFormat::kAlpaca;
  auto sum = RunExport(*store, o, nullptr);
  REQUIRE(sum.ok());
  CHECK(sum->filtered.at("empty") == 1);
  CHECK(sum->filtered.at("drop_pattern") == 1);
  CHECK(sum->filtered.at("too_short") == 1);
  CHECK(sum->filtered.at("truncated") == 0);
  CHECK(sum->exported == 7);
  json m = json::parse(sum->manifest_json);
  CHECK(m["counts"]["drop_patterns"] ==
        json::parse(R"([{"pattern":"^I'm sorry","dropped":1},{"pattern":"never matches","dropped":0}])"));
  auto recs = Lines(test::ReadFile(dir.path() + "/out/data/train-00000-of-00001.jsonl"));
  REQUIRE(recs.size() == 7);
  CHECK(recs[0]["instruction"] == "question 3");
  CHECK(recs[0]["reasoning"] == "");
}

TEST_CASE("Exporter streams many row pages and writer buffers in key order, zstd equal to plain", "[export]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  // 1500 prompts x 2 samples: three reader pages of 1024 rows; ~2.6 MB of records: several
  // 1 MiB handoffs to each shard's writer thread.
  const std::string pad(800, 'y');
  test::PopulateRun(*store, SomePrompts(1500), 2, [&](const Prompt& p, int sample) -> std::optional<ResponseRecord> {
    return test::Answer(p.key + " sample " + std::to_string(sample) + " " + pad);
  });
  ExportOptions plain = Opts(dir.path() + "/plain"), zstd = Opts(dir.path() + "/zstd");
  zstd.compress = Compression::kZstd;
  auto a = RunExport(*store, plain, nullptr);
  REQUIRE(a.ok());
  auto b = RunExport(*store, zstd, nullptr);
  REQUIRE(b.ok());
  CHECK(a->exported == 3000);
  CHECK(b->exported == 3000);
  const std::string text = test::ReadFile(dir.path() + "/plain/data/train-00000-of-00001.jsonl");
  std::vector<json> lines = Lines(text);
  REQUIRE(lines.size() == 3000);
  bool ordered = true;
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto prev = std::make_pair(lines[i - 1]["id"].get<std::string>(), lines[i - 1]["sample"].get<int>());
    const auto cur = std::make_pair(lines[i]["id"].get<std::string>(), lines[i]["sample"].get<int>());
    ordered = ordered && prev < cur;
  }
  CHECK(ordered);
  CHECK(lines[2999]["messages"][1]["content"] == "p2499 sample 1 " + pad);
  const std::string z = test::ReadFile(dir.path() + "/zstd/data/train-00000-of-00001.jsonl.zst");
  CHECK(a->splits[0].shards[0].sha256 == Sha256Hex(text));
  CHECK(b->splits[0].shards[0].sha256 == Sha256Hex(z));
  ZSTD_DStream* d = ZSTD_createDStream();
  ZSTD_inBuffer in{z.data(), z.size(), 0};
  std::string unz;
  std::vector<char> buf(1 << 16);
  for (int guard = 0; in.pos < in.size && guard < 100000; ++guard) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    const size_t rc = ZSTD_decompressStream(d, &o, &in);
    REQUIRE_FALSE(ZSTD_isError(rc));
    unz.append(buf.data(), o.pos);
  }
  ZSTD_freeDStream(d);
  CHECK(unz == text);
}

TEST_CASE("Issue 12: concurrent exports to the same folder do not fail each other", "[export][regression]") {
  // The temp folder was DIR.tmp-<pid>: two exports of one process (the service) removed and
  // rewrote each other's files.
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  test::PopulateRun(*store, SomePrompts(200), 2, Answers);
  ExportOptions o = Opts(dir.path() + "/ref");
  o.shard_records = 50;
  o.compress = Compression::kZstd;
  REQUIRE(RunExport(*store, o, nullptr).ok());
  const auto reference = ReadTree(dir.path() + "/ref");
  o.out_dir = dir.path() + "/out";
  for (int round = 0; round < 3; ++round) {
    std::vector<Status> results(4);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < results.size(); ++i)
      threads.emplace_back([&, i] {
        Result<ExportSummary> r = RunExport(*store, o, nullptr);
        results[i] = r.status();
      });
    for (std::thread& t : threads) t.join();
    for (const Status& st : results) {
      INFO(st.ToString());
      CHECK(st.ok());
    }
    CHECK(ReadTree(dir.path() + "/out") == reference);
  }
  for (const auto& e : fs::directory_iterator(dir.path()))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
}
