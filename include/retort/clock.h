// Clock: the time seam. Production code uses SystemClock; tests inject a FakeClock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace retort {

using Millis = std::int64_t;  // milliseconds

// Source of time for everything that schedules, paces or timestamps.
// Implementations are safe for concurrent use.
class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds since an arbitrary epoch; never goes backwards.
  virtual Millis NowMs() = 0;
  // Wall-clock milliseconds since the Unix epoch (for stored timestamps and HTTP dates).
  virtual Millis WallMs() = 0;
};

// The real clocks (steady_clock / system_clock). A process-wide instance.
Clock* SystemClock();

// A manually advanced clock for tests. Safe for concurrent use.
class FakeClock : public Clock {
 public:
  explicit FakeClock(Millis start = 1'000'000, Millis wall_start = 1'767'225'600'000)
      : now_(start), wall_offset_(wall_start - start) {}
  Millis NowMs() override { return now_.load(); }
  Millis WallMs() override { return now_.load() + wall_offset_; }
  void Advance(Millis ms) { now_ += ms; }
  void Set(Millis ms) { now_ = ms; }

 private:
  std::atomic<Millis> now_;
  Millis wall_offset_;
};

}  // namespace retort
