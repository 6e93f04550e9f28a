// Exporter: streams a run's stored responses into sharded JSONL training files with a manifest and card.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "retort/log.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

// Record layout of the shards (docs/formats.md has an example of each).
enum class ExportFormat {
  kMessages,          // "messages": OpenAI chat fine-tuning / TRL conversational
  kPromptCompletion,  // "prompt-completion": TRL conversational prompt-completion
  kShareGpt,          // "sharegpt": conversations with from/value
  kAlpaca,            // "alpaca": instruction/input/output (+system, history)
};
// "full" adds id, sample, metadata (and reasoning/logprobs fields); "minimal" writes only what
// the target trainer reads (for messages: exactly what OpenAI fine-tuning accepts).
enum class ExportFields { kFull, kMinimal };
// Where teacher reasoning goes: a separate field, inline "<think>\n…\n</think>\n\n" before the
// answer, or nowhere.
enum class ReasoningMode { kField, kInline, kDrop };
enum class Compression { kNone, kGzip, kZstd };

const char* ExportFormatName(ExportFormat f);  // "messages", "prompt-completion", "sharegpt", "alpaca"
const char* ReasoningModeName(ReasoningMode m);  // "field", "inline", "drop"
const char* CompressionName(Compression c);    // "none", "gzip", "zstd"
// InvalidArgument naming the accepted values.
Result<ExportFormat> ParseExportFormat(const std::string& s);
Result<ReasoningMode> ParseReasoningMode(const std::string& s);
Result<Compression> ParseCompression(const std::string& s);

// One named split and its share of the prompts.
struct SplitSpec {
  std::string name;
  double fraction = 1.0;
};
// Parses "train=0.98,validation=0.02". InvalidArgument unless names match ^\w+(\.\w+)*$, are
// unique, fractions are > 0 and sum to 1 (within 1e-6).
Result<std::vector<SplitSpec>> ParseSplits(const std::string& s);

struct ExportOptions {
  // Run to export (by name) and the output directory. Required.
  std::string run;
  std::string out_dir;
  ExportFormat format = ExportFormat::kMessages;
  ExportFields fields = ExportFields::kFull;
  // nullopt = kField, except with kMinimal where it is kDrop (minimal formats have no reasoning
  // field; the number of records whose reasoning was dropped is in the manifest).
  std::optional<ReasoningMode> reasoning;
  // Adds "logprobs": [{token, logprob, top:[{token, logprob}]}] to each record. Not with kMinimal.
  bool with_logprobs = false;
  // A shard is closed before it would exceed either cap (0 = no cap). Bytes are uncompressed
  // JSONL bytes; a single record larger than the cap gets a shard of its own.
  std::int64_t shard_records = 0;
  std::int64_t shard_bytes = 0;
  Compression compress = Compression::kNone;
  // Empty = everything in "train". Assignment is by hash of (seed, prompt key).
  std::vector<SplitSpec> splits;
  std::uint64_t seed = 0;
  // Filters (failed jobs are always dropped).
  bool keep_truncated = false;   // keep finish_reason "length"/"max_tokens"
  bool keep_duplicates = false;  // keep identical prompt+response pairs
  std::int64_t min_chars = 0;    // drop answers shorter than this many code points (0 = off)
  std::int64_t max_chars = 0;    // drop answers longer than this many code points (0 = off)
  std::vector<std::string> drop_patterns;  // POSIX extended regexes matched against the whole answer
  bool drop_pattern_reasoning = false;     // also match them against the reasoning
  // Licence: an id of the Hugging Face Hub's licence list, in any case ("MIT", "Apache-2.0"),
  // goes into the card's `license:` in the Hub's spelling ("mit", "apache-2.0"); any other text
  // makes it `license: other` with the text quoted in the card's prose. Empty = `license:
  // unknown` (or `other` when license_name or license_link is given).
  std::string license;
  // The card's `license_name` (a short name such as "llama3-community") and `license_link` (a URL
  // or a path such as "LICENSE.md") for a licence outside the Hub's list. Empty = not written.
  // Refused with a licence that is on the list.
  std::string license_name;
  std::string license_link;
  // --near-dup T: drop a record whose text has an estimated Jaccard similarity >= T (0 < T <= 1)
  // with a record kept before it (word 3-gram shingles, MinHash-LSH; docs/formats.md). The first
  // record of a cluster in (prompt key, sample) order is kept. 0 = off.
  double near_dup = 0;
  // --near-dup-on: "prompt", "answer" or "both" (prompt and answer text). Empty = "both". Only
  // with near_dup.
  std::string near_dup_on;
  // --decontaminate SET (repeatable): drop records whose prompt shares a word n-gram of
  // decontaminate_ngram words with a prompt of one of these prompt sets (e.g. an evaluation set).
  std::vector<std::string> decontaminate;
  int decontaminate_ngram = 13;
  // Verification of answers (rejection sampling; docs/formats.md §2.4). "" = off, else "math",
  // "exact", "exec:CMD" or "json-schema[:FILE]". Full-field records get "verified": true|false and
  // the manifest a "verify" object (pass@1, pass@n, rejections by reason).
  std::string verify;
  // Metadata key of the reference answer (math, exact; exec receives it as "reference"); a
  // dotted path ("gsm8k.answer") reaches into objects. A string or a number.
  std::string answer_field = "answer";
  bool keep_verified = false;    // --keep verified: drop records that were not verified
  std::int64_t per_prompt = 0;   // keep at most this many records per prompt, lowest samples first (0 = all)
  double verify_timeout = 10;    // exec: seconds one command may run before it is killed
  int verify_jobs = 0;           // exec: commands run at once (0 = number of CPUs)

