// End-to-end: a read-only corpus database (issue #6) — harvest and import refuse it with a clear
// message, change nothing, and the same harvest completes once the permissions are restored.
#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "retort/harvester.h"
#include "retort/store.h"
#include "store/sha256.h"
#include "sim/simulator.h"
#include "test_support/corpus_fixture.h"
#include "test_support/db_query.h"
#include "test_support/process.h"
#include "test_support/temp_dir.h"

using namespace retort;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// The unprivileged identity the children run as when the test runs as root (root ignores file
// permissions, so chmod alone would not make the database read-only for it).
constexpr const char* kNobody = "65534";
constexpr const char* kSetpriv = "/usr/bin/setpriv";

// A copy of the retort binary in a fresh 0755 folder under the temp directory, so uid 65534
// can run it whatever the permissions above the build tree (a CI checkout may sit under a 0700
// directory). Removed at exit.
class RunnableCopy {
 public:
  RunnableCopy() {
    std::string dir = (fs::temp_directory_path() / "retort-ro-bin-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) return;
    dir_ = dir;
    std::error_code ec;
    fs::copy_file(RETORT_BINARY, dir_ + "/retort", ec);
    if (ec || chmod(dir_.c_str(), 0755) != 0 || chmod((dir_ + "/retort").c_str(), 0755) != 0) return;
    path_ = dir_ + "/retort";
  }
  ~RunnableCopy() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }  // empty if the copy failed

 private:
  std::string dir_;
  std::string path_;
};

// `argv` (argv[0] = RETORT_BINARY) run as uid/gid 65534 through setpriv, from a copy that
// uid can run, when we are root; unchanged otherwise.
std::vector<std::string> Unprivileged(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  REQUIRE(fs::exists(kSetpriv));  // util-linux; without it the test cannot drop root
  static const RunnableCopy copy;
  REQUIRE_FALSE(copy.path().empty());
  const std::vector<std::string> drop = {kSetpriv, std::string("--reuid=") + kNobody,
                                         std::string("--regid=") + kNobody, "--clear-groups", "--"};
  static const bool can_run = [&] {
    std::vector<std::string> probe = drop;
    probe.insert(probe.end(), {copy.path(), "--version"});
    test::Process p(probe);
    return p.Wait(30s) == 0;
  }();
  INFO("uid 65534 must be able to run " << copy.path());
  REQUIRE(can_run);
  REQUIRE(argv.front() == RETORT_BINARY);
  argv.front() = copy.path();
  argv.insert(argv.begin(), drop.begin(), drop.end());
  return argv;
}

std::vector<std::string> Harvest(const std::string& db, const Simulator& sim, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {RETORT_BINARY, "harvest", "--db", db, "--set", "s", "--run", "r", "--model", "sim-1",
                                "--base-url", "http://127.0.0.1:" + std::to_string(sim.port()) + "/v1",
                                "--progress", "off", "--concurrency", "4"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Every file of the database directory (name -> SHA-256 of its bytes): the database and any
// -wal/-shm/journal file. Read as plain files, so taking it never touches the database.
std::map<std::string, std::string> DirState(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) out[e.path().filename().string()] = Sha256Hex(test::ReadFile(e.path().string()));
  return out;
}

// Makes the database files (mode 0444) and their directory (0555) read-only; the directory's
// parent chain stays traversable (the temp dir is created 0700).
void MakeReadOnly(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) REQUIRE(chmod(e.path().c_str(), 0444) == 0);
  REQUIRE(chmod(dir.c_str(), 0555) == 0);
}

void MakeWritable(const std::string& dir) {
  REQUIRE(chmod(dir.c_str(), 0777) == 0);
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) REQUIRE(chmod(e.path().c_str(), 0666) == 0);
}

// The clear message: names the database and says it is read-only (not SQLite's words alone).
void CheckReadOnlyMessage(const std::string& err, const std::string& db) {
  CHECK_THAT(err, Catch::Contains("the database '" + db + "' is read-only"));
  CHECK_THAT(err, Catch::Contains("re-run the same command"));
}

}  // namespace

