// CLI support: error reporting and the stderr log sink.
#include "cli/cli_support.h"

#include <unistd.h>

namespace retort::cli {

int ReportError(const Status& st) {
  std::cerr << "retort: error: " << st.message() << "\n";
  return st.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

void StderrLogSink::Write(const LogLine& line) {
  if (line.level < min_) return;
  static const char* kNames[] = {"debug", "info", "warn", "error"};
  std::string out = "retort: " + std::string(kNames[static_cast<int>(line.level)]) + ": ";
  // Every text field is escaped: a request path or a run name cannot start a line of its own.
  if (!line.run.empty()) out += "run=" + EscapeLogField(line.run) + " ";
  if (line.job) out += "job=" + std::to_string(line.job) + " ";
  if (line.attempt) out += "attempt=" + std::to_string(line.attempt) + " ";
  if (!line.run.empty() || line.job || line.attempt) out.back() = ':', out += " ";
  out += EscapeLogField(line.message) + "\n";
  std::lock_guard lk(mu_);
  std::cerr << out << std::flush;
}

LogLevel ParseLogLevel(const std::string& s) {
  if (s == "debug") return LogLevel::kDebug;
  if (s == "warn") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

const char* HarvestTypeName(const HarvestOptionSpec& spec) {
  const std::string name = spec.name;
  switch (spec.kind) {
    case HarvestOptionSpec::Kind::kInt: return "INT";
    case HarvestOptionSpec::Kind::kDouble:
      return name.size() >= 7 && name.compare(name.size() - 7, 7, "timeout") == 0 ? "SECONDS" : "FLOAT";
    case HarvestOptionSpec::Kind::kString: return name == "extra-body" ? "JSON" : "TEXT";
    case HarvestOptionSpec::Kind::kBool: return "";
    case HarvestOptionSpec::Kind::kList: return "TEXT";
  }
  return "TEXT";
}

bool StderrIsTty() { return isatty(STDERR_FILENO) == 1; }

}  // namespace retort::cli
