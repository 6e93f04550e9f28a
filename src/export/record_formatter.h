// RecordFormatter: renders one ExportRow as one JSONL record in the chosen training format.
#pragma once

#include <string>

#include "retort/exporter.h"
#include "retort/store.h"

namespace retort {

// Stateless after construction; safe to share read-only between threads.
// Every record of one formatter has the same keys and JSON types: `metadata` is always an
// object ({} when absent), a reasoning field is always a string ("" when absent), `logprobs`
// always an array.
class RecordFormatter {
 public:
  // REQUIRES: opts.Validate().ok().
  explicit RecordFormatter(const ExportOptions& opts);

  // Appends the record for `row` plus '\n' to `*out` and returns true; or returns false
  // (appending nothing) and sets *why when the prompt cannot be expressed in this format
  // (e.g. sharegpt/alpaca need alternating user/assistant turns).
  bool Format(const ExportRow& row, std::string* out, std::string* why) const;

 private:
  std::string Answer(const ExportRow& row) const;  // content, with inline reasoning if asked

  ExportFormat format_;
  bool minimal_;
  ReasoningMode reasoning_;
  bool logprobs_;
};

}  // namespace retort
