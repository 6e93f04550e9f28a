// LogSink: where the library's log lines go. The library never prints by itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace retort {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// One structured log line. Ids are 0/empty when not applicable.
// Secrets must never be put in `message` (log a fingerprint if needed).
struct LogLine {
  LogLevel level = LogLevel::kInfo;
  std::string run;        // run name
  std::int64_t job = 0;   // job id
  int attempt = 0;        // attempt number (1-based)
  std::string message;
};

// Receives log lines. Implementations must be safe for concurrent use.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(const LogLine& line) = 0;
};

// A sink that drops everything.
LogSink* NullLogSink();

// `field` made safe for a one-line log: control characters (C0, DEL and the C1 code points
// U+0080..U+009F) become \n, \r, \t or \xHH / \u00HH, and a backslash becomes \\, so that
// a request path holding %0A cannot forge a log line and no terminal escape passes through.
// Sinks that write lines apply it to every text field.
std::string EscapeLogField(std::string_view field);

}  // namespace retort
