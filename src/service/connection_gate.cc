// GatedServer: one poll() thread reads request heads; workers run requests over deadline streams.
#include "service/connection_gate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace retort {

namespace {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kLingerMs = 2'000;                       // reading (and dropping) after the answer
constexpr std::int64_t kLingerBytes = 4 * 1024 * 1024;  // at most this much is dropped

TimePoint After(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

int MsUntil(TimePoint t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(ms, 0, 1'000'000));
}

// Waits until `fd` has `events` or `deadline` passes (EINTR retried). True when ready.
bool WaitFd(int fd, short events, TimePoint deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, MsUntil(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string TrimValue(std::string_view v) {
  size_t b = 0, e = v.size();
  while (b < e && (v[b] == ' ' || v[b] == '\t')) ++b;
  while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' || v[e - 1] == '\n')) --e;
  return std::string(v.substr(b, e - b));
}

void AddressOf(int fd, bool local, std::string* ip, int* port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int r = local ? ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                      : ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  ip->clear();
  *port = 0;
  if (r != 0) return;
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    if (::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf)) *ip = buf;
    *port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf)) *ip = buf;
    *port = ntohs(a->sin6_port);
  }
}

// A small answer written by the reader itself (no worker): best effort, never blocks.
void SendQuick(int fd, int status, const char* reason, const std::string& code, const std::string& message) {
  const std::string body = "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}}";
  const std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\nConnection: close\r\n\r\n" + body;
  (void)!::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// httplib::Stream over a socket (and bytes already read from it): every read waits at most
// until `read_deadline`, every write at most write_timeout_ms. Counts what it gave the parser.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int fd, std::string buffered, TimePoint read_deadline, int write_timeout_ms)
      : fd_(fd), buf_(std::move(buffered)), read_deadline_(read_deadline), write_timeout_ms_(write_timeout_ms) {}

  bool is_readable() const override { return pos_ < buf_.size() || WaitFd(fd_, POLLIN, read_deadline_); }
  bool is_writable() const override { return WaitFd(fd_, POLLOUT, After(write_timeout_ms_)); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
      for (;;) {
        if (!WaitFd(fd_, POLLIN, read_deadline_)) {
          timed_out_ = true;
          return -1;
        }
        buf_.resize(kReadChunk);
        const ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), 0);
        if (n > 0) {
          buf_.resize(static_cast<size_t>(n));
          break;
        }
        buf_.clear();
        if (n == 0) return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
      }
    }
    const size_t n = std::min(size, buf_.size() - pos_);
    std::memcpy(ptr, buf_.data() + pos_, n);
    pos_ += n;
    consumed_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    const TimePoint deadline = After(write_timeout_ms_);
    for (;;) {
      if (!WaitFd(fd_, POLLOUT, deadline)) return -1;
      const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
      if (n >= 0) return n;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { AddressOf(fd_, false, &ip, &port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { AddressOf(fd_, true, &ip, &port); }
  socket_t socket() const override { return fd_; }

  std::size_t consumed() const { return consumed_; }
  bool timed_out() const { return timed_out_; }
  // Bytes read from the socket that the parser has not taken (the start of the next request).
  std::string TakeLeftover() { return buf_.substr(pos_); }

 private:
  int fd_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::size_t consumed_ = 0;
  TimePoint read_deadline_;
  int write_timeout_ms_;
  bool timed_out_ = false;
};

// Runs each task on the thread that enqueues it: the accept thread only hands sockets over.
class InlineQueue final : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

}  // namespace

HeadFraming ScanHead(std::string_view buf) {
  HeadFraming f;
  int content_lengths = 0;
  bool unreadable = false;
  size_t pos = 0;
  for (int line = 0;; ++line) {
    const size_t nl = buf.find('\n', pos);
    if (nl == std::string_view::npos) return HeadFraming{};  // incomplete
    const std::string_view l = buf.substr(pos, nl + 1 - pos);
    pos = nl + 1;
    if (line == 0) {
      if (l == "\r\n") break;  // no request line: the parser answers 400 at once
      continue;
    }
    if (l == "\r\n") break;
    const size_t colon = l.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string name = Lower(l.substr(0, colon));
    const std::string value = TrimValue(l.substr(colon + 1));
    if (name == "content-length") {
      ++content_lengths;
      const bool digits = !value.empty() && value.size() <= 18 &&
                          std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); });
      if (digits) f.content_length = std::stoll(value);
      else unreadable = true;
    } else if (name == "transfer-encoding") {
      f.chunked = true;
    }
  }
  f.complete = true;
  f.head_bytes = pos;
  if (unreadable || content_lengths > 1) f.chunked = true;  // read to the end, then close
  return f;
}