  // InvalidArgument naming the flag (e.g. "--with-logprobs: not available with --fields minimal").
  Status Validate() const;
  // The effective reasoning mode (see `reasoning`).
  ReasoningMode EffectiveReasoning() const;
  // Canonical JSON of every option except out_dir (stored in the manifest and exports table).
  std::string ToJson() const;
};

struct ShardInfo {
  std::string file;                  // "data/train-00000-of-00002.jsonl"
  std::int64_t records = 0;
  std::int64_t bytes = 0;            // file size as written
  std::int64_t uncompressed_bytes = 0;
  std::string sha256;                // of the file bytes
};

struct SplitSummary {
  std::string name;
  std::int64_t records = 0;
  std::vector<ShardInfo> shards;
};

struct ExportSummary {
  std::int64_t export_id = 0;        // row in the exports table
  std::int64_t responses = 0;        // stored responses read
  std::int64_t exported = 0;         // records written
  std::map<std::string, std::int64_t> filtered;  // filter name -> records dropped (see docs/formats.md)
  std::vector<SplitSummary> splits;
  std::string manifest_json;         // as written to DIR/manifest.json
  std::string verify_line;           // with --verify: VerifyReport::ToLine() (retort/verify.h), else ""
  // "exported 95 of 100 responses of run 'r' to DIR (train 90, validation 5; filtered: 3 truncated, ...)"
  std::string ToLine(const std::string& out_dir, const std::string& run) const;
};

// Exports run `opts.run` to `opts.out_dir`: DIR/data/<split>-NNNNN-of-NNNNN.jsonl[.gz|.zst],
// DIR/manifest.json, DIR/README.md and (except for prompt-completion) DIR/dataset_info.json
// for LLaMA-Factory. Writes into DIR.tmp-<pid>-<n> (unique per export) and renames it over DIR at the
// end; an existing DIR is replaced only if it is a previous retort export (or empty).
// Streams rows: memory does not grow with the run. Two exports of the same data with the same
// options are byte-identical. The export is recorded with the Store (BeginExport/FinishExport).
// Errors: InvalidArgument (options; with_logprobs for a run harvested without logprobs), NotFound (run), FailedPrecondition (DIR is something
// else), IOError (file system), plus Store errors. `log` may be nullptr.
Result<ExportSummary> RunExport(Store& store, const ExportOptions& opts, LogSink* log);

}  // namespace retort
