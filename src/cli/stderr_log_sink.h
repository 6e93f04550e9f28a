// StderrLogSink: the CLI's LogSink; prints "retort: error: ..." lines to standard error.
#pragma once

#include "retort/log.h"

namespace retort::cli {

// Writes each line as "retort: <level>: <message>" to stderr; debug lines only when verbose.
// Safe for concurrent use (one fputs per line).
class StderrLogSink : public LogSink {
 public:
  explicit StderrLogSink(bool verbose = false) : verbose_(verbose) {}
  void Write(const LogLine& line) override;

 private:
  bool verbose_;
};

}  // namespace retort::cli
