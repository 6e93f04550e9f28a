#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <string>

#include "retort/importer.h"
#include "retort/store.h"
#include "test_support/capture_log_sink.h"
#include "test_support/temp_dir.h"

using namespace retort;

namespace {
std::unique_ptr<Store> OpenStore(const std::string& path) {
  auto s = Store::Open(StoreOptions{path});
  REQUIRE(s.ok());
  return std::move(*s);
}
std::int64_t SetSize(Store& s, const std::string& set) {
  auto info = s.GetPromptSet(set);
  return info.ok() ? info->prompts : -1;
}
// Returns the metadata column of the prompt with `key` ("<null>" when NULL).
std::string MetadataOf(const std::string& db, const std::string& key) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT metadata FROM prompts WHERE prompt_key = ?", -1, &st, nullptr) == SQLITE_OK);
  sqlite3_bind_text(st, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  std::string out = "<missing>";
  if (sqlite3_step(st) == SQLITE_ROW)
    out = sqlite3_column_type(st, 0) == SQLITE_NULL ? "<null>" : reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}
}  // namespace

TEST_CASE("Importer skips bad lines, counts them by reason and logs file:line", "[prompts]") {
  test::TempDir dir;
  const std::string file = dir.path() + "/p.jsonl";
  test::WriteFile(file,
                  R"({"id":"a","prompt":"one","metadata":{"src":"x"}})" "\n"
                  "{broken\n"
                  "\n"
                  R"({"id":"b","messages":[{"role":"wizard","content":"x"}]})" "\n"
                  R"({"id":"c","prompt":"two"})" "\n"
                  R"({"id":"d","prompt":"one"})" "\n"            // duplicate content of a
                  R"({"id":"a","prompt":"changed"})" "\n"        // same id, other content
                  "{\"prompt\":\"\xFF\"}\n"
                  R"({"prompt":"three"})");                       // no trailing newline
  auto store = OpenStore(dir.path() + "/c.db");
  test::CaptureLogSink log;
  ImportOptions opts;
  opts.set = "s";
  auto sum = ImportPromptFile(*store, opts, file, &log);
  REQUIRE(sum.ok());
  CHECK(sum->lines == 9);
  CHECK(sum->blank == 1);
  CHECK(sum->imported == 3);
  CHECK(sum->duplicates == 1);
  CHECK(sum->rejected == 4);
  CHECK(sum->rejected_by_reason == std::map<std::string, std::int64_t>{
                                       {"invalid_json", 1}, {"unknown_role", 1}, {"id_conflict", 1}, {"invalid_utf8", 1}});
  CHECK_FALSE(sum->aborted);
  CHECK(SetSize(*store, "s") == 3);
  const std::string text = log.Text();
  CHECK_THAT(text, Catch::Contains(file + ":2: line: invalid JSON"));
  CHECK_THAT(text, Catch::Contains(file + ":4: messages[0].role: unknown role 'wizard'"));
  CHECK_THAT(text, Catch::Contains(file + ":7: id: id 'a' was already imported with different content"));
  CHECK_THAT(text, Catch::Contains(file + ":8: line: invalid UTF-8"));
  CHECK(log.lines().size() == 4);
  CHECK(MetadataOf(dir.path() + "/c.db", "a") == R"({"src":"x"})");
  CHECK(MetadataOf(dir.path() + "/c.db", "c") == "<null>");
  CHECK(sum->ToLine("s") ==
        "imported 3 prompts into set 's' from 1 file (1 duplicate, 4 rejected: 1 id_conflict, 1 invalid_json, "
        "1 invalid_utf8, 1 unknown_role)");
}

