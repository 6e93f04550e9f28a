// LineReader: reads '\n'-terminated lines from a FILE* in bounded memory (long lines are cut off).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "retort/status.h"

namespace retort {

// Not thread-safe. Does not own the FILE*.
class LineReader {
 public:
  // REQUIRES: f open for reading; max_line > 0.
  LineReader(std::FILE* f, size_t max_line);

  // Reads the next line (without '\n'). Returns false at end of input. The view stays valid
  // until the next call. A line longer than max_line is returned empty with *too_long = true
  // (its bytes are skipped, never buffered). IOError when the read fails.
  Result<bool> Next(std::string_view* line, bool* too_long);

 private:
  Status Fill();  // refills chunk_ from the file; sets eof_

  std::FILE* f_;
  size_t max_line_;
  static constexpr size_t kChunkBytes = 1 << 20;
  std::unique_ptr<char[]> chunk_;  // kChunkBytes
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  std::string pending_;  // a line spanning chunk boundaries
};

}  // namespace retort
