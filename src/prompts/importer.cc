// Importer: LineParserThread (read + parse) -> chunked Store::InsertPrompts in large transactions, counting outcomes.
#include "retort/importer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include <cmath>
#include <filesystem>

#include "prompts/import_near_dup.h"
#include "prompts/line_parser_thread.h"
#include "prompts/prompt_line_parser.h"
#include "prompts/prompt_template.h"

namespace retort {

Status ImportOptions::Validate() const {
  if (set.empty()) return Status::InvalidArgument("--set: a prompt set name is required");
  if (batch_size < 1) return Status::InvalidArgument("batch_size: must be >= 1");
  if (max_line_bytes < 1) return Status::InvalidArgument("max_line_bytes: must be >= 1");
  if (max_logged_errors < 0) return Status::InvalidArgument("max_logged_errors: must be >= 0");
  if (!std::isfinite(near_dup) || near_dup < 0 || near_dup > 1)
    return Status::InvalidArgument("--near-dup: the similarity threshold must be in (0, 1], got " +
                                   std::to_string(near_dup));
  if (skip_near_dup && near_dup == 0) return Status::InvalidArgument("--skip-near-dup: needs --near-dup");
  if (template_text.empty()) {
    if (!system_template.empty()) return Status::InvalidArgument("--system-template: needs --template");
    if (!id_field.empty()) return Status::InvalidArgument("--id-field: needs --template");
    return Status::OK();
  }
  if (text) return Status::InvalidArgument("--template: not with --text");
  Result<RowTemplate> t = MakeRowTemplate(template_text, system_template, id_field);
  return t.ok() ? Status::OK() : t.status();
}

void ImportSummary::Add(const ImportSummary& o) {
  files += o.files;
  lines += o.lines;
  blank += o.blank;
  imported += o.imported;
  duplicates += o.duplicates;
  rejected += o.rejected;
  for (const auto& [k, v] : o.rejected_by_reason) rejected_by_reason[k] += v;
  aborted = aborted || o.aborted;
  batch_requests += o.batch_requests;
  for (const auto& [k, v] : o.batch_models) batch_models[k] += v;
  for (const auto& [k, v] : o.params_not_kept) params_not_kept[k] += v;
  near_dup_checked = near_dup_checked || o.near_dup_checked;
  near_duplicates += o.near_duplicates;
  near_dup_skipped += o.near_dup_skipped;
}

static std::string Plural(std::int64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string ImportSummary::ToLine(const std::string& set) const {
  std::string s = "imported " + Plural(imported, "prompt") + " into set '" + set + "' from " + Plural(files, "file") +
                  " (" + Plural(duplicates, "duplicate") + ", " + std::to_string(rejected) + " rejected";
  if (!rejected_by_reason.empty()) {
    s += ":";
    bool first = true;
    for (const auto& [k, v] : rejected_by_reason) {
      s += (first ? " " : ", ") + std::to_string(v) + " " + k;
      first = false;
    }
  }
  s += ")";
  if (batch_requests > 0) {
    s += "; " + Plural(batch_requests, "OpenAI batch request");
    if (!params_not_kept.empty()) {
      s += ", body fields not kept:";
      bool first = true;
      for (const auto& [k, v] : params_not_kept) {
        s += (first ? " " : ", ") + std::to_string(v) + " " + k;
        first = false;
      }
    }
  }
  if (near_dup_checked)
    s += "; " + Plural(near_duplicates, "near-duplicate") + (near_dup_skipped > 0 ? " (skipped)" : "");
  if (aborted) s += "; --strict: aborted at the first bad line, nothing from that file was stored";
  return s;
}

std::string ImportSummary::ToJson(const std::string& set) const {
  nlohmann::ordered_json j;
  j["set"] = set;
  j["files"] = files;
  j["lines"] = lines;
  j["blank"] = blank;
  j["imported"] = imported;
  j["duplicates"] = duplicates;
  j["rejected"] = rejected;
  j["rejected_by_reason"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : rejected_by_reason) j["rejected_by_reason"][k] = v;
  j["aborted"] = aborted;
  if (batch_requests > 0) {
    j["batch_requests"] = batch_requests;
    j["batch_models"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : batch_models) j["batch_models"][k] = v;
    j["params_not_kept"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : params_not_kept) j["params_not_kept"][k] = v;
  }
  if (near_dup_checked) {
    j["near_duplicates"] = near_duplicates;
    j["near_dup_skipped"] = near_dup_skipped;
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

// The run flag that holds a batch body parameter (for the end-of-file advice).
const char* HarvestFlagFor(const std::string& param) {
  if (param == "temperature") return "--temperature";
  if (param == "top_p") return "--top-p";
  if (param == "max_tokens" || param == "max_completion_tokens") return "--max-tokens";
  if (param == "seed") return "--seed";
  if (param == "stop") return "--stop";
  if (param == "n") return "--samples";
  return "--logprobs";  // logprobs, top_logprobs
}

// What the batch request lines of one file asked for, for the end-of-file report.
struct BatchFileStats {
  static constexpr size_t kMaxValues = 4;  // distinct values remembered per parameter
  struct Values {
    std::int64_t lines = 0;
    std::set<std::string> seen;  // at most kMaxValues (+ "…" when there were more)
  };
  std::map<std::string, Values> kept;
  std::map<std::string, std::int64_t> models;  // at most 64 distinct names, then "(others)"
  std::int64_t not_kept_logged = 0;

  void Add(const BatchLineInfo& b) {
    for (const auto& [k, v] : b.kept) {
      Values& x = kept[k];
      ++x.lines;
      if (x.seen.size() < kMaxValues)
        x.seen.insert(v);
      else if (!x.seen.count(v))
        x.seen.insert("…");
    }
    const std::string m = b.model.empty() ? "(none)" : b.model;
    if (models.count(m) || models.size() < 64)
      ++models[m];
    else
      ++models["(others)"];
  }
};

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const std::string& v : s) out += (out.empty() ? "" : ", ") + v;
  return out;
}

// Per-file import state. Not thread-safe.
class FileImport {
 public:
  FileImport(Store& store, const ImportOptions& opts, std::string display, std::int64_t set_id, LogSink* log,
             LineSyntax syntax)
      : store_(store), opts_(opts), display_(std::move(display)), set_id_(set_id), log_(log), syntax_(syntax) {}

  ImportSummary& summary() { return sum_; }
  // --near-dup: checks every parsed prompt against `nd` (owned by the caller) before storing it.
  void SetNearDup(ImportNearDup* nd) {
    near_dup_ = nd;
    sum_.near_dup_checked = true;
  }

  // Reads every line of `f` (parsed on a LineParserThread), committing a transaction every
  // batch_size stored prompts; the Store gets them in chunks of at most kChunkLines, so memory
  // does not grow with batch_size. In strict mode returns Cancelled at the first bad line.
  Status Run(std::FILE* f) {
    LineParserThread parser(f, display_, static_cast<size_t>(opts_.max_line_bytes), syntax_);
    parser_ = &parser;
    bool eof = false;
    Status st;
    while (!eof && st.ok()) st = store_.InTransaction([&] { return RunTransaction(parser, &eof); });
    parser_ = nullptr;
    if (st.ok()) ReportBatch();
    return st;
  }

 private:
  // Consumes lines until batch_size prompts went to the Store in this transaction, or the end
  // of the file (then sets *eof).
  Status RunTransaction(LineParserThread& parser, bool* eof) {
    const auto txn_prompts = static_cast<size_t>(opts_.batch_size);
    const size_t flush_at = std::min(txn_prompts, LineParserThread::kChunkLines);
    size_t in_txn = 0;
    for (;;) {
      if (pos_ == chunk_.lines.size()) {
        if (chunk_.eof) {
          RETORT_RETURN_IF_ERROR(Flush());
          if (!chunk_.status.ok())  // a CSV header error already names the file
            return chunk_.status.message().rfind(display_ + ":", 0) == 0 ? chunk_.status
                                                                         : chunk_.status.WithContext(display_);
          *eof = true;
          return Status::OK();
        }
        parser.Next(&chunk_);
        pos_ = 0;
        continue;
      }
      ParsedFileLine& l = chunk_.lines[pos_++];
      ++sum_.lines;
      if (l.p.blank) {
        ++sum_.blank;
        continue;
      }
      if (!l.p.ok) {
        RETORT_RETURN_IF_ERROR(Reject(l.lineno, l.p.error));
        continue;
      }
      if (l.p.batch) NoteBatchLine(l.lineno, *l.p.batch);
      if (near_dup_) {
        Result<const std::string*> like = near_dup_->Check(l.p.prompt, opts_.skip_near_dup);
        if (!like.ok()) return like.status();
        if (*like) {
          ++sum_.near_duplicates;
          if (sum_.near_duplicates <= opts_.max_logged_errors)
            Log(LogLevel::kWarn, display_ + ":" + std::to_string(l.lineno) + ": near-duplicate of prompt '" + **like +
                                     "' (--near-dup " + NearDupText() + ")" +
                                     (opts_.skip_near_dup ? ": skipped" : ""));
          if (opts_.skip_near_dup) {
            ++sum_.near_dup_skipped;
            continue;
          }
        }
      }
      batch_.push_back(std::move(l.p.prompt));
      sources_.push_back(std::move(l.source));
      linenos_.push_back(l.lineno);
      ++in_txn;
      if (batch_.size() >= flush_at || in_txn >= txn_prompts) {
        RETORT_RETURN_IF_ERROR(Flush());
        if (in_txn >= txn_prompts) return Status::OK();
      }
    }
  }

  Status Flush() {
    if (batch_.empty()) return Status::OK();
    std::vector<ImportOutcome> outcomes;
    RETORT_RETURN_IF_ERROR(store_.InsertPrompts(set_id_, batch_, sources_, &outcomes));
    for (size_t i = 0; i < batch_.size(); ++i) {
      switch (outcomes[i]) {
        case ImportOutcome::kInserted: ++sum_.imported; break;
        case ImportOutcome::kDuplicate: ++sum_.duplicates; break;
        case ImportOutcome::kKeyConflict:
          RETORT_RETURN_IF_ERROR(Reject(linenos_[i], LineError{LineErrorReason::kIdConflict, "id",
                                                               "id '" + batch_[i].key +
                                                                   "' was already imported with different content"}));
          break;
      }
    }
    if (parser_) parser_->Recycle(&batch_, &sources_);
    batch_.clear();
    sources_.clear();
    linenos_.clear();
    return Status::OK();
  }

  std::string NearDupText() const {
    char b[32];
    std::snprintf(b, sizeof b, "%g", opts_.near_dup);
    return b;
  }

  void Log(LogLevel level, const std::string& msg) {
    if (log_) log_->Write(LogLine{level, "", 0, 0, msg});
  }

  // Counts an accepted batch request line and reports each body field it could not keep.
  void NoteBatchLine(std::int64_t lineno, const BatchLineInfo& b) {
    ++sum_.batch_requests;
    ++sum_.batch_models[b.model.empty() ? "(none)" : b.model];
    batch_stats_.Add(b);
    for (const std::string& k : b.not_kept) {
      ++sum_.params_not_kept[k];
      if (++batch_stats_.not_kept_logged <= opts_.max_logged_errors)
        Log(LogLevel::kWarn, display_ + ":" + std::to_string(lineno) + ": body." + k +
                                 ": not kept (a retort run has no per-prompt " + k +
                                 "; set it for the whole run with harvest --extra-body if you need it)");
      else if (batch_stats_.not_kept_logged == opts_.max_logged_errors + 1)
        Log(LogLevel::kWarn, display_ + ": more body fields that were not kept are counted but not shown");
    }
  }

  // End of a batch request file: which models the lines named and how the kept parameters
  // compare with what one run can apply.
  void ReportBatch() {
    if (sum_.batch_requests == 0) return;
    const std::int64_t n = sum_.batch_requests;
    for (const auto& [model, lines] : batch_stats_.models)
      Log(batch_stats_.models.size() == 1 ? LogLevel::kInfo : LogLevel::kWarn,
          display_ + ": body.model " + (model == "(none)" ? "absent" : "'" + model + "'") + " on " +
              Plural(lines, "request") + ": kept as metadata (openai_batch.model); the harvest's --model decides " +
              "which model answers");
    for (const auto& [param, v] : batch_stats_.kept) {
      if (v.lines == n && v.seen.size() == 1)
        Log(LogLevel::kInfo, display_ + ": every request sets " + param + " " + *v.seen.begin() +
                                 ": harvest with " + HarvestFlagFor(param) +
                                 " to match (each value is kept in metadata openai_batch.params)");
      else
        Log(LogLevel::kWarn, display_ + ": " + param + " differs between requests (" + Join(v.seen) + "; set on " +
                                 std::to_string(v.lines) + " of " + std::to_string(n) +
                                 "): a run applies one value (" + HarvestFlagFor(param) +
                                 ") to every prompt; each request's value is kept in metadata openai_batch.params");
    }
  }

  Status Reject(std::int64_t lineno, const LineError& e) {
    ++sum_.rejected;
    ++sum_.rejected_by_reason[LineErrorReasonName(e.reason)];
    if (log_) {
      if (sum_.rejected <= opts_.max_logged_errors) {
        log_->Write(LogLine{LogLevel::kError, "", 0, 0,
                            display_ + ":" + std::to_string(lineno) + ": " + e.field + ": " + e.message + " (" +
                                LineErrorReasonName(e.reason) + ")"});
      } else if (sum_.rejected == opts_.max_logged_errors + 1) {
        log_->Write(LogLine{LogLevel::kWarn, "", 0, 0,
                            display_ + ": more rejected lines are counted but not shown"});
      }
    }
    if (opts_.strict) return Status::Cancelled("--strict: aborted at " + display_ + ":" + std::to_string(lineno));
    return Status::OK();
  }

  Store& store_;
  const ImportOptions& opts_;
  std::string display_;
  std::int64_t set_id_;
  LogSink* log_;
  const LineSyntax syntax_;
  ImportSummary sum_;
  BatchFileStats batch_stats_;
  std::vector<Prompt> batch_;
  std::vector<std::string> sources_;
  std::vector<std::int64_t> linenos_;
  ParsedChunk chunk_;  // the chunk being consumed; lines before pos_ are done
  LineParserThread* parser_ = nullptr;  // while Run() runs
  ImportNearDup* near_dup_ = nullptr;   // --near-dup, else nullptr
  size_t pos_ = 0;
};

// A file name ending in ".csv" (any case).
bool IsCsvName(const std::string& file) {
  if (file.size() < 4) return false;
  std::string ext = file.substr(file.size() - 4);
  for (char& c : ext) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return ext == ".csv";
}

}  // namespace

Result<ImportSummary> ImportPromptFile(Store& store, const ImportOptions& opts, const std::string& file,
                                       LogSink* log) {
  RETORT_RETURN_IF_ERROR(opts.Validate());
  const bool is_stdin = file == "-";
  const std::string display = is_stdin ? "<stdin>" : file;
  std::FILE* f = is_stdin ? stdin : std::fopen(file.c_str(), "rb");
  if (!f) return Status::IOError("cannot open '" + file + "': " + std::strerror(errno));
  struct Closer {
    std::FILE* f;
    bool own;
    ~Closer() {
      if (own) std::fclose(f);
    }
  } closer{f, !is_stdin};

  LineSyntax syntax;
  std::optional<RowTemplate> row_template;
  if (opts.text) syntax.kind = LineSyntax::Kind::kText;
  if (!opts.template_text.empty()) {
    Result<RowTemplate> t = MakeRowTemplate(opts.template_text, opts.system_template, opts.id_field);
    if (!t.ok()) return t.status();
    row_template = std::move(*t);
    syntax.kind = IsCsvName(file) ? LineSyntax::Kind::kTemplateCsv : LineSyntax::Kind::kTemplateJsonl;
    syntax.row_template = &*row_template;
  } else if (IsCsvName(file)) {
    return Status::InvalidArgument(display + ": a CSV file needs --template (e.g. --template '{question}')");
  }

  Result<std::int64_t> set_id = store.CreatePromptSet(opts.set);
  if (!set_id.ok()) return set_id.status();
  FileImport imp(store, opts, display, *set_id, log, syntax);
  std::unique_ptr<ImportNearDup> near_dup;
  if (opts.near_dup > 0) {
    // Signatures spill to an unlinked file beside the database.
    std::string dir = std::filesystem::path(store.path()).parent_path().string();
    Result<std::unique_ptr<ImportNearDup>> nd = ImportNearDup::Create(store, *set_id, opts.near_dup,
                                                                       dir.empty() ? "." : dir);
    if (!nd.ok()) return nd.status();
    near_dup = std::move(*nd);
    imp.SetNearDup(near_dup.get());
  }
  if (!opts.strict) {
    RETORT_RETURN_IF_ERROR(imp.Run(f));
  } else {
    Status st = store.InTransaction([&] { return imp.Run(f); });
    if (st.code() == StatusCode::kCancelled && imp.summary().rejected > 0) {
      imp.summary().aborted = true;  // rolled back: nothing of this file is stored
      imp.summary().imported = 0;
      imp.summary().duplicates = 0;
    } else if (!st.ok()) {
      return st;
    }
  }
  ImportSummary out = imp.summary();
  out.files = 1;
  return out;
}

}  // namespace retort
