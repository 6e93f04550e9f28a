// Metrics: a small Prometheus registry (counters, gauges, fixed-bucket histograms) and the
// per-run HarvestObserver that feeds it; rendered in text exposition format 0.0.4.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "retort/harvester.h"

namespace retort {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A histogram with fixed upper bounds (le). Safe for concurrent use.
class Histogram {
 public:
  // REQUIRES: `bounds` strictly increasing; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::int64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    std::int64_t count = 0;
  };
  Snapshot Snap() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<std::int64_t> counts_;  // GUARDED_BY(mu_): per bucket, last = +Inf
  double sum_ = 0;                    // GUARDED_BY(mu_)
  std::int64_t count_ = 0;            // GUARDED_BY(mu_)
};

// Buckets of the request latency histogram, seconds.
const std::vector<double>& RequestLatencyBuckets();

// Counts a run's requests by outcome and their latency. One per run for the life of the server
// (survives pause/resume). Safe for concurrent use (called from harvest threads).
class RunMetrics : public HarvestObserver {
 public:
  // The outcomes, in exposition order: "ok", "retried", "rate_limited", "failed".
  static const std::array<const char*, 4>& Outcomes();
  RunMetrics();
  void OnRequest(const std::string& outcome, double latency_s) override;
  // Requests counted for `outcome` (0 for an unknown outcome).
  std::int64_t requests(const std::string& outcome) const;
  Histogram::Snapshot latency() const { return latency_.Snap(); }

 private:
  std::array<std::atomic<std::int64_t>, 4> by_outcome_{};
  Histogram latency_;
};

// Builds one exposition document. Samples of a family must be added together; the HELP and
// TYPE lines are written once, before the family's first sample. Not thread-safe.
class MetricsText {
 public:
  enum class Type { kCounter, kGauge, kHistogram };
  // Starts a family (`name` without _bucket/_sum/_count suffixes). Families with no samples
  // still get their HELP and TYPE lines.
  void Family(const std::string& name, Type type, const std::string& help);
  // A counter or gauge sample of the current family.
  void Sample(const MetricLabels& labels, double value);
  // A histogram's _bucket, _sum and _count samples of the current family.
  void HistogramSample(const MetricLabels& labels, const Histogram::Snapshot& h);
  const std::string& text() const { return out_; }

 private:
  void Line(const std::string& name, const MetricLabels& labels, double value);
  std::string family_;
  std::string out_;
};

// Label value escaping of the text format (backslash, double quote, newline).
std::string EscapeLabelValue(const std::string& v);

}  // namespace retort
