// retort batch-file: the offline path of a harvest. `write` puts a run's pending jobs in an
// OpenAI batch input file (what `vllm run-batch` reads); `ingest` stores its output exactly once.
#include <cstdio>
#include <map>
#include <memory>

#include "cli/cli_support.h"
#include "cli/commands.h"
#include "retort/batch_file.h"
#include "retort/harvester.h"
#include "retort/store.h"

namespace retort::cli {

namespace {

// The harvest options that define a run (what it asks), accepted by `batch-file write` to
// create the run or check it against the stored one.
constexpr const char* kRunOptions[] = {"set",   "model", "max-tokens", "temperature", "top-p",      "seed",
                                       "stop",  "samples", "extra-body", "logprobs",  "split-think",
                                       "allow-model-change"};

struct BatchFileFlags {
  std::string db;
  std::string run;
  std::string out;
  std::string in;
  std::map<std::string, std::string> scalars;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, bool> flags;
};

std::unique_ptr<Store> OpenStore(const std::string& db, int* rc) {
  StoreOptions so;
  so.path = db;
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok()) {
    *rc = ReportError(store.status());
    return nullptr;
  }
  return std::move(*store);
}

int RunWrite(const BatchFileFlags& f) {
  int rc = 0;
  std::unique_ptr<Store> store = OpenStore(f.db, &rc);
  if (!store) return rc;
  const bool defines = (f.scalars.count("set") && !f.scalars.at("set").empty()) ||
                       (f.scalars.count("model") && !f.scalars.at("model").empty());
  RunSpec spec;
  bool allow_model_change = false;
  if (defines) {
    HarvestOptions o;
    o.run = f.run;
    for (const HarvestOptionSpec& s : HarvestOptionTable()) {
      Status st;
      if (auto it = f.scalars.find(s.name); it != f.scalars.end() && !it->second.empty()) st = s.apply(o, it->second);
      if (auto it = f.lists.find(s.name); it != f.lists.end())
        for (const std::string& v : it->second)
          if (st.ok()) st = s.apply(o, v);
      if (auto it = f.flags.find(s.name); it != f.flags.end() && it->second) st = s.apply(o, "true");
      if (!st.ok()) return ReportError(st);
    }
    if (o.set.empty()) return ReportError(Status::InvalidArgument("--set: the prompt set of a new run is required"));
    if (o.model.empty()) return ReportError(Status::InvalidArgument("--model: the teacher model is required"));
    spec = o.Spec();
    allow_model_change = o.allow_model_change;
  } else {
    Result<RunInfo> existing = store->GetRun(f.run);
    if (!existing.ok())
      return ReportError(existing.status().code() == StatusCode::kNotFound
                             ? Status::InvalidArgument("run '" + f.run +
                                                       "' does not exist: give --set and --model (and its generation "
                                                       "parameters) to create it")
                             : existing.status());
    spec = existing->spec;
  }
  // Creates the run, or checks the given definition against it, and adds jobs of new prompts.
  Result<RunInfo> run = store->CreateOrResumeRun(spec, allow_model_change);
  if (!run.ok()) return ReportError(run.status());
  Result<BatchFileWriteSummary> sum = WriteBatchFile(*store, f.run, f.out);
  if (!sum.ok()) return ReportError(sum.status());
  std::printf("run %s: %lld pending jobs written to %s (%lld bytes); answer it (e.g. `vllm run-batch -i %s -o "
              "out.jsonl --model %s`), then `retort batch-file ingest --db %s --run %s out.jsonl`\n",
              f.run.c_str(), static_cast<long long>(sum->written), f.out.c_str(), static_cast<long long>(sum->bytes),
              f.out.c_str(), run->spec.model.c_str(), f.db.c_str(), f.run.c_str());
  return 0;
}

int RunIngest(const BatchFileFlags& f) {
  int rc = 0;
  std::unique_ptr<Store> store = OpenStore(f.db, &rc);
  if (!store) return rc;
  StderrLogSink log(LogLevel::kInfo);
  Result<BatchIngestSummary> sum = IngestBatchFile(*store, f.run, f.in, &log);
  if (!sum.ok()) return ReportError(sum.status());
  Result<RunInfo> run = store->GetRun(f.run);
  Result<JobCounts> c = run.ok() ? store->CountJobs(run->id) : Result<JobCounts>(run.status());
  std::printf("%s: %lld lines: %lld stored, %lld already done (ignored), %lld duplicate (ignored), %lld unknown "
              "custom_id, %lld failed (4xx), %lld left pending (expired, cancelled, retryable), %lld malformed\n",
              f.in.c_str(), static_cast<long long>(sum->lines), static_cast<long long>(sum->stored),
              static_cast<long long>(sum->already_done), static_cast<long long>(sum->duplicate),
              static_cast<long long>(sum->unknown), static_cast<long long>(sum->failed),
              static_cast<long long>(sum->left_pending), static_cast<long long>(sum->malformed));
  if (c.ok())
    std::printf("run %s: %lld done, %lld failed, %lld pending\n", f.run.c_str(), static_cast<long long>(c->done),
                static_cast<long long>(c->failed), static_cast<long long>(c->pending + c->leased));
  return sum->unknown + sum->malformed + sum->duplicate > 0 ? 3 : 0;
}

}  // namespace

void AddBatchFileCommand(CLI::App& app, int& rc) {
  auto* cmd = app.add_subcommand(
      "batch-file", "Offline harvests: write a run's pending jobs as an OpenAI batch input file (vllm run-batch), "
                    "store its output exactly once");
  cmd->require_subcommand(1);
  auto f = std::make_shared<BatchFileFlags>();

  auto* w = cmd->add_subcommand("write", "Write the run's pending jobs as OpenAI batch input JSONL (custom_id = job key)");
  w->add_option("--db", f->db, "Corpus database")->required();
  w->add_option("--run", f->run, "Run name (created when --set and --model are given)")->required();
  w->add_option("--out", f->out, "Batch input file to write")->required();
  HarvestOptions defaults;
  for (const HarvestOptionSpec& spec : HarvestOptionTable()) {
    bool wanted = false;
    for (const char* n : kRunOptions) wanted |= spec.name == std::string(n);
    if (!wanted) continue;
    const std::string flag = std::string("--") + spec.name;
    switch (spec.kind) {
      case HarvestOptionSpec::Kind::kList: w->add_option(flag, f->lists[spec.name], spec.help); break;
      case HarvestOptionSpec::Kind::kBool: w->add_flag(flag, f->flags[spec.name], spec.help); break;
      case HarvestOptionSpec::Kind::kInt: w->add_option(flag, f->scalars[spec.name], spec.help)->type_name("INT"); break;
      case HarvestOptionSpec::Kind::kDouble:
        w->add_option(flag, f->scalars[spec.name], spec.help)->type_name("FLOAT");
        break;
      default: w->add_option(flag, f->scalars[spec.name], spec.help);
    }
  }
  w->callback([f, &rc] { rc = RunWrite(*f); });

  auto* in = cmd->add_subcommand("ingest", "Store a batch output file's answers against the run's jobs, exactly once");
  in->add_option("--db", f->db, "Corpus database")->required();
  in->add_option("--run", f->run, "Run name")->required();
  in->add_option("file", f->in, "Batch output JSONL (vllm run-batch -o, or the OpenAI Batch API's output file)")
      ->required();
  in->footer("Exit status: 0 every line stored or ignored as already done; 3 some lines had an unknown or duplicate "
             "custom_id or were malformed (reported, nothing stored twice); 1 error; 2 usage error.");
  in->callback([f, &rc] { rc = RunIngest(*f); });
}

}  // namespace retort::cli
