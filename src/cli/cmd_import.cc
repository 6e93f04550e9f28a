// retort import: load prompt files (JSONL or plain text, or stdin) into a named prompt set.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/cli_support.h"
#include "retort/importer.h"
#include "retort/store.h"

namespace retort::cli {

namespace {

struct ImportFlags {
  std::string db;
  ImportOptions opts;
  bool json = false;
  int cache_mib = 32;  // with the content filter and queues: peak RSS ~62 MiB at 1M prompts
  std::vector<std::string> files;
  std::string near_dup;  // parsed here: "0" is refused rather than read as "off"
};

int RunImport(ImportFlags& f) {
  StderrLogSink log(LogLevel::kInfo);
  if (!f.near_dup.empty()) {
    char* end = nullptr;
    f.opts.near_dup = std::strtod(f.near_dup.c_str(), &end);
    if (end != f.near_dup.c_str() + f.near_dup.size() || !(f.opts.near_dup > 0 && f.opts.near_dup <= 1)) {
      std::fprintf(stderr, "retort: error: --near-dup: the similarity threshold must be a number in (0, 1], got '%s'\n",
                   f.near_dup.c_str());
      return 2;
    }
  }
  if (Status v = f.opts.Validate(); !v.ok()) {
    std::fprintf(stderr, "retort: error: %s\n", v.message().c_str());
    return 2;
  }
  int stdin_count = 0;
  for (const std::string& file : f.files) stdin_count += file == "-";
  if (stdin_count > 1) {
    std::fprintf(stderr, "retort: error: FILE: '-' (stdin) may be given only once\n");
    return 2;
  }
  StoreOptions so;
  so.path = f.db;
  so.cache_mib = f.cache_mib;
  so.background_checkpoints = true;
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "retort: error: %s\n", store.status().message().c_str());
    return 1;
  }
  ImportSummary total;
  int rc = 0;
  for (const std::string& file : f.files) {
    Result<ImportSummary> s = ImportPromptFile(**store, f.opts, file, &log);
    if (!s.ok()) {
      std::fprintf(stderr, "retort: error: %s\n", s.status().message().c_str());
      rc = 1;
      break;
    }
    total.Add(*s);
    if (s->aborted) break;  // --strict: stop at the first bad file
  }
  std::cout << (f.json ? total.ToJson(f.opts.set) : total.ToLine(f.opts.set)) << std::endl;
  if (total.rejected > 0 || total.aborted) rc = 1;
  return rc;
}

}  // namespace

void AddImportCommand(CLI::App& app, int& rc) {
  auto flags = std::make_shared<ImportFlags>();
  auto* sub = app.add_subcommand(
      "import",
      "Import prompts into a prompt set: prompt JSONL, OpenAI batch request JSONL (detected from the first line), "
      "plain text (--text), or JSONL/CSV rows through --template");
  sub->add_option("--db", flags->db, "Corpus database (SQLite file; created if missing)")->required();
  sub->add_option("--set", flags->opts.set, "Prompt set name (created on first use)")->required();
  sub->add_flag("--text", flags->opts.text, "Plain text input: one prompt per line");
  sub->add_option("--template", flags->opts.template_text,
                  "Make each row of a JSONL file (one object per line) or CSV file (*.csv, header row) a user "
                  "prompt: {column} is the row's value, {{ and }} are literal braces; e.g. 'Solve: {question}'");
  sub->add_option("--system-template", flags->opts.system_template,
                  "A system message from each row, like --template (needs --template)");
  sub->add_option("--id-field", flags->opts.id_field,
                  "Column holding the prompt id (needs --template; default: an id from the content hash). "
                  "Columns used neither in a template nor as the id are kept as metadata");
  sub->add_flag("--strict", flags->opts.strict,
                "Abort at the first bad line; nothing from that file is stored");
  sub->add_option("--near-dup", flags->near_dup,
                  "Report prompts whose text has an estimated Jaccard similarity >= T (0 < T <= 1, e.g. 0.9) with a "
                  "prompt already in the set or earlier in the input (MinHash-LSH over word 3-grams)");
  sub->add_flag("--skip-near-dup", flags->opts.skip_near_dup, "With --near-dup: do not import those prompts");
  sub->add_flag("--json", flags->json, "Print the summary as JSON");
  sub->add_option("--batch-size", flags->opts.batch_size, "Prompts per transaction")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--cache-mib", flags->cache_mib,
                  "SQLite page cache in MiB: bigger imports large sets faster at the cost of memory")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("FILE", flags->files, "Prompt files; '-' reads standard input")->required();
  sub->callback([flags, &rc] { rc = RunImport(*flags); });
}

}  // namespace retort::cli
