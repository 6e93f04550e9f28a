// RunSamples: a bounded in-memory ring of a run's rate samples.
#include "service/run_samples.h"

namespace retort {

void RunSamples::Add(const RunSample& s) {
  std::lock_guard lk(mu_);
  samples_.push_back(s);
  while (samples_.size() > capacity_) samples_.pop_front();
}

std::vector<RunSample> RunSamples::Since(Millis since_ms) const {
  std::lock_guard lk(mu_);
  std::vector<RunSample> out;
  for (const RunSample& s : samples_)
    if (s.t_ms > since_ms) out.push_back(s);
  return out;
}

}  // namespace retort