TEST_CASE("Importer --strict stores nothing from a file with a bad line", "[prompts]") {
  test::TempDir dir;
  const std::string good = dir.path() + "/good.jsonl", bad = dir.path() + "/bad.jsonl";
  test::WriteFile(good, R"({"prompt":"g1"})" "\n" R"({"prompt":"g2"})" "\n");
  test::WriteFile(bad, R"({"prompt":"b1"})" "\n" R"({"prompt":"b2"})" "\n" R"({"prompt":7})" "\n" R"({"prompt":"b4"})" "\n");
  auto store = OpenStore(dir.path() + "/c.db");
  ImportOptions opts;
  opts.set = "s";
  opts.strict = true;
  opts.batch_size = 1;  // batches are flushed, yet rolled back with the file
  test::CaptureLogSink log;
  auto g = ImportPromptFile(*store, opts, good, &log);
  REQUIRE(g.ok());
  CHECK(g->imported == 2);
  auto b = ImportPromptFile(*store, opts, bad, &log);
  REQUIRE(b.ok());
  CHECK(b->aborted);
  CHECK(b->rejected == 1);
  CHECK(b->imported == 0);
  CHECK(b->rejected_by_reason.at("wrong_type") == 1);
  CHECK(SetSize(*store, "s") == 2);
  CHECK_THAT(log.Text(), Catch::Contains(bad + ":3: prompt: must be a string, got a number"));
}

TEST_CASE("Importer --strict aborts on an id conflict with an earlier file", "[prompts]") {
  test::TempDir dir;
  const std::string f1 = dir.path() + "/1.jsonl", f2 = dir.path() + "/2.jsonl";
  test::WriteFile(f1, R"({"id":"k","prompt":"first"})" "\n");
  test::WriteFile(f2, R"({"id":"new","prompt":"n"})" "\n" R"({"id":"k","prompt":"second"})" "\n");
  auto store = OpenStore(dir.path() + "/c.db");
  ImportOptions opts;
  opts.set = "s";
  opts.strict = true;
  REQUIRE(ImportPromptFile(*store, opts, f1, nullptr).ok());
  auto r = ImportPromptFile(*store, opts, f2, nullptr);
  REQUIRE(r.ok());
  CHECK(r->aborted);
  CHECK(r->rejected_by_reason.at("id_conflict") == 1);
  CHECK(SetSize(*store, "s") == 1);
}

TEST_CASE("Importer dedups content across batches and re-imports idempotently", "[prompts]") {
  test::TempDir dir;
  const std::string file = dir.path() + "/p.txt";
  std::string data;
  for (int i = 0; i < 25; ++i) data += "prompt " + std::to_string(i % 10) + "\n";
  test::WriteFile(file, data);
  auto store = OpenStore(dir.path() + "/c.db");
  ImportOptions opts;
  opts.set = "t";
  opts.text = true;
  opts.batch_size = 3;
  auto s1 = ImportPromptFile(*store, opts, file, nullptr);
  REQUIRE(s1.ok());
  CHECK(s1->imported == 10);
  CHECK(s1->duplicates == 15);
  auto s2 = ImportPromptFile(*store, opts, file, nullptr);
  REQUIRE(s2.ok());
  CHECK(s2->imported == 0);
  CHECK(s2->duplicates == 25);
  CHECK(SetSize(*store, "t") == 10);
}

TEST_CASE("Importer rejects over-long lines without buffering them", "[prompts]") {
  test::TempDir dir;
  const std::string file = dir.path() + "/p.jsonl";
  test::WriteFile(file, R"({"prompt":")" + std::string(5000, 'x') + "\"}\n" + R"({"prompt":"short"})" "\n");
  auto store = OpenStore(dir.path() + "/c.db");
  ImportOptions opts;
  opts.set = "s";
  opts.max_line_bytes = 1000;
  auto s = ImportPromptFile(*store, opts, file, nullptr);
  REQUIRE(s.ok());
  CHECK(s->rejected_by_reason.at("line_too_long") == 1);
  CHECK(s->imported == 1);
}