TEST_CASE("harvest on a read-only database stops with a clear message and resumes when writable", "[e2e][crash]") {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/db";
  fs::create_directory(dir);
  REQUIRE(chmod(tmp.path().c_str(), 0755) == 0);
  const std::string db = dir + "/c.db";
  const int kPrompts = 60;
  test::AddPrompts(*test::OpenStoreAt(db), "s", kPrompts);
  auto sim = test::StartSim();
  MakeWritable(dir);
  {
    test::Process first(Unprivileged(Harvest(db, *sim, {"--max-requests", "20"})));
    REQUIRE(first.Wait(60s) == kHarvestExitStoppedEarly);
  }
  const auto partial = test::ResponseDigests(db);
  REQUIRE(partial.size() == 20);
  const std::int64_t requests_before = sim->Stats().requests;

  MakeReadOnly(dir);
  const auto before = DirState(dir);
  test::Process refused(Unprivileged(Harvest(db, *sim)));
  const int rc = refused.Wait(60s);
  const auto after = DirState(dir);
  CHECK(rc == 1);
  CheckReadOnlyMessage(refused.err(), db);
  CHECK(after == before);  // no byte of the database (or a new -wal/-shm) was written
  CHECK(sim->Stats().requests == requests_before);  // and no teacher request was spent

  // Permissions restored: the same command completes every job exactly once.
  MakeWritable(dir);
  test::Process again(Unprivileged(Harvest(db, *sim)));
  REQUIRE(again.Wait(120s) == 0);
  const auto full = test::ResponseDigests(db);
  CHECK(full.size() == static_cast<size_t>(kPrompts));
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == kPrompts);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == kPrompts);
  CHECK(sim->Stats().requests == kPrompts);  // 20 before, 40 now: none repeated
  for (const auto& [job, digest] : partial) CHECK(full.at(job) == digest);
}

TEST_CASE("harvest refuses a database whose directory alone is read-only", "[e2e][crash]") {
  // The file is writable but its directory is not: SQLite cannot create the -wal/-shm files.
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/db";
  fs::create_directory(dir);
  REQUIRE(chmod(tmp.path().c_str(), 0755) == 0);
  const std::string db = dir + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 10);
  auto sim = test::StartSim();
  REQUIRE(chmod(db.c_str(), 0666) == 0);
  REQUIRE(chmod(dir.c_str(), 0555) == 0);
  const auto before = DirState(dir);
  test::Process p(Unprivileged(Harvest(db, *sim)));
  CHECK(p.Wait(60s) == 1);
  CheckReadOnlyMessage(p.err(), db);
  CHECK(DirState(dir) == before);
  CHECK(sim->Stats().requests == 0);
  MakeWritable(dir);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM responses") == 0);
}

TEST_CASE("import into a read-only database stops with a clear message and changes nothing", "[e2e][crash]") {
  test::TempDir tmp;
  const std::string dir = tmp.path() + "/db";
  fs::create_directory(dir);
  REQUIRE(chmod(tmp.path().c_str(), 0755) == 0);
  const std::string db = dir + "/c.db";
  test::AddPrompts(*test::OpenStoreAt(db), "s", 5);
  const std::string prompts = tmp.path() + "/p.jsonl";
  test::WriteFile(prompts, "{\"prompt\": \"one\"}\n{\"prompt\": \"two\"}\n");
  REQUIRE(chmod(prompts.c_str(), 0444) == 0);
  MakeReadOnly(dir);
  const auto before = DirState(dir);
  test::Process p(Unprivileged({RETORT_BINARY, "import", "--db", db, "--set", "t", prompts}));
  CHECK(p.Wait(60s) == 1);
  CheckReadOnlyMessage(p.err(), db);
  CHECK(DirState(dir) == before);
  MakeWritable(dir);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM prompts") == 5);
  CHECK(test::QueryInt(db, "SELECT COUNT(*) FROM prompt_sets WHERE name = 't'") == 0);
}
