// Importer: LineParserThread (read + parse) -> chunked Store::InsertPrompts in large transactions, counting outcomes.
#include "retort/importer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "prompts/line_parser_thread.h"
#include "prompts/prompt_line_parser.h"

namespace retort {

Status ImportOptions::Validate() const {
  if (set.empty()) return Status::InvalidArgument("--set: a prompt set name is required");
  if (batch_size < 1) return Status::InvalidArgument("batch_size: must be >= 1");
  if (max_line_bytes < 1) return Status::InvalidArgument("max_line_bytes: must be >= 1");
  if (max_logged_errors < 0) return Status::InvalidArgument("max_logged_errors: must be >= 0");
  return Status::OK();
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
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

// Per-file import state. Not thread-safe.
class FileImport {
 public:
  FileImport(Store& store, const ImportOptions& opts, std::string display, std::int64_t set_id, LogSink* log)
      : store_(store), opts_(opts), display_(std::move(display)), set_id_(set_id), log_(log) {}

  ImportSummary& summary() { return sum_; }

  // Reads every line of `f` (parsed on a LineParserThread), committing a transaction every
  // batch_size stored prompts; the Store gets them in chunks of at most kChunkLines, so memory
  // does not grow with batch_size. In strict mode returns Cancelled at the first bad line.
  Status Run(std::FILE* f) {
    LineParserThread parser(f, display_, static_cast<size_t>(opts_.max_line_bytes), opts_.text);
    parser_ = &parser;
    bool eof = false;
    Status st;
    while (!eof && st.ok()) st = store_.InTransaction([&] { return RunTransaction(parser, &eof); });
    parser_ = nullptr;
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
          if (!chunk_.status.ok()) return chunk_.status.WithContext(display_);
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
  ImportSummary sum_;
  std::vector<Prompt> batch_;
  std::vector<std::string> sources_;
  std::vector<std::int64_t> linenos_;
  ParsedChunk chunk_;  // the chunk being consumed; lines before pos_ are done
  LineParserThread* parser_ = nullptr;  // while Run() runs
  size_t pos_ = 0;
};

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

  Result<std::int64_t> set_id = store.CreatePromptSet(opts.set);
  if (!set_id.ok()) return set_id.status();
  FileImport imp(store, opts, display, *set_id, log);
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
