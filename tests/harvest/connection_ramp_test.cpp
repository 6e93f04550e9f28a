// ConnectionRamp: new connections to a replica open one spacing interval apart.
#include <catch2/catch.hpp>

#include "harvest/connection_ramp.h"

using namespace retort;

TEST_CASE("ConnectionRamp spaces new connections and counts them until they close", "[harvest]") {
  FakeClock clock(1000);
  ConnectionRamp ramp(10, &clock);
  CHECK(ramp.TryOpen() == 0);
  CHECK(ramp.TryOpen() == 1010);  // a second one in the same instant waits
  CHECK(ramp.TryOpen() == 1010);
  CHECK(ramp.open() == 1);
  clock.Advance(9);
  CHECK(ramp.TryOpen() == 1010);
  clock.Advance(1);
  CHECK(ramp.TryOpen() == 0);
  CHECK(ramp.open() == 2);

  // 16 workers opening at once get 16 distinct slots, 10 ms apart.
  int opened = 0;
  Millis last = 0;
  for (int step = 0; step < 1000 && opened < 16; ++step) {
    if (ramp.TryOpen() == 0) {
      CHECK((last == 0 || clock.NowMs() - last >= 10));
      last = clock.NowMs();
      ++opened;
    }
    clock.Advance(1);
  }
  CHECK(opened == 16);
  CHECK(ramp.open() == 18);
  ramp.Closed();
  ramp.ForceOpen();  // a stopping run does not wait
  CHECK(ramp.open() == 18);
  for (int i = 0; i < 30; ++i) ramp.Closed();
  CHECK(ramp.open() == 0);  // never negative
}
