// HttpConnection: one TCP connection (optionally TLS) to a teacher, every read and write bounded
// by a deadline, with a small read buffer for line-oriented HTTP parsing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "retort/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace retort {

using SteadyTime = std::chrono::steady_clock::time_point;

// How an I/O call ended.
enum class IoResult {
  kOk,
  kEof,        // the peer closed the connection (a read returned 0 / TLS close_notify)
  kTimeout,    // the deadline passed
  kError,      // reset, broken pipe, TLS error
  kCancelled,  // Shutdown() was called from another thread
};

// TLS settings shared by the connections of one transport (an SSL_CTX). Not copyable.
class TlsContext {
 public:
  // Loads `ca_file` (PEM) or the system's trust store; `insecure` turns verification off.
  // InvalidArgument when the CA file cannot be loaded.
  static Result<std::unique_ptr<TlsContext>> Create(const std::string& ca_file, bool insecure);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

// One connection. Not safe for concurrent use, except Shutdown(), which any thread may call.
class HttpConnection {
 public:
  // Connects to host:port (each resolved address in turn) before `deadline`. TCP_NODELAY on.
  // Unavailable naming host:port and the reason (refused, unreachable, timed out, DNS).
  static Result<std::unique_ptr<HttpConnection>> Open(const std::string& host, int port, SteadyTime deadline);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // TLS handshake over the connection, verifying the certificate for `host` (a name or an IP
  // literal) unless the context is insecure. Unavailable with the TLS reason on failure.
  Status StartTls(const TlsContext& tls, const std::string& host, SteadyTime deadline);

  // Writes all of `data` before `deadline`.
  IoResult WriteAll(std::string_view data, SteadyTime deadline);
  // Reads one line ending in "\n" (returned with its line break) into *line, at most
  // `max_bytes` long (kError with *too_long set beyond that). kEof when the peer closed before
  // a complete line (what arrived of it is in *line).
  IoResult ReadLine(std::string* line, std::size_t max_bytes, SteadyTime deadline, bool* too_long);
  // Reads up to `max` bytes (at least one) into *out (appended). kEof when the peer closed.
  IoResult ReadSome(std::string* out, std::size_t max, SteadyTime deadline);

  // True if the connection can carry another request: nothing unread is buffered or waiting
  // and the peer has not closed it (checked without blocking).
  bool LooksReusable();
  // Wakes any I/O in progress on another thread (it returns kCancelled) and makes every later
  // call fail. Safe to call from any thread, any number of times.
  void Shutdown();
  // Requests served on this connection so far (maintained by the caller).
  int requests = 0;

 private:
  explicit HttpConnection(int fd) : fd_(fd) {}
  // Fills the read buffer with at least one byte.
  IoResult Fill(SteadyTime deadline);
  IoResult Wait(bool for_write, SteadyTime deadline);

  int fd_;
  SSL* ssl_ = nullptr;
  std::string buf_;       // bytes read but not yet consumed, from buf_pos_
  std::size_t buf_pos_ = 0;
  std::atomic<bool> shut_{false};
};

}  // namespace retort
