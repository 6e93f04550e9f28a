// Linux helpers the simulator uses to drop connections that cpp-httplib 0.11.4 owns (it
// exposes no socket handle to request handlers).
#pragma once

namespace retort {

// Finds this process's accepted TCP socket whose local port is `local_port` and whose peer
// port is `peer_port`; -1 if none. Scans /proc/self/fd.
int SimFindConnection(int local_port, int peer_port);

// Aborts the connection on `fd` without closing the descriptor (its owner still closes it):
// sets SO_LINGER {on, 0} so the owner's close() sends RST, and shuts both directions down so
// the peer sees the connection end at once and further writes by the owner fail.
void SimAbortConnection(int fd);

// Shuts down every accepted socket of this process whose local port is `local_port` (the
// listening socket itself is left alone). Used by Stop() to wake idle keep-alive workers.
// Returns how many sockets were shut down.
int SimShutdownConnections(int local_port);

}  // namespace retort
