// SimHttpServer: the simulator's connection loop over cpp-httplib 0.11.4.
#include "sim/sim_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace retort {
namespace {

thread_local int tls_socket = -1;
thread_local bool tls_close_after = false;

// Waits until `sock` is readable (or hung up / shut down) for at most `ms` (-1 = forever).
bool PollFor(int sock, short events, int ms) {
  pollfd p{sock, events, 0};
  int r;
  do {
    r = poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

int TimeoutMs(time_t sec, time_t usec) {
  return static_cast<int>(std::min<long long>(static_cast<long long>(sec) * 1000 + usec / 1000, 1 << 30));
}

void Address(int sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  const int r = peer ? getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &len)
                     : getsockname(sock, reinterpret_cast<sockaddr*>(&ss), &len);
  if (r != 0) return;
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof(buf));
    port = ntohs(a.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof(buf));
    port = ntohs(a.sin6_port);
  }
  ip = buf;
}

// A buffered plain-socket Stream with read/write timeouts (what httplib's internal
// SocketStream does; that class is not declared in the 0.11.4 split header).
class Conn : public httplib::Stream {
 public:
  Conn(int sock, int read_ms, int write_ms) : sock_(sock), read_ms_(read_ms), write_ms_(write_ms) {}

  bool HasBuffered() const { return off_ < size_; }
  bool is_readable() const override { return HasBuffered() || PollFor(sock_, POLLIN, read_ms_); }
  bool is_writable() const override { return PollFor(sock_, POLLOUT, write_ms_); }

  ssize_t read(char* ptr, size_t n) override {
    if (!HasBuffered()) {
      if (!is_readable()) return -1;
      ssize_t r;
      do {
        r = recv(sock_, buf_.data(), buf_.size(), 0);
      } while (r < 0 && errno == EINTR);
      if (r <= 0) return r;
      off_ = 0;
      size_ = static_cast<size_t>(r);
    }
    const size_t k = std::min(n, size_ - off_);
    std::memcpy(ptr, buf_.data() + off_, k);
    off_ += k;
    return static_cast<ssize_t>(k);
  }

  ssize_t write(const char* ptr, size_t n) override {
    if (!is_writable()) return -1;
    ssize_t r;
    do {
      r = send(sock_, ptr, n, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { Address(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { Address(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  int sock_;
  int read_ms_, write_ms_;
  std::array<char, 4096> buf_{};
  size_t off_ = 0, size_ = 0;
};

}  // namespace

int SimHttpServer::CurrentSocket() { return tls_socket; }

void SimHttpServer::CloseAfterResponse() { tls_close_after = true; }

void SimHttpServer::AbortSocket(int sock) {
  if (sock < 0) return;
  linger lg{1, 0};
  setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  shutdown(sock, SHUT_RDWR);
}

bool SimHttpServer::WidenListenBacklog() { return ::listen(svr_sock_, SOMAXCONN) == 0; }

void SimHttpServer::DropConnections() {
  std::lock_guard<std::mutex> lock(mu_);
  dropping_ = true;
  for (int sock : open_) shutdown(sock, SHUT_RDWR);
}

bool SimHttpServer::Register(int sock) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dropping_) return false;
  open_.insert(sock);
  return true;
}

void SimHttpServer::Unregister(int sock) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.erase(sock);
}

bool SimHttpServer::process_and_close_socket(socket_t sock) {
  bool ret = false;
  if (Register(sock)) {
    Conn conn(sock, TimeoutMs(read_timeout_sec_, read_timeout_usec_),
              TimeoutMs(write_timeout_sec_, write_timeout_usec_));
    const int idle_ms = TimeoutMs(keep_alive_timeout_sec_, 0);
    for (size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
      // One poll per idle period: a new request, the peer closing, or DropConnections()
      // (shutdown) all wake it.
      if (!conn.HasBuffered() && !PollFor(sock, POLLIN, idle_ms)) break;
      bool closed = false;
      tls_socket = sock;
      tls_close_after = false;
      ret = process_request(conn, left == 1, closed, nullptr);
      tls_socket = -1;
      if (!ret || closed || tls_close_after) break;
    }
    Unregister(sock);  // before close(): DropConnections never touches a closed descriptor
  }
  shutdown(sock, SHUT_RDWR);
  close(sock);
  return ret;
}

}  // namespace retort
