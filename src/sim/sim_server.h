// SimHttpServer: an httplib::Server that owns its connection loop, so the simulator knows
// each request's socket (to drop it) and can wake every connection at Stop().
#pragma once

#include <httplib.h>

#include <mutex>
#include <set>

namespace retort {

// cpp-httplib 0.11.4 gives handlers no socket and lets idle keep-alive connections hold a
// worker (polling every 10 ms) until their timeout, even after stop(). This subclass
// replaces the per-connection loop (the virtual process_and_close_socket) with one that
// registers the socket, waits for the next request with a single poll, and exposes the
// socket to the handler running on the same thread. Safe for concurrent use.
class SimHttpServer : public httplib::Server {
 public:
  // The socket of the connection whose request the calling thread is handling, or -1 when
  // not called from inside a handler.
  static int CurrentSocket();

  // Called from a handler: close this connection once the response is written, without
  // announcing it (no "Connection: close"), as llama.cpp's llama-server does after a stream.
  static void CloseAfterResponse();

  // Aborts `sock` without closing the descriptor (the connection loop still closes it):
  // SO_LINGER {on, 0} so that close() sends RST, and shutdown of both directions so the
  // peer sees the end at once and later writes fail. No-op for -1.
  static void AbortSocket(int sock);

  // Raises the listen backlog of the bound socket from cpp-httplib's compiled-in 5 to the
  // system maximum, so that a burst of connects (a thousand workers starting at once) is
  // queued instead of dropped and retried by TCP a second or more later. Call after a
  // successful bind_to_port()/bind_to_any_port(). False if listen() failed (errno set).
  bool WidenListenBacklog();

  // Refuses new connections and shuts down every open one, waking idle and reading
  // workers. Call before stop(). Idempotent.
  void DropConnections();

 private:
  bool process_and_close_socket(socket_t sock) override;
  // Adds `sock` to the open set; false if DropConnections() already ran.
  bool Register(int sock);
  void Unregister(int sock);

  std::mutex mu_;
  std::set<int> open_;     // GUARDED_BY(mu_)
  bool dropping_ = false;  // GUARDED_BY(mu_)
};

}  // namespace retort
