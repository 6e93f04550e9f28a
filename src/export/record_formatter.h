// RecordFormatter: renders one ExportRow as one JSONL record in the chosen training format.
#pragma once

#include <string>

#include "export/message_literals.h"
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
  // (e.g. sharegpt/alpaca need alternating user/assistant turns). `messages` holds the
  // prompt's messages (row.messages_json, parsed); row.messages_json itself is not read.
  bool Format(const ExportRowView& row, const MessageLiterals& messages, std::string* out, std::string* why) const;
  // The same for a decoded row (tests, tools): exactly the bytes of the view path.
  bool Format(const ExportRow& row, std::string* out, std::string* why) const;

 private:
  ExportFormat format_;
  bool minimal_;
  ReasoningMode reasoning_;
  bool logprobs_;
};

}  // namespace retort
