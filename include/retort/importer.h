// Importer: streams a prompt file (JSONL or plain text, or stdin) into a prompt set of the Store.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "retort/log.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

struct ImportOptions {
  // Name of the prompt set; created on first use. Required.
  std::string set;
  // Plain text input (--text): every non-blank line is one user prompt. Default: JSONL (prompt
  // lines, or OpenAI batch requests when a file's first non-blank line has custom_id and body).
  bool text = false;
  // --template: rows of a JSONL file (one object per line) or of a CSV file (name ending in
  // ".csv", case-insensitive; RFC 4180 with a header row) become user prompts through this
  // template: "{column}" is replaced by the row's value, "{{" and "}}" are literal braces.
  // Empty = no template (a CSV file is then refused).
  std::string template_text;
  // --system-template: a system message rendered the same way. Only with template_text.
  std::string system_template;
  // --id-field: the column holding the prompt id. Empty = key from the content hash. Only
  // with template_text. Columns used by neither template nor as the id are kept as metadata.
  std::string id_field;
  // --strict: the first bad line (including an id conflict) aborts the file and nothing from it
  // is stored (one transaction per file). Default: bad lines are skipped and counted.
  bool strict = false;
  // Prompts per transaction in the default (non-strict) mode. Bigger transactions import
  // faster (each one rewrites the random-access index pages it touches) but hold the database
  // write lock longer. Memory does not depend on it: prompts reach the Store in chunks of at
  // most 1024 lines, parsed ahead by one thread (a few chunks x line size, never file size).
  int batch_size = 100000;
  // Lines longer than this are rejected (line_too_long) without being held in memory.
  std::int64_t max_line_bytes = 16 << 20;
  // At most this many rejected lines are logged one by one; later ones are only counted
  // (a final line says how many were not shown).
  std::int64_t max_logged_errors = 1000;
  // --near-dup T: report each prompt whose text (message contents, word 3-gram shingles) has an
  // estimated Jaccard similarity >= T (0 < T <= 1) with a prompt already in the set or imported
  // before it (MinHash-LSH, as export --near-dup). 0 = off.
  double near_dup = 0;
  // --skip-near-dup: do not store those prompts (counted in near_duplicates). Needs near_dup.
  bool skip_near_dup = false;

  // InvalidArgument naming the field when a value is out of range or the templates do not parse.
  Status Validate() const;
};

// Counts of one import (one file, or several added together with Add()).
struct ImportSummary {
  std::int64_t files = 0;
  std::int64_t lines = 0;        // lines read, blank ones included
  std::int64_t blank = 0;        // whitespace-only lines (skipped, not an error)
  std::int64_t imported = 0;     // prompts newly stored
  std::int64_t duplicates = 0;   // content already in the set (from this file or before): stored once
  std::int64_t rejected = 0;     // bad lines (in --strict mode: the aborting line)
  std::map<std::string, std::int64_t> rejected_by_reason;  // "invalid_json" -> n, ...
  bool aborted = false;          // --strict stopped at a bad line; nothing of that file was stored
  // OpenAI batch request files: lines read as batch requests, the body.model values seen
  // (model -> lines; kept in metadata, the harvest's --model decides who answers), and the
  // body fields that were not kept (field -> lines; each line is also logged as a warning).
  std::int64_t batch_requests = 0;
  std::map<std::string, std::int64_t> batch_models;
  std::map<std::string, std::int64_t> params_not_kept;
  // --near-dup: whether it was on, prompts found near-duplicate, and how many were skipped.
  bool near_dup_checked = false;
  std::int64_t near_duplicates = 0;
  std::int64_t near_dup_skipped = 0;

  void Add(const ImportSummary& other);
  // "imported 3 prompts into set 's' from 1 file (1 duplicate, 2 rejected: 1 invalid_json, 1 unknown_role)"
  std::string ToLine(const std::string& set) const;
  // {"set":..,"files":..,"lines":..,"blank":..,"imported":..,"duplicates":..,"rejected":..,
  //  "rejected_by_reason":{..},"aborted":..} on one line; after them, only when batch requests
  //  were read: "batch_requests":n,"batch_models":{..},"params_not_kept":{..}; then, only with
  //  --near-dup: "near_duplicates":n,"near_dup_skipped":n.
  std::string ToJson(const std::string& set) const;
};

// Imports `file` ("-" = standard input) into the prompt set `opts.set`. Each rejected line is
// logged to `log` (kError) as "<file>:<line>: <field>: <reason message>" (stdin is "<stdin>").
// For OpenAI batch request files each body field that is not kept is logged (kWarn) as
// "<file>:<line>: body.<field>: not kept (...)", and at the end of the file (kInfo/kWarn) the
// body.model values and the kept parameters with the harvest flags that would match them.
// Rejected lines are not an error status: check summary.rejected / summary.aborted.
// Errors: InvalidArgument (options; a CSV file without a template or with a bad header row,
// naming file and line), IOError (cannot open/read the file, database write failed),
// plus whatever the Store returns. `log` may be nullptr. Not thread-safe per Store transaction.
Result<ImportSummary> ImportPromptFile(Store& store, const ImportOptions& opts, const std::string& file,
                                       LogSink* log);

}  // namespace retort