struct GatedServer::Conn {
  int fd = -1;
  std::string buf;  // read, not yet parsed
  enum class Phase { kIdle, kHead, kReady, kLinger } phase = Phase::kIdle;
  TimePoint deadline;
  int requests = 0;
  HeadFraming framing;
  std::int64_t lingered = 0;
};

GatedServer::GatedServer(GateOptions opts) : opts_(opts) {
  new_task_queue = [] { return new InlineQueue(); };
  pool_ = std::make_unique<httplib::ThreadPool>(static_cast<size_t>(std::max(1, opts_.threads)));
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  reader_ = std::thread([this] { ReaderLoop(); });
}

GatedServer::~GatedServer() {
  Drain();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void GatedServer::Wake() {
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void GatedServer::Drain() {
  {
    std::lock_guard lk(mu_);
    if (drained_) return;
    drained_ = true;
    stopping_ = true;
  }
  Wake();
  if (reader_.joinable()) reader_.join();
  {
    // A slow body would hold its worker (and the shutdown) until --body-timeout.
    std::lock_guard lk(mu_);
    for (int fd : serving_) ::shutdown(fd, SHUT_RD);
  }
  pool_->shutdown();  // requests in progress finish; their connections are closed
  std::vector<std::shared_ptr<Conn>> left;
  {
    std::lock_guard lk(mu_);
    left.swap(inbox_);
  }
  for (auto& c : left) CloseConn(*c);
}

void GatedServer::WidenBacklog() {
  const int fd = svr_sock_.load();
  if (fd >= 0) ::listen(fd, SOMAXCONN);  // listen() again only changes the backlog
}

void GatedServer::CloseConn(Conn& c) {
  if (c.fd < 0) return;
  ::close(c.fd);
  c.fd = -1;
  --open_;
}

bool GatedServer::process_and_close_socket(socket_t sock) {
  ++open_;
  auto c = std::make_shared<Conn>();
  c->fd = sock;
  if (open_.load() > opts_.max_connections) {
    SendQuick(sock, 503, "Service Unavailable", "unavailable", "too many open connections");
    CloseConn(*c);
    return false;
  }
  ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);
  const int one = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->deadline = After(opts_.keep_alive_ms);
  HandBack(std::move(c));
  return true;
}

void GatedServer::HandBack(std::shared_ptr<Conn> c) {
  {
    std::lock_guard lk(mu_);
    if (!stopping_) {
      inbox_.push_back(std::move(c));
      c = nullptr;
    }
  }
  if (c) {
    CloseConn(*c);
    return;
  }
  Wake();
}

void GatedServer::ReaderLoop() {
  std::vector<std::shared_ptr<Conn>> conns;
  std::vector<pollfd> fds;
  for (;;) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) break;
      for (auto& c : inbox_) conns.push_back(std::move(c));
      inbox_.clear();
    }
    const TimePoint now = Clock::now();
    // Heads completed earlier (pipelined, or waiting for a body slot) go to a worker first.
    const int body_slots = std::max(1, opts_.threads - opts_.reserved_threads);
    for (auto& c : conns) {
      if (c->fd < 0 || c->phase == Conn::Phase::kLinger) continue;
      if (c->phase != Conn::Phase::kReady) {
        const HeadFraming f = ScanHead(c->buf);
        if (!f.complete) {
          if (!c->buf.empty() && c->phase == Conn::Phase::kIdle) {
            c->phase = Conn::Phase::kHead;
            c->deadline = now + std::chrono::milliseconds(opts_.header_timeout_ms);
          }
          continue;
        }
        if (f.head_bytes > opts_.max_head_bytes) {
          SendQuick(c->fd, 431, "Request Header Fields Too Large", "invalid_argument", "the request head is too large");
          ::shutdown(c->fd, SHUT_WR);
          c->phase = Conn::Phase::kLinger;
          c->deadline = now + std::chrono::milliseconds(kLingerMs);
          continue;
        }
        c->framing = f;
        c->phase = Conn::Phase::kReady;
        // Waiting for a worker is bounded like the head: a request nobody could take is refused.
        c->deadline = now + std::chrono::milliseconds(opts_.header_timeout_ms);
      }
      if (c->framing.has_body() && body_busy_.load() >= body_slots) continue;  // waits for a slot
      if (c->framing.has_body()) ++body_busy_;
      std::shared_ptr<Conn> taken = std::move(c);
      pool_->enqueue([this, taken] { Work(taken); });
    }
    conns.erase(std::remove(conns.begin(), conns.end(), nullptr), conns.end());

    fds.clear();
    fds.push_back(pollfd{wake_fd_, POLLIN, 0});
    TimePoint next = now + std::chrono::seconds(1);
    for (const auto& c : conns) {
      next = std::min(next, c->deadline);
      // A connection waiting for a body slot is not read from: its body stays in the kernel.
      fds.push_back(pollfd{c->fd, static_cast<short>(c->phase == Conn::Phase::kReady ? 0 : POLLIN), 0});
    }
    const int r = ::poll(fds.data(), fds.size(), MsUntil(next));
    if (r < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      std::uint64_t v;
      (void)!::read(wake_fd_, &v, sizeof v);
    }
    const TimePoint after = Clock::now();
    for (size_t i = 1; i < fds.size(); ++i) {
      Conn& c = *conns[i - 1];
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        // Read what is there (bounded by the head cap); EOF or an error closes.
        char chunk[16 * 1024];
        for (;;) {
          const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
          if (n > 0) {
            if (c.phase == Conn::Phase::kLinger) {
              if ((c.lingered += n) > kLingerBytes) {
                CloseConn(c);
                break;
              }
              continue;
            }
            c.buf.append(chunk, static_cast<size_t>(n));
            if (c.buf.size() > opts_.max_head_bytes) break;
            continue;
          }
          if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) CloseConn(c);
          break;
        }
        if (c.fd >= 0 && c.phase != Conn::Phase::kLinger && c.phase != Conn::Phase::kReady &&
            c.buf.size() > opts_.max_head_bytes && !ScanHead(c.buf).complete) {
          SendQuick(c.fd, 431, "Request Header Fields Too Large", "invalid_argument", "the request head is too large");
          ::shutdown(c.fd, SHUT_WR);
          c.phase = Conn::Phase::kLinger;
          c.deadline = after + std::chrono::milliseconds(kLingerMs);
        }
      }
      if (c.fd >= 0 && after >= c.deadline) {
        switch (c.phase) {
          case Conn::Phase::kIdle:
          case Conn::Phase::kLinger:
            CloseConn(c);
            break;
          case Conn::Phase::kHead:
          case Conn::Phase::kReady:
            ++head_timeouts_;
            if (c.phase == Conn::Phase::kHead)
              SendQuick(c.fd, 408, "Request Timeout", "request_timeout",
                        "the request head did not arrive in time");
            else
              SendQuick(c.fd, 503, "Service Unavailable", "unavailable", "the server is busy: try again");
            ::shutdown(c.fd, SHUT_WR);
            c.phase = Conn::Phase::kLinger;
            c.deadline = after + std::chrono::milliseconds(kLingerMs);
            break;
        }
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const auto& c) { return c->fd < 0; }), conns.end());
  }
  for (auto& c : conns) CloseConn(*c);
}

