#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "retort/store.h"
#include "store/sha256.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

using namespace retort;
namespace fs = std::filesystem;

namespace {
struct Proc {
  int rc = -1;
  std::string out, err;
};
// Runs the real retort binary with `args` (a shell fragment) in `dir`.
Proc Run(const std::string& dir, const std::string& args, const std::string& stdin_file = "/dev/null") {
  const std::string cmd = "cd '" + dir + "' && '" RETORT_BINARY "' " + args + " <'" + stdin_file + "' >'" + dir +
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
}  // namespace

TEST_CASE("retort import reports bad lines with file:line and exits 1 and with strict stores nothing", "[e2e]") {
  test::TempDir dir;
  test::WriteFile(dir.path() + "/p.jsonl",
                  R"({"id":"a","prompt":"hello"})" "\n" R"({"id":"b","messages":[{"role":"user","content":5}]})" "\n");
  Proc p = Run(dir.path(), "import --db c.db --set s p.jsonl");
  CHECK(p.rc == 1);
  CHECK_THAT(p.err, Catch::Contains("retort: error: p.jsonl:2: messages[0].content: must be a string, got a number"));
  CHECK_THAT(p.out, Catch::Contains("imported 1 prompt into set 's'"));
  Proc s = Run(dir.path(), "import --db c.db --set strict --strict --json p.jsonl");
  CHECK(s.rc == 1);
  auto j = nlohmann::json::parse(s.out, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["imported"] == 0);
  CHECK(j["aborted"] == true);
  test::WriteFile(dir.path() + "/t.txt", "one\ntwo\n\nthree\n");
  Proc t = Run(dir.path(), "import --db c.db --set txt --text --json -", dir.path() + "/t.txt");
  CHECK(t.rc == 0);
  CHECK(nlohmann::json::parse(t.out)["imported"] == 3);
  CHECK(Run(dir.path(), "import --db c.db p.jsonl").rc == 2);  // --set missing: usage error
}

TEST_CASE("retort export writes a verifiable, byte-identical export", "[e2e]") {
  test::TempDir dir;
  {
    auto store = Store::Open(StoreOptions{dir.path() + "/c.db"});
    REQUIRE(store.ok());
    std::vector<Prompt> ps;
    for (int i = 0; i < 50; ++i) ps.push_back(test::MakePrompt("", {{"user", "q" + std::to_string(i)}}));
    test::PopulateRun(**store, ps, 1, [](const Prompt& p, int) -> std::optional<ResponseRecord> {
      return test::Answer("answer to " + p.messages[0].content, std::string("because"));
    });
  }
  const std::string args = " --split train=0.9,validation=0.1 --shard-records 10 --compress zstd --format sharegpt"
                           " --reasoning inline --license apache-2.0";
  Proc a = Run(dir.path(), "export --db c.db --run r --out exp1" + args);
  REQUIRE(a.rc == 0);
  CHECK_THAT(a.out, Catch::Contains("exported 50 of 50 responses of run 'r'"));
  Proc b = Run(dir.path(), "export --db c.db --run r --out exp2" + args);
  REQUIRE(b.rc == 0);
  auto ta = ReadTree(dir.path() + "/exp1"), tb = ReadTree(dir.path() + "/exp2");
  CHECK(ta == tb);
  auto m = nlohmann::json::parse(ta.at("manifest.json"));
  int shards = 0;
  for (const auto& sp : m["splits"])
    for (const auto& sh : sp["shards"]) {
      ++shards;
      CHECK(sh["sha256"] == Sha256Hex(ta.at(sh["file"].get<std::string>())));
    }
  CHECK(shards + 3 == static_cast<int>(ta.size()));  // shards + manifest.json + README.md + dataset_info.json
  CHECK(ta.at("README.md").rfind("---\nlicense: apache-2.0\n", 0) == 0);
  for (const auto& [name, text] : ta)
    if (name.rfind("data/", 0) == 0) CHECK(name.find(".jsonl.zst") != std::string::npos);

  // Usage errors exit 2; runtime failures exit 1.
  CHECK(Run(dir.path(), "export --db c.db --run r --out x --format csv").rc == 2);
  CHECK(Run(dir.path(), "export --db c.db --run r --out x --split train=0.5").rc == 2);
  CHECK(Run(dir.path(), "export --db c.db --run r --out x --fields minimal --with-logprobs").rc == 2);
  Proc nf = Run(dir.path(), "export --db c.db --run nope --out x");
  CHECK(nf.rc == 1);
  CHECK_THAT(nf.err, Catch::Contains("nope"));
  CHECK(Run(dir.path(), "export --db missing.db --run r --out x").rc == 1);
}
