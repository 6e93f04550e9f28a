// ConnectionRamp: a first burst of connections to one replica at once, then one at a time.
#pragma once

#include <mutex>

#include "retort/clock.h"

namespace retort {

// Lets the first `burst` connections to a replica open at once, then spaces out the openings of
// any more by `spacing_ms` each.
//
// Why the spacing: thread-per-connection servers (llama.cpp's llama-server, anything on
// cpp-httplib) hand each new connection to an idle worker thread, and start an extra thread only
// when they see none idle. When many connections arrive in the same instant, that count is stale,
// several connections queue behind keep-alive connections that hold every thread, and their
// requests wait until one of those closes: as long as the whole run (issue #11). Connections that
// arrive a few milliseconds apart are each handed to a thread or get a new one. (Stream responses
// from llama-server close their connection, so there every request opens one: the spacing caps
// openings at 1000 / spacing_ms per second, above what such a server answers.)
//
// Why the burst: a server with a fixed number of slots (llama-server's `-np`, 4 by default)
// keeps the phase its slots start with when the answers are of equal length. Slots started one
// spacing apart stay out of step for the whole run, and llama-server then rebuilds its compute
// graph for a quarter to a third of its decode steps instead of at most a fifth (its log's
// "graphs reused") and answers fewer requests per second (docs/benchmarks.md). A burst no
// larger than the smallest such server's idle thread pool (cpp-httplib starts at least 8
// threads, llama-server `-np` + 4) opens without the stale-count problem.
//
// Pure logic; time only from the injected Clock. Safe for concurrent use.
class ConnectionRamp {
 public:
  ConnectionRamp(Millis spacing_ms, int burst, Clock* clock)
      : spacing_ms_(spacing_ms), burst_(burst), clock_(clock) {}

  // A connection is about to open. Returns 0 when it may open now (and counts it as open): fewer
  // than `burst` are open, or `spacing_ms` have passed since the last opening. Otherwise the
  // monotonic time (Clock::NowMs) to ask again.
  Millis TryOpen();
  // Counts a connection as open without holding it back (a run that is stopping).
  void ForceOpen();
  // A connection closed, or failed to open, after TryOpen or ForceOpen counted it.
  void Closed();

  // Connections counted as open.
  int open() const;

 private:
  const Millis spacing_ms_;
  const int burst_;
  Clock* const clock_;
  mutable std::mutex mu_;
  int open_ = 0;            // GUARDED_BY(mu_)
  Millis next_open_ms_ = 0; // GUARDED_BY(mu_): earliest time the next connection may open
};

}  // namespace retort
