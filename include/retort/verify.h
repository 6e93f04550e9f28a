// Verification of harvested answers (--verify math|exact|exec:CMD|json-schema[:FILE]): pass rates and rejection counts.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "retort/exporter.h"
#include "retort/log.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// What a verifier found over a run's stored responses (every response, before the export's
// filters). The run's prompt set is the one prompt set the figures are about.
struct VerifyReport {
  std::string method;         // "math", "exact", "exec", "json-schema"
  std::string prompt_set;
  std::int64_t prompts = 0;   // prompts with at least one stored response
  std::int64_t records = 0;   // stored responses checked
  std::int64_t verified = 0;
  double pass_at_1 = 0;       // mean over prompts of (verified samples / samples); 0 when no prompt
  double pass_at_n = 0;       // share of prompts with at least one verified sample
  // Rejection reason -> records; every reason is present (0 when none): no_reference, no_answer,
  // wrong_answer, command_failed, timed_out, not_json, schema_violation.
  std::map<std::string, std::int64_t> rejected;
  // The first few schema violations as "prompt_key#sample: /path: message" (json-schema only).
  std::vector<std::string> schema_errors;

  // {"method":…,"prompt_set":…,"prompts":…,"records":…,"verified":…,"pass@1":…,"pass@n":…,
  //  "rejected":{…}} in this key order (plus "schema_errors" when there are any).
  std::string ToJson() const;
  // "verify math: 40 records of 10 prompts, 25 verified, pass@1 0.625, pass@n 0.9; rejected: ..."
  std::string ToLine() const;
};

// Checks every stored response of run `opts.run` with `opts.verify` (and opts.answer_field,
// verify_timeout, verify_jobs) without exporting anything (retort status --verify).
// Errors: InvalidArgument (options), NotFound (run), Store errors. `log` may be nullptr.
Result<VerifyReport> VerifyRun(Store& store, const ExportOptions& opts, LogSink* log);

}  // namespace retort
