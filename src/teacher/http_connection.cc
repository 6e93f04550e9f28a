// HttpConnection: non-blocking sockets and OpenSSL driven by poll() against deadlines.
#include "teacher/http_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace retort {
namespace {

constexpr std::size_t kReadChunk = 16 * 1024;

int MillisUntil(SteadyTime deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000));
}

std::string TlsErrorText() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "TLS handshake failed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

bool IsIpLiteral(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

Result<std::unique_ptr<TlsContext>> TlsContext::Create(const std::string& ca_file, bool insecure) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Status::InvalidArgument("cannot initialise TLS: " + TlsErrorText());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
  if (insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                   : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
    if (ok != 1) {
      SSL_CTX_free(ctx);
      return Status::InvalidArgument((ca_file.empty() ? std::string("cannot load the system's CA certificates")
                                                      : "--ca-file '" + ca_file + "': cannot load it") +
                                     ": " + TlsErrorText());
    }
  }
  return std::unique_ptr<TlsContext>(new TlsContext(ctx));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Result<std::unique_ptr<HttpConnection>> HttpConnection::Open(const std::string& host, int port, SteadyTime deadline) {
  const std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
  if (gai != 0) return Status::Unavailable("cannot resolve " + where + ": " + gai_strerror(gai));
  std::string last = "no address";
  int fd = -1;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
    const int s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) {
      last = std::strerror(errno);
      continue;
    }
    int rc = connect(s, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{s, POLLOUT, 0};
      int n;
      do {
        n = poll(&p, 1, MillisUntil(deadline));
      } while (n < 0 && errno == EINTR);
      if (n == 0) {
        last = "connect timed out";
        close(s);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      last = std::strerror(errno);
      close(s);
      continue;
    }
    const int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // else small requests wait ~40 ms on delayed ACKs
    fd = s;
  }
  freeaddrinfo(list);
  if (fd < 0) return Status::Unavailable("cannot connect to " + where + ": " + last);
  return std::unique_ptr<HttpConnection>(new HttpConnection(fd));
}

HttpConnection::~HttpConnection() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  close(fd_);
}

IoResult HttpConnection::Wait(bool for_write, SteadyTime deadline) {
  for (;;) {
    if (shut_.load()) return IoResult::kCancelled;
    const int ms = MillisUntil(deadline);
    if (ms <= 0 && std::chrono::steady_clock::now() >= deadline) return IoResult::kTimeout;
    pollfd p{fd_, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    const int n = poll(&p, 1, ms);
    if (shut_.load()) return IoResult::kCancelled;
    if (n > 0) return IoResult::kOk;  // ready, or an error/hang-up the next call reports
    if (n < 0 && errno != EINTR) return IoResult::kError;
  }
}

Status HttpConnection::StartTls(const TlsContext& tls, const std::string& host, SteadyTime deadline) {
  ssl_ = SSL_new(tls.get());
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) return Status::Unavailable("TLS: " + TlsErrorText());
  if (SSL_CTX_get_verify_mode(tls.get()) != SSL_VERIFY_NONE) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = IsIpLiteral(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                                     : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    if (ok != 1) return Status::Unavailable("TLS: cannot set the host name to verify");
  }
  if (!IsIpLiteral(host)) SSL_set_tlsext_host_name(ssl_, host.c_str());
  for (;;) {
    ERR_clear_error();
    const int rc = SSL_connect(ssl_);
    if (rc == 1) return Status::OK();
    const int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      const IoResult w = Wait(e == SSL_ERROR_WANT_WRITE, deadline);
      if (w == IoResult::kTimeout) return Status::Unavailable("TLS handshake timed out");
      if (w != IoResult::kOk) return Status::Unavailable("TLS handshake interrupted");
      continue;
    }
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK)
      return Status::Unavailable(std::string("TLS: certificate verification failed: ") +
                                 X509_verify_cert_error_string(verify));
    return Status::Unavailable("TLS: " + TlsErrorText());
  }
}