GatedServer::Next GatedServer::ServeOne(Conn& c) {
  const HeadFraming f = c.framing;
  const bool last = ++c.requests >= opts_.max_requests_per_connection || f.chunked;
  DeadlineStream strm(c.fd, std::move(c.buf), After(opts_.body_timeout_ms), opts_.write_timeout_ms);
  c.buf.clear();
  bool closed = false;
  std::string local_ip;
  int local_port = 0;
  strm.get_local_ip_and_port(local_ip, local_port);
  const bool ok = process_request(strm, last, closed, [&](httplib::Request& req) {
    req.local_addr = local_ip;
    req.local_port = local_port;
  });
  // Every byte of the request, and no more, went to the parser: the connection can carry the next.
  const bool framed = !f.chunked && strm.consumed() == f.head_bytes + static_cast<std::size_t>(f.content_length);
  c.buf = strm.TakeLeftover();
  if (!ok || strm.timed_out()) return Next::kClose;
  if (!framed) return Next::kLinger;
  if (closed || last) return Next::kLinger;
  return Next::kKeepAlive;
}

void GatedServer::Work(std::shared_ptr<Conn> c) {
  const bool had_body = c->framing.has_body();
  {
    std::lock_guard lk(mu_);
    if (stopping_) ::shutdown(c->fd, SHUT_RD);
    serving_.push_back(c->fd);
  }
  Next next = ServeOne(*c);
  {
    std::lock_guard lk(mu_);
    if (auto it = std::find(serving_.begin(), serving_.end(), c->fd); it != serving_.end()) serving_.erase(it);
  }
  if (had_body) {
    --body_busy_;
    Wake();  // a request waiting for a body slot may go now
  }
  {
    std::lock_guard lk(mu_);
    if (stopping_ && next == Next::kKeepAlive) next = Next::kClose;
  }
  switch (next) {
    case Next::kClose:
      CloseConn(*c);
      return;
    case Next::kLinger:
      // Read and drop what the client still sends, so that closing does not reset the answer away.
      ::shutdown(c->fd, SHUT_WR);
      c->buf.clear();
      c->phase = Conn::Phase::kLinger;
      c->deadline = After(kLingerMs);
      HandBack(std::move(c));
      return;
    case Next::kKeepAlive:
      c->phase = Conn::Phase::kIdle;
      c->framing = HeadFraming{};
      c->deadline = After(opts_.keep_alive_ms);
      HandBack(std::move(c));
      return;
  }
}

