// LineParserThread implementation: LineReader + PromptLineParser on a worker thread.
#include "prompts/line_parser_thread.h"

#include <utility>

#include "prompts/line_reader.h"

namespace retort {

LineParserThread::LineParserThread(std::FILE* f, std::string display, size_t max_line_bytes, bool text)
    : f_(f), display_(std::move(display)), max_line_(max_line_bytes), text_(text) {
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

void LineParserThread::Run() {
  LineReader reader(f_, max_line_);
  std::string_view line;
  bool too_long = false;
  std::int64_t lineno = 0;
  bool end = false;
  while (!end) {
    ParsedChunk c;
    std::vector<Batch> garbage;
    {
      std::lock_guard lk(mu_);
      if (stop_.load()) return;
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
      l.p = ParseImportLine(line, lineno == 1, too_long, static_cast<std::int64_t>(max_line_), text_);
      if (l.p.ok) l.source = display_ + ":" + std::to_string(lineno);
    }
    c.eof = end;
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return stop_.load() || ready_.size() < kMaxQueued; });
    if (stop_.load()) return;
    ready_.push_back(std::move(c));
    if (end) done_ = true;
    lk.unlock();
    cv_.notify_all();
  }
}

}  // namespace retort
