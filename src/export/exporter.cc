// Exporter: RowPrefetcher (reader thread) -> filter -> split -> format -> shards (writer threads), manifest, card, rename.
#include "retort/exporter.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "export/answer_verifier.h"
#include "export/dataset_info.h"
#include "export/export_filter.h"
#include "export/manifest.h"
#include "export/record_formatter.h"
#include "export/row_prefetcher.h"
#include "export/message_literals.h"
#include "export/shard_writer.h"
#include "export/split_assigner.h"
#include "export/text_filters.h"

namespace retort {

namespace fs = std::filesystem;

inline constexpr const char* kFilterFailedJobs = "failed_jobs";          // jobs that never got a response
inline constexpr const char* kFilterUnrepresentable = "unrepresentable";  // prompt shape the format cannot hold

std::string ExportSummary::ToLine(const std::string& out_dir, const std::string& run) const {
  std::string s = "exported " + std::to_string(exported) + " of " + std::to_string(responses) +
                  " responses of run '" + run + "' to " + out_dir + " (";
  for (size_t i = 0; i < splits.size(); ++i)
    s += (i ? ", " : "") + splits[i].name + " " + std::to_string(splits[i].records);
  std::string f;
  for (const auto& [k, v] : filtered)
    if (v > 0) f += (f.empty() ? "" : ", ") + std::to_string(v) + " " + k;
  if (!f.empty()) s += "; filtered: " + f;
  return s + ")";
}

namespace {

void Log(LogSink* log, LogLevel level, const std::string& run, const std::string& msg) {
  if (log) log->Write(LogLine{level, run, 0, 0, msg});
}

Status WriteWholeFile(const std::string& path, const std::string& data) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::IOError("cannot create '" + path + "': " + std::strerror(errno));
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return Status::IOError("write to '" + path + "' failed");
  return Status::OK();
}

// True when `dir` holds a manifest.json written by retort.
bool IsRetortExport(const std::string& dir) {
  std::FILE* f = std::fopen((dir + "/manifest.json").c_str(), "rb");
  if (!f) return false;
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (64u << 20)) text.append(buf, n);
  std::fclose(f);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("retort_version");
}

// OK when `dir` may be (re)placed by an export.
Status CheckOutDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::OK();
  if (!fs::is_directory(dir, ec)) return Status::FailedPrecondition("--out: '" + dir + "' exists and is not a directory");
  if (fs::is_empty(dir, ec) || IsRetortExport(dir)) return Status::OK();
  return Status::FailedPrecondition("--out: '" + dir +
                                    "' exists and is not a retort export (no manifest.json); refusing to replace it");
}

// Moves `tmp` to `dir`. A previous export is swapped out atomically (renameat2 RENAME_EXCHANGE),
// so at every instant `dir` is either the complete old export or the complete new one.
Status Publish(const std::string& tmp, const std::string& dir) {
  RETORT_RETURN_IF_ERROR(CheckOutDir(dir));
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0)
      return Status::IOError("cannot replace the previous export '" + dir + "': " + std::strerror(errno));
    fs::remove_all(tmp, ec);  // now holds the previous export
    return Status::OK();
  }
  fs::rename(tmp, dir, ec);
  if (ec == std::errc::directory_not_empty || ec == std::errc::file_exists) {
    // Another export published DIR since the check: replace it like any previous export.
    RETORT_RETURN_IF_ERROR(CheckOutDir(dir));
    if (renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0)
      return Status::IOError("cannot replace the previous export '" + dir + "': " + std::strerror(errno));
    fs::remove_all(tmp, ec);
    return Status::OK();
  }
  if (ec) return Status::IOError("cannot rename '" + tmp + "' to '" + dir + "': " + ec.message());
  return Status::OK();
}

// Removes `DIR.tmp-PID-N` folders left by exports that were killed (their PID is gone).
void RemoveStaleTempDirs(const std::string& dir) {
  std::error_code ec;
  fs::path p(dir);
  fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string prefix = p.filename().string() + ".tmp-";
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const pid_t pid = static_cast<pid_t>(std::atoll(name.c_str() + prefix.size()));
    if (pid > 0 && pid != ::getpid() && kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
  }
}

