// LineParserThread implementation: LineReader + PromptLineParser on a worker thread.
#include "prompts/line_parser_thread.h"

#include <utility>

#include "prompts/batch_request_line.h"
#include "prompts/csv_reader.h"
#include "prompts/line_reader.h"
#include "store/utf8.h"

namespace retort {

LineParserThread::LineParserThread(std::FILE* f, std::string display, size_t max_line_bytes, LineSyntax syntax)
    : f_(f), display_(std::move(display)), max_line_(max_line_bytes), syntax_(syntax) {
  thread_ = std::thread([this] { Run(); });
}

LineParserThread::~LineParserThread() {
  {
    std::lock_guard lk(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  thread_.join();
}

void LineParserThread::Next(ParsedChunk* out) {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !ready_.empty() || done_; });
  if (ready_.empty()) {  // after the eof chunk
    out->lines.clear();
    out->status = Status::OK();
    out->eof = true;
    return;
  }
  ParsedChunk old = std::move(*out);
  *out = std::move(ready_.front());
  ready_.pop_front();
  spare_.push_back(std::move(old));  // cleared by Run(), on the thread that allocated its strings
  lk.unlock();
  cv_.notify_all();
}

void LineParserThread::Recycle(std::vector<Prompt>* prompts, std::vector<std::string>* sources) {
  Batch spare;
  {
    std::lock_guard lk(mu_);
    garbage_.push_back(Batch{std::move(*prompts), std::move(*sources)});
    if (!empty_.empty()) {
      spare = std::move(empty_.back());
      empty_.pop_back();
    }
  }
  *prompts = std::move(spare.prompts);
  *sources = std::move(spare.sources);
  prompts->clear();
  sources->clear();
}

std::optional<ParsedChunk> LineParserThread::StartChunk() {
  ParsedChunk c;
  std::vector<Batch> garbage;
  {
    std::lock_guard lk(mu_);
    if (stop_.load()) return std::nullopt;
    if (!spare_.empty()) {
      c = std::move(spare_.back());
      spare_.pop_back();
    }
    garbage.swap(garbage_);
  }
  if (!garbage.empty()) {
    for (Batch& b : garbage) {
      b.prompts.clear();
      b.sources.clear();
    }
    std::lock_guard lk(mu_);
    for (Batch& b : garbage)
      if (empty_.size() < kMaxQueued) empty_.push_back(std::move(b));
    garbage.clear();
  }
  c.lines.clear();
  c.status = Status::OK();
  c.lines.reserve(kChunkLines);
  return c;
}

bool LineParserThread::Push(ParsedChunk c, bool end) {
  c.eof = end;
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return stop_.load() || ready_.size() < kMaxQueued; });
  if (stop_.load()) return false;
  ready_.push_back(std::move(c));
  if (end) done_ = true;
  lk.unlock();
  cv_.notify_all();
  return true;
}

void LineParserThread::Run() {
  if (syntax_.kind == LineSyntax::Kind::kTemplateCsv)
    RunCsv();
  else
    RunLines();
}

void LineParserThread::RunLines() {
  LineReader reader(f_, max_line_);
  std::string_view line;
  bool too_long = false;
  std::int64_t lineno = 0;
  bool end = false;
  // kJsonl: the first non-blank line decides whether the file holds OpenAI batch requests.
  enum class Detect { kUnknown, kPrompts, kBatch } detect = Detect::kUnknown;
  while (!end) {
    std::optional<ParsedChunk> next = StartChunk();
    if (!next) return;
    ParsedChunk& c = *next;
    while (c.lines.size() < kChunkLines) {
      if (stop_.load(std::memory_order_relaxed)) return;
      Result<bool> more = reader.Next(&line, &too_long);
      if (!more.ok()) {
        c.status = more.status();
        end = true;
        break;
      }
      if (!*more) {
        end = true;
        break;
      }
      ++lineno;
      ParsedFileLine& l = c.lines.emplace_back();
      l.lineno = lineno;
      const auto max = static_cast<std::int64_t>(max_line_);
      switch (syntax_.kind) {
        case LineSyntax::Kind::kText:
          l.p = ParseImportLine(line, lineno == 1, too_long, max, true);
          break;
        case LineSyntax::Kind::kTemplateJsonl:
          if (too_long) {
            l.p = ParseImportLine(line, false, true, max, false);
          } else {
            if (lineno == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
            l.p = ParseTemplateJsonLine(*syntax_.row_template, line);
          }
          break;
        case LineSyntax::Kind::kTemplateCsv:  // handled by RunCsv
        case LineSyntax::Kind::kJsonl: {
          std::string_view body = line;
          if (lineno == 1 && body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
          if (detect == Detect::kUnknown && !too_long && !PrecheckJsonLine(body).has_value())
            detect = IsBatchRequestLine(body) ? Detect::kBatch : Detect::kPrompts;
          if (detect == Detect::kBatch && !too_long)
            l.p = ParseBatchRequestLine(body);
          else
            l.p = ParseImportLine(line, lineno == 1, too_long, max, false);
          break;
        }
      }
      if (l.p.ok) l.source = display_ + ":" + std::to_string(lineno);
    }
    if (!Push(std::move(c), end)) return;
  }
}

void LineParserThread::RunCsv() {
  CsvReader reader(f_, max_line_);
  CsvRecord rec;
  std::vector<std::string> header;
  bool have_header = false;
  bool end = false;
  while (!end) {
    std::optional<ParsedChunk> next = StartChunk();
    if (!next) return;
    ParsedChunk& c = *next;
    while (c.lines.size() < kChunkLines) {
      if (stop_.load(std::memory_order_relaxed)) return;
      Result<bool> more = reader.Next(&rec);
      if (!more.ok()) {
        c.status = more.status();
        end = true;
        break;
      }
      if (!*more) {
        if (!have_header) c.status = Status::InvalidArgument(display_ + ": CSV file has no header row");
        end = true;
        break;
      }
      if (!have_header) {
        if (rec.blank) continue;
        const std::string at = display_ + ":" + std::to_string(rec.lineno) + ": header: ";
        std::string bad;
        if (rec.too_long) bad = "longer than " + std::to_string(max_line_) + " bytes";
        if (bad.empty() && !rec.error.empty()) bad = rec.error;
        for (size_t i = 0; bad.empty() && i < rec.fields.size(); ++i) {
          if (!IsValidUtf8(rec.fields[i])) bad = "column " + std::to_string(i + 1) + " is not valid UTF-8";
          for (size_t k = 0; bad.empty() && k < i; ++k)
            if (rec.fields[k] == rec.fields[i]) bad = "column name '" + rec.fields[i] + "' appears twice";
        }
        if (!bad.empty()) {
          c.status = Status::InvalidArgument(at + bad);
          end = true;
          break;
        }
        header = std::move(rec.fields);
        have_header = true;
        continue;
      }
      ParsedFileLine& l = c.lines.emplace_back();
      l.lineno = rec.lineno;
      if (rec.blank) {
        l.p.blank = true;
      } else if (rec.too_long) {
        l.p = LineFailure(LineErrorReason::kLineTooLong, "line",
                          "record longer than " + std::to_string(max_line_) + " bytes");
      } else if (!rec.error.empty()) {
        l.p = LineFailure(LineErrorReason::kInvalidCsv, "line", rec.error);
      } else {
        l.p = ParseTemplateCsvRecord(*syntax_.row_template, header, rec.fields);
      }
      if (l.p.ok) l.source = display_ + ":" + std::to_string(rec.lineno);
    }
    if (!Push(std::move(c), end)) return;
  }
}

}  // namespace retort
