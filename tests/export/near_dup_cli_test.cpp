// End-to-end tests of export --near-dup / --decontaminate and import --near-dup with the real retort binary.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "retort/store.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

using namespace retort;
namespace fs = std::filesystem;

namespace {
struct Proc {
  int rc = -1;
  std::string out, err;
};
Proc Run(const std::string& dir, const std::string& args) {
  const std::string cmd = "cd '" + dir + "' && '" RETORT_BINARY "' " + args + " </dev/null >'" + dir +
                          "/stdout' 2>'" + dir + "/stderr'";
  int st = std::system(cmd.c_str());
  Proc p;
  p.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  p.out = test::ReadFile(dir + "/stdout");
  p.err = test::ReadFile(dir + "/stderr");
  return p;
}
std::map<std::string, std::string> ReadTree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).string()] = test::ReadFile(e.path().string());
  return out;
}
// 40 words that no other call shares.
std::string Words(int seed) {
  std::string s;
  for (int i = 0; i < 40; ++i) s += "w" + std::to_string(seed) + "x" + std::to_string(i) + " ";
  return s;
}
std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%02d", i);
  return buf;
}
}  // namespace

TEST_CASE("retort export --near-dup and --decontaminate drop records, say so, and stay byte-identical",
          "[e2e][near_dup]") {
  test::TempDir dir;
  {
    auto store = Store::Open(StoreOptions{dir.path() + "/c.db"});
    REQUIRE(store.ok());
    std::vector<Prompt> ps;
    for (int i = 0; i < 30; ++i) {
      ps.push_back(test::MakePrompt(Key(i), {{"user", "question " + std::to_string(i) + ": " + Words(1000 + i)}}));
    }
    test::PopulateRun(**store, ps, 1, [](const Prompt& p, int) -> std::optional<ResponseRecord> {
      const int i = std::atoi(p.key.c_str() + 1);
      // k10..k19 answer like k00..k09 in other case and punctuation: estimated similarity 1.
      if (i >= 10 && i < 20) {
        std::string a = Words(i - 10);
        for (char& c : a) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
        return test::Answer(a + "!!!");
      }
      return test::Answer(Words(i));
    });
  }
  const std::string args = " --near-dup 0.8 --near-dup-on answer --json";
  Proc a = Run(dir.path(), "export --db c.db --run r --out e1" + args);
  INFO(a.err);
  REQUIRE(a.rc == 0);
  auto m = nlohmann::json::parse(a.out, nullptr, false);
  REQUIRE(m.is_object());
  CHECK(m["counts"]["exported"] == 20);
  CHECK(m["counts"]["filtered"]["near_duplicate"] == 10);
  CHECK(m["near_dup"]["threshold"] == 0.8);
  CHECK(m["near_dup"]["on"] == "answer");
  CHECK(m["near_dup"]["permutations"] == 128);
  CHECK(m["near_dup"]["bands"].get<int>() * m["near_dup"]["rows"].get<int>() <= 128);
  CHECK(m["near_dup"]["dropped"] == 10);
  CHECK(m["options"]["near_dup"] == 0.8);
  CHECK_FALSE(m.contains("decontamination"));
  // The first of each cluster by key is kept.
  const std::string shard = test::ReadFile(dir.path() + "/e1/data/train-00000-of-00001.jsonl");
  CHECK(shard.find("\"id\":\"k05\"") != std::string::npos);
  CHECK(shard.find("\"id\":\"k15\"") == std::string::npos);
  CHECK_THAT(test::ReadFile(dir.path() + "/e1/README.md"), Catch::Contains("Near-duplicates were removed: 10 records"));
  Proc b = Run(dir.path(), "export --db c.db --run r --out e2" + args);
  REQUIRE(b.rc == 0);
  CHECK(ReadTree(dir.path() + "/e1") == ReadTree(dir.path() + "/e2"));
  // No temporary signature file is left in the export.
  for (auto& e : fs::recursive_directory_iterator(dir.path() + "/e1"))
    CHECK(e.path().filename().string().find("near-dup") == std::string::npos);
  // --near-dup-on prompt: every prompt differs.
  Proc p = Run(dir.path(), "export --db c.db --run r --out e3 --near-dup 0.8 --near-dup-on prompt --json");
  REQUIRE(p.rc == 0);
  CHECK(nlohmann::json::parse(p.out)["counts"]["exported"] == 30);

  // Decontamination against an evaluation set imported with retort import: k25's prompt shares
  // 13 consecutive words, k26's only 12.
  const std::string w25 = Words(1025), w26 = Words(1026);
  auto first_words = [](const std::string& s, int n) {
    size_t pos = 0;
    for (int i = 0; i < n; ++i) pos = s.find(' ', pos) + 1;
    return s.substr(0, pos);
  };
  test::WriteFile(dir.path() + "/eval.txt", "Eval: " + first_words(w25, 13) + "?\n" + first_words(w26, 12) + "\n");
  REQUIRE(Run(dir.path(), "import --db c.db --set eval --text eval.txt").rc == 0);
  Proc d = Run(dir.path(), "export --db c.db --run r --out e4 --decontaminate eval --json");
  INFO(d.err);
  REQUIRE(d.rc == 0);
  auto dm = nlohmann::json::parse(d.out);
  CHECK(dm["counts"]["exported"] == 29);
  CHECK(dm["counts"]["filtered"]["decontaminated"] == 1);
  CHECK(dm["decontamination"]["ngram"] == 13);
  CHECK(dm["decontamination"]["sets"] ==
        nlohmann::json::parse(R"([{"name":"eval","prompts":2,"removed":1}])"));
  CHECK_THAT(test::ReadFile(dir.path() + "/e4/README.md"),
             Catch::Contains("decontaminated against the prompt set `eval`"));
  Proc d12 = Run(dir.path(), "export --db c.db --run r --out e5 --decontaminate eval --decontaminate-ngram 12 --json");
  REQUIRE(d12.rc == 0);
  CHECK(nlohmann::json::parse(d12.out)["counts"]["filtered"]["decontaminated"] == 2);

  // Bad input names the flag.
  for (const char* bad : {"--near-dup 0", "--near-dup 1.5", "--near-dup abc", "--near-dup 0.8 --near-dup-on all",
                          "--near-dup-on prompt", "--decontaminate-ngram 0 --decontaminate eval"}) {
    Proc x = Run(dir.path(), std::string("export --db c.db --run r --out bad ") + bad);
    INFO(bad << ": " << x.err);
    CHECK(x.rc == 2);
    CHECK_THAT(x.err, Catch::Contains("--near-dup") || Catch::Contains("--decontaminate-ngram"));
  }
  Proc u = Run(dir.path(), "export --db c.db --run r --out bad --decontaminate nope");
  CHECK(u.rc == 1);
  CHECK_THAT(u.err, Catch::Contains("--decontaminate: no prompt set named 'nope'"));
  CHECK_FALSE(fs::exists(dir.path() + "/bad"));
}

