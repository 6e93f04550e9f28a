// retort export: write a run's responses as sharded JSONL training data with a manifest and card.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/cli_support.h"
#include "retort/exporter.h"
#include "retort/store.h"

namespace retort::cli {

namespace {

struct ExportFlags {
  std::string db;
  ExportOptions opts;
  std::string format = "messages";
  std::string fields = "full";
  std::string reasoning;
  std::string compress = "none";
  std::string split;
  std::string near_dup;  // parsed here: "0" is refused rather than read as "off"
  std::string keep = "all";
  bool json = false;
};

int Usage(const Status& s) {
  std::fprintf(stderr, "retort: error: %s\n", s.message().c_str());
  return 2;
}

int RunExportCmd(ExportFlags& f) {
  StderrLogSink log(LogLevel::kInfo);
  ExportOptions& o = f.opts;
  Result<ExportFormat> fmt = ParseExportFormat(f.format);
  if (!fmt.ok()) return Usage(fmt.status());
  o.format = *fmt;
  if (f.fields != "full" && f.fields != "minimal")
    return Usage(Status::InvalidArgument("--fields: expected full or minimal, got '" + f.fields + "'"));
  o.fields = f.fields == "minimal" ? ExportFields::kMinimal : ExportFields::kFull;
  if (!f.reasoning.empty()) {
    Result<ReasoningMode> r = ParseReasoningMode(f.reasoning);
    if (!r.ok()) return Usage(r.status());
    o.reasoning = *r;
  }
  Result<Compression> c = ParseCompression(f.compress);
  if (!c.ok()) return Usage(c.status());
  o.compress = *c;
  if (!f.split.empty()) {
    Result<std::vector<SplitSpec>> sp = ParseSplits(f.split);
    if (!sp.ok()) return Usage(sp.status());
    o.splits = *sp;
  }
  if (!f.near_dup.empty()) {
    char* end = nullptr;
    o.near_dup = std::strtod(f.near_dup.c_str(), &end);
    if (end != f.near_dup.c_str() + f.near_dup.size() || !(o.near_dup > 0 && o.near_dup <= 1))
      return Usage(Status::InvalidArgument("--near-dup: the similarity threshold must be a number in (0, 1], got '" +
                                           f.near_dup + "'"));
  }
  if (f.keep != "all" && f.keep != "verified")
    return Usage(Status::InvalidArgument("--keep: expected verified or all, got '" + f.keep + "'"));
  o.keep_verified = f.keep == "verified";
  if (Status v = o.Validate(); !v.ok()) return Usage(v);
  if (::access(f.db.c_str(), F_OK) != 0) {
    std::fprintf(stderr, "retort: error: --db: no database at '%s'\n", f.db.c_str());
    return 1;
  }
  StoreOptions so;
  so.path = f.db;
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "retort: error: %s\n", store.status().message().c_str());
    return 1;
  }
  Result<ExportSummary> sum = RunExport(**store, o, &log);
  if (!sum.ok()) {
    std::fprintf(stderr, "retort: error: export failed: %s\n", sum.status().message().c_str());
    return 1;
  }
  if (f.json)
    std::cout << sum->manifest_json;
  else
    std::cout << sum->ToLine(o.out_dir, o.run) << std::endl;
  if (!f.json && !sum->verify_line.empty()) std::cout << sum->verify_line << std::endl;
  return 0;
}

}  // namespace

