// Metrics: histogram, per-run observer and the Prometheus text exposition writer.
#include "service/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace retort {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  std::lock_guard lk(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  s.bounds = bounds_;
  std::lock_guard lk(mu_);
  std::int64_t acc = 0;
  for (std::int64_t c : counts_) {
    acc += c;
    s.cumulative.push_back(acc);
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

const std::vector<double>& RequestLatencyBuckets() {
  static const std::vector<double> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                               2.5,   5,    10,    30,   60,  120, 300, 600};
  return kBuckets;
}

const std::array<const char*, 4>& RunMetrics::Outcomes() {
  static const std::array<const char*, 4> kOutcomes = {"ok", "retried", "rate_limited", "failed"};
  return kOutcomes;
}

RunMetrics::RunMetrics() : latency_(RequestLatencyBuckets()) {}

void RunMetrics::OnRequest(const std::string& outcome, double latency_s) {
  for (size_t i = 0; i < Outcomes().size(); ++i)
    if (outcome == Outcomes()[i]) ++by_outcome_[i];
  latency_.Observe(latency_s < 0 ? 0 : latency_s);
}

std::int64_t RunMetrics::requests(const std::string& outcome) const {
  for (size_t i = 0; i < Outcomes().size(); ++i)
    if (outcome == Outcomes()[i]) return by_outcome_[i].load();
  return 0;
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

namespace {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);  // shortest form that reads back exactly
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const char* TypeName(MetricsText::Type t) {
  switch (t) {
    case MetricsText::Type::kCounter: return "counter";
    case MetricsText::Type::kGauge: return "gauge";
    case MetricsText::Type::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

void MetricsText::Family(const std::string& name, Type type, const std::string& help) {
  family_ = name;
  out_ += "# HELP " + name + " " + help + "\n";
  out_ += "# TYPE " + name + " " + TypeName(type) + "\n";
}

void MetricsText::Line(const std::string& name, const MetricLabels& labels, double value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) out_ += ',';
      out_ += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
    }
    out_ += '}';
  }
  out_ += ' ' + FormatValue(value) + '\n';
}

void MetricsText::Sample(const MetricLabels& labels, double value) { Line(family_, labels, value); }

void MetricsText::HistogramSample(const MetricLabels& labels, const Histogram::Snapshot& h) {
  for (size_t i = 0; i <= h.bounds.size(); ++i) {
    MetricLabels l = labels;
    l.emplace_back("le", i < h.bounds.size() ? FormatValue(h.bounds[i]) : "+Inf");
    Line(family_ + "_bucket", l, static_cast<double>(h.cumulative[i]));
  }
  Line(family_ + "_sum", labels, h.sum);
  Line(family_ + "_count", labels, static_cast<double>(h.count));
}

}  // namespace retort
