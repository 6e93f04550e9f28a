// ProgressLine: formatting of the terminal progress line of `retort harvest`.
#include "cli/progress_line.h"

#include <cstdio>

namespace retort::cli {

std::string FormatDuration(double s) {
  if (s < 0) return "?";
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

std::string FormatCount(std::int64_t n) {
  char buf[32];
  const double x = static_cast<double>(n);
  if (n < 1000 && n > -1000) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  else if (n < 999'950 && n > -999'950) std::snprintf(buf, sizeof buf, "%.1fk", x / 1e3);
  else if (n < 999'950'000 && n > -999'950'000) std::snprintf(buf, sizeof buf, "%.1fM", x / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1fG", x / 1e9);
  return buf;
}

std::string ProgressLine(const HarvestProgress& p, bool priced) {
  char buf[128];
  std::string line = std::to_string(p.done) + "/" + std::to_string(p.total_jobs) + " done";
  if (p.total_jobs > 0) {
    const std::int64_t permille = p.done * 1000 / p.total_jobs;  // rounded down
    std::snprintf(buf, sizeof buf, " (%lld.%lld%%)", static_cast<long long>(permille / 10),
                  static_cast<long long>(permille % 10));
    line += buf;
  }
  std::snprintf(buf, sizeof buf, "  %.1f req/s  %.0f tok/s  ETA %s", p.requests_per_s, p.tokens_per_s,
                FormatDuration(p.eta_s).c_str());
  line += buf;
  if (priced) {
    std::snprintf(buf, sizeof buf, "  cost %.4f", p.cost);
    line += buf;
  } else {
    line += "  tokens " + FormatCount(p.prompt_tokens) + " in / " + FormatCount(p.completion_tokens) + " out";
  }
  std::snprintf(buf, sizeof buf, "  retries %lld  429s %lld  errors %lld  failed %lld  in flight %lld",
                static_cast<long long>(p.retries), static_cast<long long>(p.rate_limited),
                static_cast<long long>(p.errors), static_cast<long long>(p.failed),
                static_cast<long long>(p.in_flight));
  return line + buf;
}

}  // namespace retort::cli