void AddExportCommand(CLI::App& app, int& rc) {
  auto f = std::make_shared<ExportFlags>();
  ExportOptions& o = f->opts;
  auto* sub = app.add_subcommand("export", "Export a run's responses as sharded JSONL training data");
  sub->add_option("--db", f->db, "Corpus database (SQLite file)")->required();
  sub->add_option("--run", o.run, "Run to export")->required();
  sub->add_option("--out", o.out_dir, "Output directory (replaced if it is a previous export)")->required();
  sub->add_option("--format", f->format, "messages | prompt-completion | sharegpt | alpaca")->capture_default_str();
  sub->add_option("--fields", f->fields, "full (id, sample, metadata, ...) | minimal (only what the trainer reads)")
      ->capture_default_str();
  sub->add_option("--reasoning", f->reasoning,
                  "Teacher reasoning: field (separate field; default) | inline (<think>...</think> before the "
                  "answer) | drop (default with --fields minimal)");
  sub->add_flag("--with-logprobs", o.with_logprobs,
                "Add per-token logprobs to each record (the run must have been harvested with --logprobs K)");
  sub->add_option("--shard-records", o.shard_records, "Max records per shard (0 = no cap)")->capture_default_str();
  sub->add_option("--shard-bytes", o.shard_bytes, "Max uncompressed bytes per shard (0 = no cap)")
      ->capture_default_str();
  sub->add_option("--compress", f->compress, "none | gzip | zstd")->capture_default_str();
  sub->add_option("--split", f->split, "Splits by prompt, e.g. train=0.98,validation=0.02 (default: all train)");
  sub->add_option("--seed", o.seed, "Seed of the split assignment")->capture_default_str();
  sub->add_flag("--keep-truncated", o.keep_truncated, "Keep responses cut off by the token limit");
  sub->add_flag("--keep-duplicates", o.keep_duplicates, "Keep identical prompt+response pairs");
  sub->add_option("--min-chars", o.min_chars, "Drop answers shorter than N characters (0 = off)")
      ->capture_default_str();
  sub->add_option("--max-chars", o.max_chars, "Drop answers longer than N characters (0 = off)")
      ->capture_default_str();
  sub->add_option("--drop-pattern", o.drop_patterns,
                  "Drop answers in which this regex is found (POSIX extended syntax, RE2 engine: no "
                  "backreferences, counts up to 1000; repeatable, at most 64); the whole text is searched, "
                  "NUL characters included")
      ->take_all();
  sub->add_flag("--drop-pattern-reasoning", o.drop_pattern_reasoning,
                "Also drop a record whose reasoning matches a --drop-pattern");
  sub->add_option("--license", o.license,
                  "Licence for the dataset card: a Hugging Face Hub licence id in any case (MIT, Apache-2.0, "
                  "cc-by-4.0, ...) becomes `license: <id>`; anything else `license: other` with the text in the card");
  sub->add_option("--license-name", o.license_name,
                  "The card's license_name for a licence outside the Hub's list (e.g. llama3-community)");
  sub->add_option("--license-link", o.license_link,
                  "The card's license_link for a licence outside the Hub's list (a URL or a file such as LICENSE.md)");
  sub->add_option("--near-dup", f->near_dup,
                  "Drop records whose text has an estimated Jaccard similarity >= T (0 < T <= 1, e.g. 0.8) with a "
                  "record kept before (MinHash-LSH over word 3-grams; the first by prompt id is kept)");
  sub->add_option("--near-dup-on", o.near_dup_on,
                  "Text compared by --near-dup: prompt | answer | both (default: both)");
  sub->add_option("--decontaminate", o.decontaminate,
                  "Drop records whose prompt shares a --decontaminate-ngram word sequence with a prompt of this "
                  "prompt set (e.g. an evaluation set imported with retort import); repeatable")
      ->take_all();
  sub->add_option("--decontaminate-ngram", o.decontaminate_ngram, "Words per n-gram of --decontaminate")
      ->capture_default_str();
  sub->add_option("--verify", o.verify,
                  "Verify each answer: math (final answer vs the reference: last \\boxed{}, else 'answer is ...', "
                  "else the last number) | exact (whitespace-normalised text) | exec:CMD (run CMD per record, record "
                  "JSON on stdin, exit 0 = pass; no shell) | json-schema[:FILE] (default: the run's --response-schema)");
  sub->add_option("--answer-field", o.answer_field,
                  "Metadata key of the reference answer (a dotted path reaches into objects)")
      ->capture_default_str();
  sub->add_option("--keep", f->keep, "verified: export only verified records (needs --verify) | all")
      ->capture_default_str();
  sub->add_option("--per-prompt", o.per_prompt,
                  "Keep at most K records per prompt, lowest sample index first (0 = all)")
      ->capture_default_str();
  sub->add_option("--verify-timeout", o.verify_timeout, "exec: seconds per record before it is killed")
      ->capture_default_str()
      ->type_name("SECONDS");
  sub->add_option("--verify-jobs", o.verify_jobs, "exec: commands run at once (0 = number of CPUs)")
      ->capture_default_str();
  sub->add_flag("--json", f->json, "Print the manifest instead of the one-line summary");
  sub->callback([f, &rc] { rc = RunExportCmd(*f); });
}

}  // namespace retort::cli
