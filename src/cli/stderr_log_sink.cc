// StderrLogSink implementation.
#include "cli/stderr_log_sink.h"

#include <cstdio>
#include <string>

namespace retort::cli {

void StderrLogSink::Write(const LogLine& line) {
  if (line.level == LogLevel::kDebug && !verbose_) return;
  const char* level = line.level == LogLevel::kError  ? "error"
                      : line.level == LogLevel::kWarn ? "warning"
                      : line.level == LogLevel::kInfo ? "info"
                                                      : "debug";
  std::string s = std::string("retort: ") + level + ": ";
  if (!line.run.empty()) s += "run " + line.run + ": ";
  s += line.message;
  s += '\n';
  std::fputs(s.c_str(), stderr);
}

}  // namespace retort::cli
