// PromptLineParser: turns ONE line of a prompt file (JSONL or plain text) into a Prompt or a typed error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "retort/corpus.h"
#include "store/utf8.h"

namespace retort {

// Why a line was rejected. Frozen: the names appear in `retort import --json` summaries.
enum class LineErrorReason {
  kInvalidJson,     // not parseable as JSON
  kInvalidUtf8,     // the raw bytes are not valid UTF-8
  kNotAnObject,     // a JSONL line whose value is not an object
  kWrongType,       // a known field has the wrong JSON type
  kMissingContent,  // neither "messages" nor "prompt" (or a message without role/content)
  kEmptyContent,    // an empty prompt, message content, system text, id or messages array
  kUnknownRole,     // a message role other than system/user/assistant
  kUnknownField,    // a field retort does not know (never silently ignored)
  kAmbiguousForm,   // both "messages" and "prompt"/"system" on one line
  kRoleOrder,       // system not first, or the last message is not a user turn
  kIdConflict,      // the same id was already imported with different content
  kLineTooLong,     // longer than ImportOptions::max_line_bytes
  kMissingColumn,   // --template/--id-field names a column the row does not have
  kInvalidCsv,      // a CSV record that is not RFC 4180 (stray quote, unterminated field, field count)
  kUnsupportedRequest,  // an OpenAI batch line for another endpoint or method than POST /v1/chat/completions
};
// "invalid_json", "invalid_utf8", ... (lower_snake_case of the enumerator).
const char* LineErrorReasonName(LineErrorReason r);

// A rejected line: the reason code, the offending field ("line" for whole-line problems,
// "messages[1].role" for nested ones) and a human-readable message.
struct LineError {
  LineErrorReason reason = LineErrorReason::kInvalidJson;
  std::string field;
  std::string message;
};

// What an OpenAI batch request line asked for beyond its messages (see batch_request_line.h).
struct BatchLineInfo {
  std::string model;  // body.model, "" when absent (kept in the prompt's metadata)
  // Generation parameters kept in the metadata: (name, canonical JSON value), in name order.
  std::vector<std::pair<std::string, std::string>> kept;
  // body fields retort cannot keep (no run parameter holds them), in name order: reported.
  std::vector<std::string> not_kept;
};

// The outcome of parsing one line. Exactly one of: `blank` (whitespace only, not a prompt),
// `ok` (then `prompt` is filled: key, content_hash, messages, metadata_json), or an `error`.
// `batch` is set for an accepted OpenAI batch request line.
struct ParsedLine {
  bool ok = false;
  bool blank = false;
  Prompt prompt;
  LineError error;
  std::optional<BatchLineInfo> batch;
};

// A rejected line with the given reason, field and message.
ParsedLine LineFailure(LineErrorReason reason, std::string field, std::string message);

// An accepted prompt from already-validated parts: checks that a system message comes only
// first and the last message is a user turn (else kRoleOrder), then fills messages_json,
// content_hash and the key ("h:" + 16 hex digits of the hash when `id` is empty).
// REQUIRES: messages not empty; metadata_json "" or a canonical JSON object.
ParsedLine FinishPrompt(std::vector<Message> messages, std::string id, std::string metadata_json);

// The checks every JSON line passes first: a blank line (returned with blank set), invalid
// UTF-8, nesting deeper than kMaxJsonDepth. Returns nullopt when the line passed them.
std::optional<ParsedLine> PrecheckJsonLine(std::string_view line);

// Parses one JSONL prompt line (without its line terminator; a trailing '\r' is ignored).
// Accepted shapes: {"id"?, "messages":[{"role","content"}...], "metadata"?} and
// {"id"?, "prompt", "system"?, "metadata"?}. `id` must be a non-empty string; without it
// the key is "h:" + the first 16 hex digits of the content hash. `metadata` must be an
// object; it is stored as canonical (sorted-key) JSON. Pure function; thread-safe.
// Well-formed lines of the common shapes take a DOM-free fast path (SimpleLineScanner); every
// other line, and every error, goes through ParsePromptJsonLineFull.
ParsedLine ParsePromptJsonLine(std::string_view line);
// The same contract, always through the nlohmann DOM: the reference the fast path must agree
// with byte for byte (tests compare the two).
ParsedLine ParsePromptJsonLineFull(std::string_view line);

// Parses one line of a plain-text prompt file (--text): the whole line is one user message.
ParsedLine ParsePromptTextLine(std::string_view line);

// One line of an imported file exactly as the importer (retort import, POST /v1/prompt-sets)
// treats it: a line LineReader cut off (`too_long`) is an error kLineTooLong ("longer than
// <max_line_bytes> bytes"); a UTF-8 BOM is dropped from the first line; then
// ParsePromptTextLine (`text`) or ParsePromptJsonLine. Pure function; thread-safe.
ParsedLine ParseImportLine(std::string_view line, bool first_line, bool too_long, std::int64_t max_line_bytes,
                           bool text);

}  // namespace retort
