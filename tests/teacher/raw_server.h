// Test helper: a loopback TCP server whose connections are handled by raw-socket scripts, for
// the server behaviours a real HTTP library will not produce (closing a keep-alive connection
// under a client, trickling bytes, endless headers, a proxy).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace retort::test {

// Reads from `fd` until "\r\n\r\n" plus the Content-Length body, or EOF, or `timeout_ms`.
// Returns what was read ("" on EOF/timeout before anything).
inline std::string ReadHttpRequest(int fd, int timeout_ms = 5000) {
  std::string in;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::size_t need = std::string::npos;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::size_t head_end = in.find("\r\n\r\n");
    if (head_end != std::string::npos && need == std::string::npos) {
      need = head_end + 4;
      const std::size_t cl = in.find("Content-Length: ");
      if (cl != std::string::npos && cl < head_end) need += std::stoul(in.substr(cl + 16));
    }
    if (need != std::string::npos && in.size() >= need) return in;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return in;
    in.append(buf, static_cast<std::size_t>(n));
  }
  return in;
}

inline bool SendAll(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Accepts up to `max_connections` connections on 127.0.0.1:<ephemeral>, each handled by
// `handler(fd, index)` on its own thread (the fd is closed after the handler returns).
// Handlers must end by themselves in bounded time; Stop() also shuts every socket down.
class RawServer {
 public:
  using Handler = std::function<void(int fd, int index)>;
  explicit RawServer(Handler handler, int max_connections = 16) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 64) != 0) return;
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this, max_connections] {
      for (int i = 0; i < max_connections && !stopping_; ++i) {
        pollfd p{listen_fd_, POLLIN, 0};
        while (!stopping_ && poll(&p, 1, 50) <= 0) {
        }
        if (stopping_) break;
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) break;
        {
          std::lock_guard lk(mu_);
          fds_.push_back(fd);
        }
        ++accepted_;
        workers_.emplace_back([this, fd, i] {
          handler_(fd, i);
          shutdown(fd, SHUT_RDWR);
        });
      }
    });
  }
  ~RawServer() { Stop(); }
  void Stop() {
    if (stopping_.exchange(true)) return;
    {
      std::lock_guard lk(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread& t : workers_) t.join();
    for (int fd : fds_) close(fd);
    close(listen_fd_);
  }
  int port() const { return port_; }
  std::string Url(const std::string& prefix = "/v1") const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix;
  }
  int accepted() const { return accepted_.load(); }
  bool stopping() const { return stopping_.load(); }

 private:
  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::vector<int> fds_;
  std::thread acceptor_;
  std::vector<std::thread> workers_;  // touched only by the acceptor, then by Stop() after it joined
};

}  // namespace retort::test