struct Pipeline {
  const ExportOptions& opts;
  const std::string& run_name;
  LogSink* log;
  ExportFilter& filter;
  RecordSelector& select;  // --verify, --keep verified, --per-prompt
  SplitAssigner& assigner;
  const RecordFormatter& formatter;
  std::vector<std::unique_ptr<ShardWriter>>& writers;
  ExportSummary& sum;
  std::int64_t reasoning_records = 0, reasoning_dropped = 0, unrepresentable = 0, reused_records = 0;
  Millis first_received_ms = 0, last_received_ms = 0;  // over every response, 0 when none
  std::string line;       // reused for every record
  MessageLiterals msgs;   // reused for every record
  TextFilters* text = nullptr;  // --decontaminate, --near-dup

  Status Row(const ExportRowView& row) {
    if (sum.responses++ == 0 || row.received_at_ms < first_received_ms) first_received_ms = row.received_at_ms;
    if (row.received_at_ms > last_received_ms) last_received_ms = row.received_at_ms;
    RETORT_RETURN_IF_ERROR(msgs.Parse(row.messages_json));  // Corruption fails the export
    select.See(row);  // every stored response counts in the verify figures
    if (*filter.Check(row)) return Status::OK();
    if (*select.Select(row)) return Status::OK();
    line.clear();
    std::string why;
    if (!formatter.Format(row, msgs, &line, &why)) {
      if (++unrepresentable <= 20)
        Log(log, LogLevel::kWarn, run_name,
            "prompt '" + std::string(row.prompt_key) + "' skipped: not representable as " +
                ExportFormatName(opts.format) + ": " + why);
      return Status::OK();
    }
    if (!text->empty()) {
      Result<const char*> drop = text->Check(row);
      if (!drop.ok()) return drop.status();
      if (**drop) return Status::OK();
    }
    if (row.reasoning && !row.reasoning->empty()) {
      ++reasoning_records;
      if (opts.EffectiveReasoning() == ReasoningMode::kDrop) ++reasoning_dropped;
    }
    select.Mark(&line);
    if (row.reused) ++reused_records;
    ++sum.exported;
    return writers[assigner.Assign(row.prompt_key)]->Write(line);
  }
};

Result<ExportSummary> ExportInto(Store& store, const ExportOptions& opts, const RunInfo& run, const RunTotals& totals,
                                 const std::string& tmp, LogSink* log) {
  const std::vector<SplitSpec> splits = opts.splits.empty() ? std::vector<SplitSpec>{{"train", 1.0}} : opts.splits;
  Result<std::unique_ptr<ExportFilter>> filter = ExportFilter::Create(opts);
  if (!filter.ok()) return filter.status();
  Result<std::unique_ptr<RecordSelector>> select = RecordSelector::Create(opts, run);
  if (!select.ok()) return select.status();
  RETORT_RETURN_IF_ERROR((*select)->Prepare(store, run.id, log));
  SplitAssigner assigner(splits, opts.seed);
  RecordFormatter formatter(opts);
  std::vector<std::unique_ptr<ShardWriter>> writers;
  for (const SplitSpec& s : splits)
    writers.push_back(std::make_unique<ShardWriter>(tmp + "/data", "data/", s.name, opts.compress, opts.shard_records,
                                                    opts.shard_bytes));
  ExportSummary sum;
  // Before the walk: reading the --decontaminate sets uses the store.
  Result<std::unique_ptr<TextFilters>> text = TextFilters::Create(store, opts, tmp, totals.jobs.done);
  if (!text.ok()) return text.status();
  Pipeline p{opts, run.spec.name, log, **filter, **select, assigner, formatter, writers, sum, 0, 0, 0, 0, 0, 0, {}, {}};
  p.text = text->get();
  {
    // The store is read on a second thread into flat pages (a copy of the columns, no
    // allocation per row); rows are filtered and formatted here from views into those pages;
    // each shard's worker thread compresses, hashes and writes the previous buffer.
    RowPrefetcher rows(store, run.id, opts.with_logprobs);
    RETORT_RETURN_IF_ERROR(rows.ForEach([&p](const ExportRowView& row) { return p.Row(row); }));
  }
  for (size_t i = 0; i < splits.size(); ++i) {
    Result<std::vector<ShardInfo>> shards = writers[i]->Finish();
    if (!shards.ok()) return shards.status();
    sum.splits.push_back(SplitSummary{splits[i].name, writers[i]->records(), std::move(*shards)});
  }
  sum.filtered = (*filter)->counts();
  sum.filtered[kFilterFailedJobs] = totals.jobs.failed;
  sum.filtered[kFilterUnrepresentable] = p.unrepresentable;
  (*text)->AddCounts(&sum.filtered);
  (*select)->AddCounts(&sum.filtered);
  if (p.reasoning_dropped > 0)
    Log(log, LogLevel::kWarn, run.spec.name,
        std::to_string(p.reasoning_dropped) + " records had reasoning text that was not exported (--reasoning " +
            ReasoningModeName(opts.EffectiveReasoning()) + ")");

  ManifestInput mi;
  mi.opts = opts;
  mi.run = run;
  mi.totals = totals;
  mi.totals.first_received_ms = p.first_received_ms;
  mi.totals.last_received_ms = p.last_received_ms;
  mi.summary = &sum;
  mi.pattern_counts = (*filter)->pattern_counts();
  mi.reasoning_records = p.reasoning_records;
  mi.reasoning_dropped = p.reasoning_dropped;
  mi.reused_records = p.reused_records;
  mi.text_filters = text->get();
  mi.verify_json = (*select)->FinishJson();
  sum.verify_line = (*select)->report_line();
  sum.manifest_json = BuildManifestJson(mi);
  RETORT_RETURN_IF_ERROR(WriteWholeFile(tmp + "/manifest.json", sum.manifest_json));
  RETORT_RETURN_IF_ERROR(WriteWholeFile(tmp + "/README.md", BuildDatasetCard(mi)));
  // Beside data/, never in it: LLaMA-Factory reads every file of a folder it is pointed at.
  if (const std::string info = BuildLlamaFactoryDatasetInfo(mi); !info.empty())
    RETORT_RETURN_IF_ERROR(WriteWholeFile(tmp + "/dataset_info.json", info));
  return sum;
}

}  // namespace

