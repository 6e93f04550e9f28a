// Store::BrowseResponses / GetResponse: keyset pages, filters, scan budget (issue #16).
#include <catch2/catch.hpp>
#include <set>

#include "retort/store.h"
#include "test_support/corpus_fixture.h"
#include "test_support/temp_dir.h"

using namespace retort;

namespace {

struct Fixture {
  test::TempDir dir;
  std::unique_ptr<Store> store;
  std::int64_t run = 0;
  Fixture() {
    StoreOptions o;
    o.path = dir.path() + "/c.db";
    auto s = Store::Open(o);
    REQUIRE(s.ok());
    store = std::move(*s);
    std::vector<Prompt> prompts;
    for (int i = 0; i < 100; ++i) {
      std::string text = "question " + std::to_string(i);
      if (i == 42) text = "say \"Needle\" once";
      prompts.push_back(test::MakePrompt("k" + std::to_string(i), {Message{"user", text}}));
    }
    run = test::PopulateRun(*store, prompts, 1, [](const Prompt& p, int) -> std::optional<ResponseRecord> {
      const int i = std::stoi(p.key.substr(1));
      if (i % 10 == 9) return std::nullopt;  // 10 failed jobs
      ResponseRecord r = test::Answer("answer to " + p.key + (i == 7 ? " HAYSTACK-pin" : ""), std::nullopt,
                                      i % 4 == 0 ? "length" : "stop");
      r.raw_body = "{\"raw\":\"" + p.key + "\"}";
      return r;
    });
  }
};

}  // namespace

TEST_CASE("BrowseResponses pages through every answer once, in job id order, by keyset", "[store][browse]") {
  Fixture f;
  BrowseQuery q;
  q.limit = 7;
  std::vector<std::int64_t> ids;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = f.store->BrowseResponses(f.run, q);
    REQUIRE(page.ok());
    for (const BrowseRow& r : page->rows) ids.push_back(r.job_id);
    if (page->next_after == 0) break;
    CHECK(page->rows.size() == 7);
    q.after_job_id = page->next_after;
  }
  CHECK(ids.size() == 90);
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  CHECK(std::set<std::int64_t>(ids.begin(), ids.end()).size() == 90);
}

TEST_CASE("BrowseResponses filters by finish reason, text and failed state", "[store][browse]") {
  Fixture f;
  BrowseQuery q;
  q.limit = 100;
  q.finish_reason = "length";
  auto length = f.store->BrowseResponses(f.run, q);
  REQUIRE(length.ok());
  CHECK(length->rows.size() == 25);  // i % 4 == 0 of 0..99 (none of them ends in 9)
  for (const BrowseRow& r : length->rows) CHECK(r.finish_reason == "length");
  CHECK(length->next_after == 0);

  q = BrowseQuery{};
  q.text = "haystack-PIN";  // in an answer
  auto in_answer = f.store->BrowseResponses(f.run, q);
  REQUIRE(in_answer.ok());
  REQUIRE(in_answer->rows.size() == 1);
  CHECK(in_answer->rows[0].prompt_key == "k7");
  q.text = "say \"needle\"";  // in a prompt, quotes as typed
  auto in_prompt = f.store->BrowseResponses(f.run, q);
  REQUIRE(in_prompt.ok());
  REQUIRE(in_prompt->rows.size() == 1);
  CHECK(in_prompt->rows[0].prompt_key == "k42");

  q = BrowseQuery{};
  q.failed = true;
  q.limit = 100;
  auto failed = f.store->BrowseResponses(f.run, q);
  REQUIRE(failed.ok());
  CHECK(failed->rows.size() == 10);
  CHECK(failed->rows[0].error_status == 400);
  CHECK(failed->rows[0].prompt_key == "k9");
}

TEST_CASE("BrowseResponses stops at its scan budget with a cursor to go on from", "[store][browse]") {
  Fixture f;
  BrowseQuery q;
  q.text = "no such text";
  q.limit = 5;
  q.max_scanned = 30;
  auto page = f.store->BrowseResponses(f.run, q);
  REQUIRE(page.ok());
  CHECK(page->rows.empty());
  CHECK(page->scanned == 30);
  CHECK(page->next_after > 0);
  q.after_job_id = page->next_after;
  q.max_scanned = 1000;
  auto rest = f.store->BrowseResponses(f.run, q);
  REQUIRE(rest.ok());
  CHECK(rest->scanned == 60);
  CHECK(rest->next_after == 0);
  q.limit = 0;
  CHECK(f.store->BrowseResponses(f.run, q).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("GetResponse returns one answer with its raw body and NotFound for failed or foreign jobs", "[store][browse]") {
  Fixture f;
  auto page = f.store->BrowseResponses(f.run, BrowseQuery{});
  REQUIRE(page.ok());
  const BrowseRow& first = page->rows.at(0);
  std::string raw;
  auto r = f.store->GetResponse(f.run, first.job_id, &raw);
  REQUIRE(r.ok());
  CHECK(r->content == first.content);
  CHECK(raw == "{\"raw\":\"" + first.prompt_key + "\"}");
  BrowseQuery fq;
  fq.failed = true;
  auto failed = f.store->BrowseResponses(f.run, fq);
  REQUIRE(failed.ok());
  CHECK(f.store->GetResponse(f.run, failed->rows.at(0).job_id, &raw).status().code() == StatusCode::kNotFound);
  CHECK(f.store->GetResponse(f.run + 1, first.job_id, &raw).status().code() == StatusCode::kNotFound);
}
