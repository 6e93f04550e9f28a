#include <catch2/catch.hpp>

#include "export/row_prefetcher.h"
#include "store/corpus_json.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

using namespace retort;

namespace {
// Reasoning absent, empty and present; metadata absent and present; logprobs on some rows.
std::optional<ResponseRecord> Answers(const Prompt& p, int sample) {
  const int i = std::stoi(p.key.substr(1));
  std::optional<std::string> reasoning;
  if (i % 3 == 1) reasoning = "";
  if (i % 3 == 2) reasoning = "think " + std::to_string(i);
  ResponseRecord r = test::Answer("answer " + std::to_string(i) + "/" + std::to_string(sample), reasoning,
                                  i % 5 ? "stop" : "length");
  if (i % 4 == 0) r.logprobs = {TokenLogprob{"answer", -0.5, {{"reply", -1.25}}}};
  return r;
}
}  // namespace

TEST_CASE("RowPrefetcher yields every stored row in order with the columns of ForEachResponse", "[export]") {
  test::TempDir dir;
  auto s = Store::Open(StoreOptions{dir.path() + "/c.db"});
  REQUIRE(s.ok());
  Store& store = **s;
  std::vector<Prompt> ps;
  for (int i = 0; i < 1300; ++i)  // 2600 rows: more than two store pages and prefetcher pages
    ps.push_back(test::MakePrompt("k" + std::to_string(i), {{"system", "S"}, {"user", "q\n\"" + std::to_string(i)}},
                                  i % 2 ? R"({"n":1})" : ""));
  const std::int64_t run_id = test::PopulateRun(store, ps, 2, Answers);
  std::vector<ExportRow> want;
  REQUIRE(store.ForEachResponse(run_id, [&](const ExportRow& r) {
    want.push_back(r);
    return Status::OK();
  }).ok());
  REQUIRE(want.size() == 2600);
  for (bool with_logprobs : {true, false}) {
    RowPrefetcher rows(store, run_id, with_logprobs);
    size_t n = 0;
    Status st = rows.ForEach([&](const ExportRowView& v) {
      REQUIRE(n < want.size());
      const ExportRow& w = want[n++];
      CHECK(v.sample == w.sample);
      CHECK(v.prompt_key == w.prompt.key);
      CHECK(v.messages_json == MessagesToJson(w.prompt.messages));
      CHECK(v.metadata_json == w.prompt.metadata_json);
      CHECK(v.content == w.response.content);
      CHECK(v.reasoning.has_value() == w.response.reasoning.has_value());
      if (v.reasoning && w.response.reasoning) CHECK(*v.reasoning == *w.response.reasoning);
      CHECK(v.finish_reason == w.response.finish_reason);
      REQUIRE(v.logprobs != nullptr);
      CHECK(v.logprobs->size() == (with_logprobs ? w.response.logprobs.size() : 0));
      return Status::OK();
    });
    REQUIRE(st.ok());
    CHECK(n == want.size());
  }
}

TEST_CASE("RowPrefetcher stops at the consumer's error and is destroyed mid-run", "[export]") {
  test::TempDir dir;
  auto s = Store::Open(StoreOptions{dir.path() + "/c.db"});
  REQUIRE(s.ok());
  std::vector<Prompt> ps;
  for (int i = 0; i < 3000; ++i) ps.push_back(test::MakePrompt("k" + std::to_string(i), {{"user", "q" + std::to_string(i)}}, ""));
  const std::int64_t run_id = test::PopulateRun(**s, ps, 1, Answers);
  RowPrefetcher rows(**s, run_id, false);
  int n = 0;
  Status st = rows.ForEach([&](const ExportRowView&) {
    return ++n == 1500 ? Status::IOError("disk full") : Status::OK();
  });
  CHECK(st.code() == StatusCode::kIOError);
  CHECK(n == 1500);
}