IoResult HttpConnection::WriteAll(std::string_view data, SteadyTime deadline) {
  std::size_t off = 0;
  while (off < data.size()) {
    if (shut_.load()) return IoResult::kCancelled;
    const std::size_t want = data.size() - off;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_write(ssl_, data.data() + off, static_cast<int>(std::min<std::size_t>(want, 1 << 30)));
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        continue;
      }
      const int e = SSL_get_error(ssl_, n);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return IoResult::kError;
      const IoResult w = Wait(e == SSL_ERROR_WANT_WRITE, deadline);
      if (w != IoResult::kOk) return w;
    } else {
      const ssize_t n = send(fd_, data.data() + off, want, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const IoResult w = Wait(true, deadline);
        if (w != IoResult::kOk) return w;
        continue;
      }
      return IoResult::kError;
    }
  }
  return IoResult::kOk;
}

IoResult HttpConnection::Fill(SteadyTime deadline) {
  if (buf_pos_ > 0 && buf_pos_ == buf_.size()) {
    buf_.clear();
    buf_pos_ = 0;
  }
  char tmp[kReadChunk];
  for (;;) {
    if (shut_.load()) return IoResult::kCancelled;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, tmp, sizeof tmp);
      if (n > 0) {
        buf_.append(tmp, static_cast<std::size_t>(n));
        return IoResult::kOk;
      }
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_ZERO_RETURN) return IoResult::kEof;
      if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return IoResult::kEof;  // closed without close_notify
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return IoResult::kError;
      const IoResult w = Wait(e == SSL_ERROR_WANT_WRITE, deadline);
      if (w != IoResult::kOk) return w;
    } else {
      const ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n > 0) {
        buf_.append(tmp, static_cast<std::size_t>(n));
        return IoResult::kOk;
      }
      if (n == 0) return IoResult::kEof;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return IoResult::kError;
      const IoResult w = Wait(false, deadline);
      if (w != IoResult::kOk) return w;
    }
  }
}

IoResult HttpConnection::ReadLine(std::string* line, std::size_t max_bytes, SteadyTime deadline, bool* too_long) {
  line->clear();
  *too_long = false;
  for (;;) {
    const std::size_t nl = buf_.find('\n', buf_pos_);
    const std::size_t end = nl == std::string::npos ? buf_.size() : nl + 1;
    if (line->size() + (end - buf_pos_) > max_bytes) {
      *too_long = true;
      return IoResult::kError;
    }
    line->append(buf_, buf_pos_, end - buf_pos_);
    buf_pos_ = end;
    if (nl != std::string::npos) return IoResult::kOk;
    const IoResult r = Fill(deadline);
    if (r != IoResult::kOk) return r;
  }
}

IoResult HttpConnection::ReadSome(std::string* out, std::size_t max, SteadyTime deadline) {
  if (buf_pos_ == buf_.size()) {
    const IoResult r = Fill(deadline);
    if (r != IoResult::kOk) return r;
  }
  const std::size_t n = std::min(max, buf_.size() - buf_pos_);
  out->append(buf_, buf_pos_, n);
  buf_pos_ += n;
  return IoResult::kOk;
}

bool HttpConnection::LooksReusable() {
  if (shut_.load() || buf_pos_ != buf_.size()) return false;
  if (ssl_ != nullptr && SSL_pending(ssl_) > 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 0) == 0) return true;  // nothing arrived: still open
  if (ssl_ == nullptr) return false;     // data or EOF on an idle connection: not ours to reuse
  // TLS 1.3 servers send session tickets after the handshake: read them; only application data
  // or a close makes the connection unusable.
  char c;
  ERR_clear_error();
  const int n = SSL_peek(ssl_, &c, 1);
  if (n > 0) return false;
  const int e = SSL_get_error(ssl_, n);
  return e == SSL_ERROR_WANT_READ;
}

void HttpConnection::Shutdown() {
  if (!shut_.exchange(true)) ::shutdown(fd_, SHUT_RDWR);
}

}  // namespace retort
