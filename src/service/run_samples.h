// RunSamples: the last hour of a run's live rates, kept in memory for the dashboard's charts.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "retort/clock.h"

namespace retort {

// One sample of a harvesting run, taken by the service's sampler thread.
struct RunSample {
  Millis t_ms = 0;  // wall clock, Unix ms
  double requests_per_s = 0, tokens_per_s = 0;
  // Cumulative since the server started the run's controller: the chart draws their increase.
  std::int64_t rate_limited = 0, failed = 0, retried = 0;
  std::int64_t done = 0, in_flight = 0;
  double concurrency_limit = 0, governor_rpm = 0, governor_tpm = 0;
};

// A bounded ring of samples: the newest `capacity` are kept (an hour at the sampler's interval).
// Nothing is written to the database. Safe for concurrent use.
class RunSamples {
 public:
  // REQUIRES: capacity >= 1.
  explicit RunSamples(size_t capacity) : capacity_(capacity) {}
  void Add(const RunSample& s);
  // The samples newer than `since_ms` (0 = all kept), oldest first.
  std::vector<RunSample> Since(Millis since_ms) const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<RunSample> samples_;  // GUARDED_BY(mu_)
};

}  // namespace retort