TEST_CASE("retort import --near-dup reports near-duplicate prompts and --skip-near-dup skips them",
          "[e2e][near_dup]") {
  test::TempDir dir;
  test::WriteFile(dir.path() + "/a.txt", Words(1) + "\n" + Words(2) + "\n");
  // Line 1: like a.txt's first line in other case; line 2: new; line 3: like line 2; line 4: exact duplicate.
  std::string up = Words(1);
  for (char& c : up) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  test::WriteFile(dir.path() + "/b.txt", up + "\n" + Words(3) + "\n" + Words(3) + "." + "\n" + Words(2) + "\n");
  REQUIRE(Run(dir.path(), "import --db c.db --set s --text a.txt").rc == 0);
  Proc r = Run(dir.path(), "import --db c.db --set s --text --near-dup 0.9 --json b.txt");
  INFO(r.err);
  CHECK(r.rc == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["imported"] == 3);
  CHECK(j["duplicates"] == 1);
  CHECK(j["near_duplicates"] == 2);
  CHECK(j["near_dup_skipped"] == 0);
  CHECK_THAT(r.err, Catch::Contains("b.txt:1: near-duplicate of prompt 'h:"));
  CHECK_THAT(r.err, Catch::Contains("b.txt:3: near-duplicate of prompt 'h:"));
  Proc s = Run(dir.path(), "import --db c.db --set s2 --text --near-dup 0.9 --skip-near-dup b.txt");
  CHECK(s.rc == 0);
  CHECK_THAT(s.out, Catch::Contains("imported 3 prompts") && Catch::Contains("1 near-duplicate (skipped)"));
  CHECK(Run(dir.path(), "import --db c.db --set s --text --near-dup 2 b.txt").rc == 2);
  Proc k = Run(dir.path(), "import --db c.db --set s --text --skip-near-dup b.txt");
  CHECK(k.rc == 2);
  CHECK_THAT(k.err, Catch::Contains("--skip-near-dup: needs --near-dup"));
}
