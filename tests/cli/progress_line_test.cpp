#include "cli/progress_line.h"

#include <catch2/catch.hpp>

namespace retort::cli {
namespace {

HarvestProgress Sample() {
  HarvestProgress p;
  p.total_jobs = 400;
  p.done = 120;
  p.failed = 2;
  p.requests_per_s = 3.14;
  p.tokens_per_s = 410.4;
  p.eta_s = 90;
  p.retries = 5;
  p.rate_limited = 1;
  p.errors = 6;
  p.in_flight = 4;
  p.prompt_tokens = 12'345;
  p.completion_tokens = 2'500'000;
  p.cost = 0.012345;
  return p;
}

TEST_CASE("ProgressLine shows percent done and the cost so far when prices are given", "[cli]") {
  CHECK(ProgressLine(Sample(), true) ==
        "120/400 done (30.0%)  3.1 req/s  410 tok/s  ETA 1m30s  cost 0.0123  retries 5  429s 1  errors 6  failed 2  "
        "in flight 4");
}

TEST_CASE("ProgressLine shows the tokens instead of a cost without prices", "[cli]") {
  CHECK(ProgressLine(Sample(), false) ==
        "120/400 done (30.0%)  3.1 req/s  410 tok/s  ETA 1m30s  tokens 12.3k in / 2.5M out  retries 5  429s 1  "
        "errors 6  failed 2  in flight 4");
}

TEST_CASE("ProgressLine rounds the percentage down and omits it without jobs", "[cli]") {
  HarvestProgress p;
  p.total_jobs = 3;
  p.done = 2;
  CHECK(ProgressLine(p, false).rfind("2/3 done (66.6%)  ", 0) == 0);
  p.done = 2999;
  p.total_jobs = 3000;
  CHECK(ProgressLine(p, false).rfind("2999/3000 done (99.9%)  ", 0) == 0);  // never 100.0% before the end
  p.done = 3000;
  CHECK(ProgressLine(p, false).rfind("3000/3000 done (100.0%)  ", 0) == 0);
  p = HarvestProgress{};
  CHECK(ProgressLine(p, true).rfind("0/0 done  0.0 req/s  0 tok/s  ETA ?  cost 0.0000  ", 0) == 0);
}

TEST_CASE("FormatCount and FormatDuration keep the line short", "[cli]") {
  CHECK(FormatCount(0) == "0");
  CHECK(FormatCount(999) == "999");
  CHECK(FormatCount(1000) == "1.0k");
  CHECK(FormatCount(12'345) == "12.3k");
  CHECK(FormatCount(999'949) == "999.9k");
  CHECK(FormatCount(999'950) == "1.0M");
  CHECK(FormatCount(2'500'000) == "2.5M");
  CHECK(FormatCount(7'100'000'000) == "7.1G");
  CHECK(FormatDuration(-1) == "?");
  CHECK(FormatDuration(0) == "0s");
  CHECK(FormatDuration(59.4) == "59s");
  CHECK(FormatDuration(65) == "1m05s");
  CHECK(FormatDuration(7380) == "2h03m");
}

}  // namespace
}  // namespace retort::cli