void GatedServer::ServeConnectionInline(int fd) {
  ++open_;
  Conn c;
  c.fd = fd;
  for (;;) {
    // The head, under the same deadlines as the reader's.
    TimePoint deadline = After(opts_.keep_alive_ms);
    bool started = !c.buf.empty();
    if (started) deadline = After(opts_.header_timeout_ms);
    HeadFraming f = ScanHead(c.buf);
    while (!f.complete && c.buf.size() <= opts_.max_head_bytes) {
      if (!WaitFd(fd, POLLIN, deadline)) break;
      char chunk[16 * 1024];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0 && (n == 0 || (errno != EAGAIN && errno != EINTR))) break;
      if (n <= 0) continue;
      c.buf.append(chunk, static_cast<size_t>(n));
      if (!started) {
        started = true;
        deadline = After(opts_.header_timeout_ms);
      }
      f = ScanHead(c.buf);
    }
    if (!f.complete || f.head_bytes > opts_.max_head_bytes) {
      if (f.complete || c.buf.size() > opts_.max_head_bytes)
        SendQuick(fd, 431, "Request Header Fields Too Large", "invalid_argument", "the request head is too large");
      else if (started)
        SendQuick(fd, 408, "Request Timeout", "request_timeout", "the request head did not arrive in time");
      break;
    }
    c.framing = f;
    if (ServeOne(c) != Next::kKeepAlive) break;
  }
  ::shutdown(fd, SHUT_WR);
  CloseConn(c);
}

}  // namespace retort