TEST_CASE("Importer reports a missing file as IOError and validates options", "[prompts]") {
  test::TempDir dir;
  auto store = OpenStore(dir.path() + "/c.db");
  ImportOptions opts;
  opts.set = "s";
  auto r = ImportPromptFile(*store, opts, dir.path() + "/nope.jsonl", nullptr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kIOError);
  CHECK_THAT(r.status().message(), Catch::Contains("nope.jsonl"));
  opts.set = "";
  CHECK(ImportPromptFile(*store, opts, dir.path() + "/nope.jsonl", nullptr).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("ImportSummary JSON carries counts and reasons", "[prompts]") {
  ImportSummary a;
  a.files = 1;
  a.imported = 2;
  a.rejected = 1;
  a.rejected_by_reason["invalid_json"] = 1;
  ImportSummary b = a;
  b.Add(a);
  CHECK(b.ToJson("s") ==
        R"({"set":"s","files":2,"lines":0,"blank":0,"imported":4,"duplicates":0,"rejected":2,)"
        R"("rejected_by_reason":{"invalid_json":2},"aborted":false})");
}

TEST_CASE("Importer keeps file order across parser chunks and transactions", "[prompts]") {
  test::TempDir dir;
  const std::string file = dir.path() + "/p.jsonl";
  std::string data;
  int expect_imported = 0, expect_dups = 0;
  for (int i = 1; i <= 3000; ++i) {  // more lines than several parser chunks (1024 lines)
    if (i == 1500) {
      data += "  \n";
    } else if (i % 100 == 0) {
      data += R"({"prompt":"prompt )" + std::to_string(i - 50) + "\"}\n";  // same content as line i-50
      ++expect_dups;
    } else {
      data += R"({"prompt":"prompt )" + std::to_string(i) + "\"}\n";
      ++expect_imported;
    }
  }
  test::WriteFile(file, data);
  auto store = OpenStore(dir.path() + "/c.db");
  ImportOptions opts;
  opts.set = "s";
  opts.batch_size = 700;  // transactions end mid-chunk
  auto sum = ImportPromptFile(*store, opts, file, nullptr);
  REQUIRE(sum.ok());
  CHECK(sum->lines == 3000);
  CHECK(sum->blank == 1);
  CHECK(sum->imported == expect_imported);
  CHECK(sum->duplicates == expect_dups);
  CHECK(sum->rejected == 0);
  // Row ids follow the file: the source line numbers increase with the id.
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open((dir.path() + "/c.db").c_str(), &h) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, "SELECT source FROM prompts ORDER BY id", -1, &st, nullptr) == SQLITE_OK);
  std::int64_t prev = 0, rows = 0;
  bool ordered = true;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const std::string src = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const std::int64_t line = std::stoll(src.substr(src.rfind(':') + 1));
    ordered = ordered && line > prev;
    prev = line;
    ++rows;
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  CHECK(ordered);
  CHECK(rows == expect_imported);
  CHECK(prev == 2999);
}

TEST_CASE("Importer --strict rolls back a file that fails after several parser chunks", "[prompts]") {
  test::TempDir dir;
  const std::string file = dir.path() + "/p.jsonl";
  std::string data;
  for (int i = 1; i <= 3000; ++i)
    data += i == 2500 ? std::string(R"({"prompt":7})") + "\n" : R"({"prompt":"p )" + std::to_string(i) + "\"}\n";
  test::WriteFile(file, data);
  auto store = OpenStore(dir.path() + "/c.db");
  ImportOptions opts;
  opts.set = "s";
  opts.strict = true;
  opts.batch_size = 700;
  test::CaptureLogSink log;
  auto sum = ImportPromptFile(*store, opts, file, &log);
  REQUIRE(sum.ok());
  CHECK(sum->aborted);
  CHECK(sum->rejected == 1);
  CHECK(sum->imported == 0);
  CHECK(sum->lines == 2500);
  CHECK(SetSize(*store, "s") == 0);
  CHECK_THAT(log.Text(), Catch::Contains(file + ":2500: prompt: must be a string"));
}
