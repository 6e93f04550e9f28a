// ConnectionRamp: a first burst of connections to a replica opens at once, any more one spacing
// interval apart.
#include <catch2/catch.hpp>

#include "harvest/connection_ramp.h"

using namespace retort;

TEST_CASE("ConnectionRamp spaces new connections and counts them until they close", "[harvest]") {
  FakeClock clock(1000);
  ConnectionRamp ramp(10, 1, &clock);
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

TEST_CASE("ConnectionRamp opens a first burst at once and spaces the rest", "[harvest]") {
  FakeClock clock(1000);
  ConnectionRamp ramp(10, 4, &clock);
  for (int i = 0; i < 4; ++i) CHECK(ramp.TryOpen() == 0);  // the burst, in one instant
  CHECK(ramp.TryOpen() == 1010);                           // the fifth waits a spacing
  CHECK(ramp.open() == 4);
  clock.Advance(10);
  CHECK(ramp.TryOpen() == 0);
  CHECK(ramp.TryOpen() == 1020);
  CHECK(ramp.open() == 5);

  // Below the burst again (connections closed, as llama-server closes each stream's), a new
  // connection opens at once; at the burst the spacing holds again.
  ramp.Closed();
  ramp.Closed();
  CHECK(ramp.open() == 3);
  CHECK(ramp.TryOpen() == 0);
  CHECK(ramp.open() == 4);
  CHECK(ramp.TryOpen() == 1020);
  clock.Advance(10);
  CHECK(ramp.TryOpen() == 0);
  CHECK(ramp.open() == 5);
}
