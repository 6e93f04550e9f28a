// LineParserThread: reads and parses a prompt file on a second thread, handing parsed lines
// to the importing thread in bounded chunks (the SQLite work and the parsing overlap).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "prompts/prompt_line_parser.h"
#include "prompts/prompt_template.h"
#include "retort/status.h"

namespace retort {

// One line of the file as the parser saw it. `source` is "<display>:<lineno>" for lines
// that parsed (p.ok), empty otherwise.
struct ParsedFileLine {
  std::int64_t lineno = 0;
  ParsedLine p;
  std::string source;
};

// Consecutive lines of the file, in file order. `status` is set (not OK) on a read error
// after the lines; `eof` marks the last chunk.
struct ParsedChunk {
  std::vector<ParsedFileLine> lines;
  Status status;
  bool eof = false;
};

// How the lines of a file become prompts.
struct LineSyntax {
  enum class Kind {
    kJsonl,          // prompt JSONL, or OpenAI batch requests when the first non-blank line is one
    kText,           // --text: each line is a user prompt
    kTemplateJsonl,  // --template over JSON objects, one per line
    kTemplateCsv,    // --template over the records of an RFC 4180 CSV file with a header row
  };
  Kind kind = Kind::kJsonl;
  const RowTemplate* row_template = nullptr;  // kTemplate*: not owned; outlives the LineParserThread
};

// Starts parsing on construction; the destructor stops the thread (also mid-file) and joins.
// Memory is bounded by kMaxQueued chunks of kChunkLines lines (plus one being filled and
// one being consumed). Next() must be called from one thread only (the importer's).
class LineParserThread {
 public:
  static constexpr size_t kChunkLines = 1024;
  static constexpr size_t kMaxQueued = 4;

  // REQUIRES: f open for reading and not used by anyone else until this object is destroyed;
  // max_line_bytes > 0 (for CSV: the bound of a record). A CSV file whose header row is bad
  // ends with an InvalidArgument status "<display>:<line>: header: ...".
  LineParserThread(std::FILE* f, std::string display, size_t max_line_bytes, LineSyntax syntax);
  ~LineParserThread();
  LineParserThread(const LineParserThread&) = delete;
  LineParserThread& operator=(const LineParserThread&) = delete;

  // Blocks until the next chunk is ready and moves it into *out (the previous content of
  // *out is recycled). After a chunk with eof set, returns further empty eof chunks.
  void Next(ParsedChunk* out);
  // Hands prompts the importer is done with to the parsing thread, which frees them: their
  // memory came from that thread, and frees across threads contend for the allocator's arena.
  // Leaves both vectors empty.
  void Recycle(std::vector<Prompt>* prompts, std::vector<std::string>* sources);

 private:
  void Run();
  // Queues a filled chunk (blocking while kMaxQueued wait). False when stopping.
  bool Push(ParsedChunk c, bool end);
  // Takes a spare chunk (or a new one) and frees recycled batches; nullopt when stopping.
  std::optional<ParsedChunk> StartChunk();
  void RunLines();
  void RunCsv();

  std::FILE* f_;
  const std::string display_;
  const size_t max_line_;
  const LineSyntax syntax_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ParsedChunk> ready_;           // guarded by mu_
  std::vector<ParsedChunk> spare_;          // guarded by mu_: consumed chunks for reuse (not yet cleared)
  // Recycle()d batches: Run() frees their elements and returns the emptied vectors (capacity
  // kept) through empty_, from which Recycle() hands them back. Guarded by mu_.
  struct Batch {
    std::vector<Prompt> prompts;
    std::vector<std::string> sources;
  };
  std::vector<Batch> garbage_;
  std::vector<Batch> empty_;
  std::atomic<bool> stop_{false};           // set by the destructor; read per line
  bool done_ = false;                       // guarded by mu_: the eof chunk was queued
  std::thread thread_;
};

}  // namespace retort