Result<ExportSummary> RunExport(Store& store, const ExportOptions& opts, LogSink* log) {
  RETORT_RETURN_IF_ERROR(opts.Validate());
  Result<RunInfo> run = store.GetRun(opts.run);
  if (!run.ok()) return run.status();
  if (opts.with_logprobs && !run->spec.params.logprobs)
    return Status::InvalidArgument("--with-logprobs: run '" + opts.run +
                                   "' was harvested without logprobs, so there are none to export; harvest a run "
                                   "with --logprobs K (top-K alternatives, 0..20) to store them");
  // Only the job counts are read here: the first and last received_at come from the export's
  // own walk over the responses (Store::Totals would scan every response row once more).
  Result<JobCounts> counts = store.CountJobs(run->id);
  if (!counts.ok()) return counts.status();
  RunTotals totals;
  totals.jobs = *counts;
  std::string dir = opts.out_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  RETORT_RETURN_IF_ERROR(CheckOutDir(dir));
  if (totals.jobs.pending + totals.jobs.leased > 0)
    Log(log, LogLevel::kWarn, opts.run,
        std::to_string(totals.jobs.pending + totals.jobs.leased) +
            " jobs have no response yet; exporting what is stored");

  Result<std::int64_t> export_id = store.BeginExport(run->id, dir, opts.ToJson());
  if (!export_id.ok()) return export_id.status();
  RemoveStaleTempDirs(dir);
  // Unique per export, not only per process: the service runs several exports at once, and two
  // of them sharing DIR.tmp-PID deleted each other's files (issue #12). The PID stays first so
  // that RemoveStaleTempDirs can tell a killed process's folder.
  static std::atomic<std::uint64_t> seq{0};
  const std::string tmp = dir + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++seq);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp + "/data", ec);
  Result<ExportSummary> sum = ec ? Result<ExportSummary>(Status::IOError("cannot create '" + tmp + "/data': " +
                                                                         ec.message()))
                                 : ExportInto(store, opts, *run, totals, tmp, log);
  Status st = sum.ok() ? Publish(tmp, dir) : sum.status();
  if (!st.ok()) {
    fs::remove_all(tmp, ec);
    Status fin = store.FinishExport(*export_id, false, "", st.ToString());
    (void)fin;  // the export error is the one to report
    return st;
  }
  sum->export_id = *export_id;
  RETORT_RETURN_IF_ERROR(store.FinishExport(*export_id, true, sum->manifest_json, ""));
  return sum;
}

}  // namespace retort
