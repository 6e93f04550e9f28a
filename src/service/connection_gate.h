// GatedServer: the connection front of `retort serve` — request heads are read by one poll()
// thread, so slow clients hold no worker; heads and bodies are read against deadlines (issue #12).
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace retort {

struct GateOptions {
  // Worker threads that run requests (parse, route, read the body, write the answer).
  int threads = 16;
  // Workers kept free of requests that carry a body, so GETs (/healthz, status) and bodiless
  // POSTs are answered while slow uploads hold the others.
  int reserved_threads = 4;
  // From the first byte of a request to the end of its head; longer gets 408 and the
  // connection is closed. A connection that sends nothing is closed after keep_alive_ms.
  int header_timeout_ms = 10'000;
  // From the moment a worker takes the request to the end of its body.
  int body_timeout_ms = 60'000;
  // How long a connection may wait for its next request (and a new one for its first byte).
  int keep_alive_ms = 5'000;
  // Longest wait for the peer to take one write of the answer.
  int write_timeout_ms = 5'000;
  // Largest request head (request line and headers); more gets 431.
  std::size_t max_head_bytes = 64 * 1024;
  // Open connections at most; more are closed as soon as they are accepted.
  int max_connections = 512;
  // Requests served on one connection before it is closed.
  int max_requests_per_connection = 100;
};

// How a request's body is framed, read from its head. Pure; for the gate and its tests.
struct HeadFraming {
  bool complete = false;          // the head (up to the empty CRLF line) is in the buffer
  std::size_t head_bytes = 0;     // its length, when complete
  std::int64_t content_length = 0;
  bool chunked = false;           // Transfer-Encoding names chunked
  bool has_body() const { return chunked || content_length > 0; }
};
// Scans `buf` for a complete request head the way the HTTP library reads it (lines end at
// LF; the head ends at the first line that is exactly CRLF after the request line). Framing
// headers that cannot be read as one plain length make the framing "chunked" (read to the end,
// then the connection is closed).
HeadFraming ScanHead(std::string_view buf);

// An httplib::Server whose connections go through the gate: the accept thread hands each new
// socket to the head reader (one poll() thread); a socket whose head is complete is handed to a
// worker, which runs httplib's request processing over a stream with deadlines; afterwards a
// keep-alive connection goes back to the reader. A connection whose body was not read to the
// end is closed (lingering, so that the client reads the answer). Bind and listen as with
// httplib::Server; call Drain() once listen_after_bind() has returned.
class GatedServer : public httplib::Server {
 public:
  explicit GatedServer(GateOptions opts);
  ~GatedServer() override;  // Drain()
  GatedServer(const GatedServer&) = delete;
  GatedServer& operator=(const GatedServer&) = delete;

  // After stop(): closes the connections waiting for a head, ends the reading side of the
  // connections workers serve (a body still arriving is cut short; answers are still
  // written), lets the requests in progress finish and joins every thread. Idempotent.
  void Drain();
  // After bind_to_port()/bind_to_any_port(): lets the kernel queue SOMAXCONN connections
  // instead of the library's 5, so that a burst of clients (or of slow ones) does not have
  // new connections wait for SYN retransmits.
  void WidenBacklog();
  // Serves connection `fd` on the calling thread until it closes, then closes it (no reader,
  // no worker pool; the same deadlines). For tests and fuzzing.
  void ServeConnectionInline(int fd);

  // Counters for tests and the log.
  std::int64_t head_timeouts() const { return head_timeouts_.load(); }
  int open_connections() const { return open_.load(); }

 private:
  struct Conn;
  enum class Next { kKeepAlive, kClose, kLinger };

  bool process_and_close_socket(socket_t sock) override;  // called on the accept thread
  void ReaderLoop();
  Next ServeOne(Conn& c);
  void Work(std::shared_ptr<Conn> c);
  void HandBack(std::shared_ptr<Conn> c);  // worker -> reader
  void CloseConn(Conn& c);
  void Wake();

  const GateOptions opts_;
  std::unique_ptr<httplib::ThreadPool> pool_;
  std::thread reader_;
  int wake_fd_ = -1;  // eventfd: new work for the reader

  std::mutex mu_;
  std::vector<std::shared_ptr<Conn>> inbox_;  // GUARDED_BY(mu_): new and returned connections
  std::vector<int> serving_;                  // GUARDED_BY(mu_): sockets a worker serves now
  bool stopping_ = false;                     // GUARDED_BY(mu_)
  bool drained_ = false;                      // GUARDED_BY(mu_)

  std::atomic<int> open_{0};
  std::atomic<int> body_busy_{0};  // workers on requests with a body
  std::atomic<std::int64_t> head_timeouts_{0};
};

}  // namespace retort
