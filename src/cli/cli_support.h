// Shared pieces of the CLI commands: error printing, the stderr log sink, JSON output.
#pragma once

#include <iostream>
#include <mutex>
#include <string>

#include "retort/harvester.h"
#include "retort/log.h"
#include "retort/status.h"

namespace retort::cli {

// Prints "retort: error: <message>" to stderr and returns the exit code for `st`
// (2 for invalid arguments, 1 otherwise).
int ReportError(const Status& st);

// Writes log lines to stderr: "retort: [warn] run=r job=12 attempt=2: message".
class StderrLogSink : public LogSink {
 public:
  explicit StderrLogSink(LogLevel min_level) : min_(min_level) {}
  void Write(const LogLine& line) override;

 private:
  LogLevel min_;
  std::mutex mu_;
};

// Parses "debug|info|warn|error".
LogLevel ParseLogLevel(const std::string& s);

// The value placeholder `--help` shows for a harvest option: INT, FLOAT, SECONDS (numbers of
// seconds: the *timeout options), JSON (extra-body) or TEXT.
const char* HarvestTypeName(const HarvestOptionSpec& spec);

// True when stdout / stderr is a terminal.
bool StderrIsTty();

}  // namespace retort::cli
