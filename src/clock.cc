// SystemClock: steady_clock for scheduling, system_clock for timestamps.
#include "retort/clock.h"

namespace retort {
namespace {
class RealClock : public Clock {
 public:
  Millis NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  Millis WallMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
  }
};
}  // namespace

Clock* SystemClock() {
  static RealClock clock;
  return &clock;
}

}  // namespace retort
