// ConnectionRamp: a first burst of connections at once, then one new connection per spacing interval.
#include "harvest/connection_ramp.h"

namespace retort {

Millis ConnectionRamp::TryOpen() {
  std::lock_guard lk(mu_);
  const Millis now = clock_->NowMs();
  if (open_ >= burst_ && now < next_open_ms_) return next_open_ms_;
  ++open_;
  next_open_ms_ = now + spacing_ms_;
  return 0;
}

void ConnectionRamp::ForceOpen() {
  std::lock_guard lk(mu_);
  ++open_;
}

void ConnectionRamp::Closed() {
  std::lock_guard lk(mu_);
  if (open_ > 0) --open_;
}

int ConnectionRamp::open() const {
  std::lock_guard lk(mu_);
  return open_;
}

}  // namespace retort
