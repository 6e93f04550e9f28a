// HttpTransport: HTTP/1.1 over HttpConnection, every response byte bounded in size and time.
#include "teacher/http_transport.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>

#include "teacher/http_connection.h"
#include "teacher/proxy_config.h"

namespace retort {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kChunkSizeLineMax = 1024;

double MsSince(SteadyTime start, SteadyTime now) { return std::chrono::duration<double, std::milli>(now - start).count(); }

SteadyTime After(SteadyTime from, double seconds) {
  return from + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct ParsedUrl {
  bool https = false;
  std::string host;  // without brackets
  int port = 0;
  std::string prefix;  // "" or "/v1" (no trailing slash)
};

// Parses "scheme://host[:port][/prefix]". Messages never echo the URL (it may hold secrets).
Result<ParsedUrl> ParseBaseUrl(const std::string& url) {
  ParsedUrl u;
  std::size_t sep = url.find("://");
  if (sep == std::string::npos) return Status::InvalidArgument("base_url: expected scheme://host[:port][/path]");
  std::string scheme = Lower(url.substr(0, sep));
  if (scheme == "https") {
    u.https = true;
  } else if (scheme != "http") {
    return Status::InvalidArgument("base_url: unsupported scheme '" + scheme.substr(0, 16) + "' (http or https)");
  }
  std::string rest = url.substr(sep + 3);
  if (rest.find_first_of("?#") != std::string::npos)
    return Status::InvalidArgument("base_url: query strings and fragments are not supported");
  std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string::npos)
    return Status::InvalidArgument("base_url: credentials in the URL are not supported");
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("base_url: unterminated IPv6 address");
    u.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::InvalidArgument("base_url: junk after IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) return Status::InvalidArgument("base_url: empty port");
    }
  } else {
    std::size_t colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Status::InvalidArgument("base_url: empty port");
    }
  }
  if (u.host.empty()) return Status::InvalidArgument("base_url: missing host");
  for (char c : u.host)
    if (std::isspace(static_cast<unsigned char>(c)) || c == '/') return Status::InvalidArgument("base_url: bad host");
  u.port = u.https ? 443 : 80;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), ::isdigit))
      return Status::InvalidArgument("base_url: port must be a number");
    u.port = std::stoi(port_text);
    if (u.port < 1 || u.port > 65535) return Status::InvalidArgument("base_url: port out of range");
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  u.prefix = path;
  return u;
}


std::string Trim(std::string_view v) {
  std::size_t b = 0, e = v.size();
  while (b < e && (v[b] == ' ' || v[b] == '\t')) ++b;
  while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' || v[e - 1] == '\n')) --e;
  return std::string(v.substr(b, e - b));
}

bool IsBlankLine(const std::string& line) { return line == "\r\n" || line == "\n"; }

// Parses "HTTP/1.x NNN reason". False when malformed.
bool ParseStatusLine(const std::string& line, int* status, bool* http11) {
  if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
    return false;
  for (int i = 9; i < 12; ++i)
    if (!std::isdigit(static_cast<unsigned char>(line[static_cast<std::size_t>(i)]))) return false;
  if (line.size() > 12 && line[12] != ' ' && line[12] != '\r' && line[12] != '\n') return false;
  *status = std::stoi(line.substr(9, 3));
  *http11 = line[7] == '1';
  return *status >= 100;
}

bool HasToken(const std::string& value, const char* token) {
  std::string v = Lower(value), t = token;
  std::size_t pos = 0;
  while (pos <= v.size()) {
    std::size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    if (Trim(std::string_view(v).substr(pos, comma - pos)) == t) return true;
    pos = comma + 1;
  }
  return false;
}

// What one try on one connection ended with.
enum class TryEnd {
  kDone,        // `out` is final (a response, or an error to report)
  kResendFresh, // failed on a reused connection before any response byte: send again on a new one
};

class Http11Transport : public HttpTransport {
 public:
  Http11Transport(const TransportOptions& opts, ParsedUrl url, std::optional<ProxyRoute> proxy,
                  std::unique_ptr<TlsContext> tls)
      : opts_(opts), url_(std::move(url)), proxy_(std::move(proxy)), tls_(std::move(tls)) {}
  ~Http11Transport() override { Drop(); }

  HttpResponse Post(std::string_view path, const HeaderList& headers, const std::string& body,
                    const std::function<bool(std::string_view)>& on_chunk,
                    const std::function<void(const HttpResponse&)>& on_head) override {
    return Send("POST", path, headers, &body, on_chunk, nullptr, false, on_head);
  }
  HttpResponse Get(std::string_view path, const HeaderList& headers) override {
    return Send("GET", path, headers, nullptr, nullptr);
  }
  HttpResponse PostStream(std::string_view path, const HeaderList& headers, const StreamedBody& body) override {
    return Send("POST", path, headers, nullptr, nullptr, &body);
  }
  HttpResponse GetStream(std::string_view path, const HeaderList& headers,
                         const std::function<bool(std::string_view)>& on_chunk) override {
    return Send("GET", path, headers, nullptr, on_chunk, nullptr, /*stream_ok_body=*/true);
  }
  void Cancel() override {
    std::lock_guard lk(conn_mu_);
    cancel_ = true;
    if (conn_) conn_->Shutdown();
  }
  void CloseIdle() override { Drop(); }
  std::string Host() const override { return HostPort(url_.host, url_.port); }
  bool Connected() const override { return conn_ != nullptr; }
  double AwaitingResponseMs() const override {
    const std::int64_t since = awaiting_since_ns_.load();
    if (since == 0) return -1;
    return static_cast<double>(SteadyClock::now().time_since_epoch().count() - since) / 1e6;
  }
  std::string Route() const override {
    return proxy_ ? "proxy " + proxy_->HostPort() + " (from $" + proxy_->source + ")" : "direct";
  }

 private:
  static std::string HostPort(const std::string& host, int port) {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
  void Drop() {
    {
      std::lock_guard lk(conn_mu_);
      if (!conn_) return;
      conn_.reset();
    }
    if (opts_.after_close) opts_.after_close();
  }
  // Opens a connection to the endpoint (through the proxy when there is one). On failure sets
  // out.error / error_detail and returns false.
  bool Connect(SteadyTime deadline, HttpResponse& out);
  HttpResponse Send(const char* method, std::string_view path, const HeaderList& headers, const std::string* body,
                    const std::function<bool(std::string_view)>& on_chunk, const StreamedBody* streamed = nullptr,
                    bool stream_ok_body = false, const std::function<void(const HttpResponse&)>& on_head = nullptr);
  TryEnd TryOnce(const char* method, const std::string& request, const StreamedBody* streamed, bool reused,
                 SteadyTime start, SteadyTime deadline, const std::function<bool(std::string_view)>& on_chunk,
                 bool stream_ok_body, const std::function<void(const HttpResponse&)>& on_head, HttpResponse& out);
  // Writes the file and tail of a streamed body after its head. False with out.error set.
  bool WriteStreamed(const StreamedBody& b, SteadyTime deadline, HttpResponse& out);
  // Reads a status line and headers into out (skipping 1xx answers). False with out.error set.
  bool ReadHead(SteadyTime start, SteadyTime deadline, bool reused, bool* nothing_arrived, bool* http11,
                HttpResponse& out);
  SteadyTime Until(SteadyTime deadline) const {
    return std::min(deadline, After(SteadyClock::now(), idle_s()));
  }
  double idle_s() const { return opts_.idle_timeout_s > 0 ? std::min(opts_.idle_timeout_s, opts_.timeout_s) : opts_.timeout_s; }
  // Sets out.error from an I/O result (not kOk).
  void IoFailed(IoResult r, SteadyTime deadline, const char* what, HttpResponse& out) const;

  const TransportOptions opts_;
  const ParsedUrl url_;
  const std::optional<ProxyRoute> proxy_;
  const std::unique_ptr<TlsContext> tls_;  // https only

  std::mutex conn_mu_;  // guards the conn_ pointer against Cancel() on another thread
  std::unique_ptr<HttpConnection> conn_;
  std::atomic<bool> cancel_{false};
  // steady_clock nanoseconds when the request in progress was started; 0 once its response began.
  std::atomic<std::int64_t> awaiting_since_ns_{0};
};

void Http11Transport::IoFailed(IoResult r, SteadyTime deadline, const char* what, HttpResponse& out) const {
  const std::string where = " (" + Host() + ")";
  switch (r) {
    case IoResult::kTimeout:
      out.error = TransportError::kTimeout;
      out.error_detail = SteadyClock::now() >= deadline
                             ? "request deadline of " + std::to_string(static_cast<long>(opts_.timeout_s)) + " s passed while " + what + where
                             : "no data for " + std::to_string(static_cast<long>(idle_s())) + " s while " + what + where;
      return;
    case IoResult::kCancelled:
      out.error = TransportError::kCancelled;
      out.error_detail = std::string("cancelled while ") + what;
      return;
    case IoResult::kEof:
      out.error = TransportError::kReset;
      out.error_detail = std::string("connection closed by the server while ") + what + where;
      return;
    default:
      out.error = TransportError::kReset;
      out.error_detail = std::string("connection reset while ") + what + where;
      return;
  }
}

bool Http11Transport::Connect(SteadyTime deadline, HttpResponse& out) {
  const SteadyTime connect_by = std::min(deadline, After(SteadyClock::now(), opts_.connect_timeout_s));
  const std::string& host = proxy_ ? proxy_->host : url_.host;
  const int port = proxy_ ? proxy_->port : url_.port;
  if (opts_.before_connect) opts_.before_connect();
  Result<std::unique_ptr<HttpConnection>> c = HttpConnection::Open(host, port, connect_by);
  if (!c.ok()) {
    if (opts_.after_close) opts_.after_close();
    out.error = TransportError::kConnect;
    out.error_detail = c.status().message() + (proxy_ ? " (the proxy from $" + proxy_->source + ")" : "");
    return false;
  }
  {
    std::lock_guard lk(conn_mu_);
    conn_ = std::move(*c);
    if (cancel_) conn_->Shutdown();
  }
  if (proxy_ && url_.https) {  // a tunnel: TLS stays end to end
    std::string req = "CONNECT " + Host() + " HTTP/1.1\r\nHost: " + Host() + "\r\n";
    if (!proxy_->authorization.empty()) req += "Proxy-Authorization: " + proxy_->authorization + "\r\n";
    req += "\r\n";
    IoResult w = conn_->WriteAll(req, connect_by);
    std::string line;
    bool too_long = false;
    int status = 0;
    bool http11 = false;
    if (w == IoResult::kOk) w = conn_->ReadLine(&line, opts_.max_header_bytes, connect_by, &too_long);
    std::size_t total = line.size();
    bool ok = w == IoResult::kOk && ParseStatusLine(line, &status, &http11) && status == 200;
    while (ok) {  // the proxy's headers
      w = conn_->ReadLine(&line, opts_.max_header_bytes, connect_by, &too_long);
      total += line.size();
      if (w != IoResult::kOk || total > opts_.max_header_bytes) ok = false;
      else if (IsBlankLine(line)) break;
    }
    if (!ok) {
      Drop();
      out.error = TransportError::kConnect;
      out.error_detail = "the proxy " + proxy_->HostPort() + " (from $" + proxy_->source + ") did not open a tunnel to " +
                         Host() + (status > 0 ? ": HTTP " + std::to_string(status) : "");
      return false;
    }
  }
  if (url_.https) {
    Status st = conn_->StartTls(*tls_, url_.host, connect_by);
    if (!st.ok()) {
      Drop();
      out.error = TransportError::kConnect;
      out.error_detail = st.message() + " (" + Host() + ")";
      return false;
    }
  }
  return true;
}

bool Http11Transport::ReadHead(SteadyTime start, SteadyTime deadline, bool reused, bool* nothing_arrived,
                               bool* http11, HttpResponse& out) {
  std::size_t total = 0;
  std::string line;
  bool too_long = false;
  *nothing_arrived = true;
  for (;;) {  // 1xx answers come before the real one
    IoResult r = conn_->ReadLine(&line, opts_.max_header_bytes - std::min(total, opts_.max_header_bytes),
                                 Until(deadline), &too_long);
    if (!line.empty() && out.response_start_ms < 0) {
      out.response_start_ms = MsSince(start, SteadyClock::now());
      awaiting_since_ns_ = 0;
    }
    if (!line.empty()) *nothing_arrived = false;
    if (r != IoResult::kOk) {
      if (too_long) {
        out.error = TransportError::kHeadersTooLarge;
        out.error_detail = "response headers exceeded " + std::to_string(opts_.max_header_bytes) + " bytes";
      } else {
        IoFailed(r, deadline, reused && *nothing_arrived ? "waiting for the response on a reused connection"
                                                         : "reading the status line", out);
      }
      return false;
    }
    total += line.size();
    if (!ParseStatusLine(line, &out.status, http11)) {
      out.error = TransportError::kOther;
      out.error_detail = "malformed status line from " + Host();
      return false;
    }
    out.headers.clear();
    for (;;) {
      r = conn_->ReadLine(&line, opts_.max_header_bytes - std::min(total, opts_.max_header_bytes), Until(deadline),
                          &too_long);
      if (r != IoResult::kOk) {
        if (too_long) {
          out.error = TransportError::kHeadersTooLarge;
          out.error_detail = "response headers exceeded " + std::to_string(opts_.max_header_bytes) + " bytes";
        } else {
          IoFailed(r, deadline, "reading the response headers", out);
        }
        return false;
      }
      total += line.size();
      if (IsBlankLine(line)) break;
      const std::size_t colon = line.find(':');
      if (colon == 0 || colon == std::string::npos || line[0] == ' ' || line[0] == '\t') {
        out.error = TransportError::kOther;
        out.error_detail = "malformed header line from " + Host();
        return false;
      }
      out.headers.emplace_back(Lower(line.substr(0, colon)), Trim(std::string_view(line).substr(colon + 1)));
    }
    if (out.status >= 200 || out.status == 101) return true;
  }
}

bool Http11Transport::WriteStreamed(const StreamedBody& b, SteadyTime deadline, HttpResponse& out) {
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> f(std::fopen(b.file_path.c_str(), "rb"));
  if (!f) {
    out.error = TransportError::kOther;
    out.error_detail = "cannot read '" + b.file_path + "': " + std::strerror(errno);
    return false;
  }
  std::string buf(256 * 1024, '\0');
  for (;;) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n > 0) {
      const IoResult w = conn_->WriteAll(std::string_view(buf.data(), n), Until(deadline));
      if (w != IoResult::kOk) {
        IoFailed(w, deadline, "sending the request body", out);
        return false;
      }
    }
    if (n < buf.size()) break;
  }
  if (std::ferror(f.get())) {
    out.error = TransportError::kOther;
    out.error_detail = "cannot read '" + b.file_path + "'";
    return false;
  }
  const IoResult w = conn_->WriteAll(b.tail, Until(deadline));
  if (w != IoResult::kOk) {
    IoFailed(w, deadline, "sending the request body", out);
    return false;
  }
  return true;
}

TryEnd Http11Transport::TryOnce(const char* method, const std::string& request, const StreamedBody* streamed,
                                bool reused, SteadyTime start, SteadyTime deadline,
                                const std::function<bool(std::string_view)>& on_chunk, bool stream_ok_body,
                                const std::function<void(const HttpResponse&)>& on_head, HttpResponse& out) {
  out.reused_connection = reused;
  IoResult w = conn_->WriteAll(request, Until(deadline));
  if (w != IoResult::kOk) {
    IoFailed(w, deadline, "sending the request", out);
    return reused && (w == IoResult::kError || w == IoResult::kEof) ? TryEnd::kResendFresh : TryEnd::kDone;
  }
  if (streamed != nullptr && !WriteStreamed(*streamed, deadline, out)) return TryEnd::kDone;
  bool nothing_arrived = true, http11 = true;
  if (!ReadHead(start, deadline, reused, &nothing_arrived, &http11, out)) {
    const bool dead = out.error == TransportError::kReset;
    if (reused && nothing_arrived && dead) return TryEnd::kResendFresh;
    return TryEnd::kDone;
  }

  // Body framing (RFC 9112 §6.3).
  bool close_after = !http11;
  std::optional<std::uint64_t> length;
  bool chunked = false, until_close = false, has_te = false, bad_length = false;
  for (const auto& [k, v] : out.headers) {
    if (k == "connection") {
      if (HasToken(v, "close")) close_after = true;
      if (!http11 && HasToken(v, "keep-alive")) close_after = false;
    } else if (k == "transfer-encoding") {
      has_te = true;
      chunked = HasToken(v, "chunked");
    } else if (k == "content-length") {
      const std::string t = Trim(v);
      if (t.empty() || t.size() > 19 || !std::all_of(t.begin(), t.end(), ::isdigit)) {
        bad_length = true;
      } else {
        const std::uint64_t n = std::stoull(t);
        if (length && *length != n) bad_length = true;
        length = n;
      }
    }
  }
  const bool no_body = std::string_view(method) == "HEAD" || out.status == 204 || out.status == 304 ||
                       out.status < 200;
  if (has_te && !chunked) until_close = true;
  if (!no_body && !has_te && bad_length) {
    out.error = TransportError::kOther;
    out.error_detail = "malformed Content-Length from " + Host();
    return TryEnd::kDone;
  }
  if (!no_body && !has_te && !length) until_close = true;
  if (on_head) on_head(out);

  const bool to_consumer_only = stream_ok_body && out.status == 200;
  auto deliver = [&](std::string_view data) {
    if (data.empty()) return true;
    if (out.first_byte_ms < 0) out.first_byte_ms = MsSince(start, SteadyClock::now());
    if (to_consumer_only) {
      if (!on_chunk(data)) {
        out.error = TransportError::kCancelled;
        out.error_detail = "cancelled by the body consumer";
        return false;
      }
      return true;
    }
    if (out.body.size() + data.size() > opts_.max_body_bytes) {
      out.error = TransportError::kBodyTooLarge;
      out.error_detail = "body exceeded " + std::to_string(opts_.max_body_bytes) + " bytes";
      return false;
    }
    out.body.append(data);
    if (on_chunk && !on_chunk(data)) {
      out.error = TransportError::kCancelled;
      out.error_detail = "cancelled by the body consumer";
      return false;
    }
    return true;
  };
  std::string piece;
  auto read_exactly = [&](std::uint64_t n, const char* what) {
    while (n > 0) {
      piece.clear();
      const IoResult r = conn_->ReadSome(&piece, static_cast<std::size_t>(std::min<std::uint64_t>(n, 64 * 1024)),
                                         Until(deadline));
      if (r != IoResult::kOk) {
        IoFailed(r, deadline, what, out);
        return false;
      }
      n -= piece.size();
      if (!deliver(piece)) return false;
    }
    return true;
  };

  if (no_body) {
    // nothing to read
  } else if (chunked) {
    std::string line;
    bool too_long = false;
    std::size_t trailer_bytes = 0;
    for (;;) {
      IoResult r = conn_->ReadLine(&line, kChunkSizeLineMax, Until(deadline), &too_long);
      if (r != IoResult::kOk) {
        if (too_long) {
          out.error = TransportError::kOther;
          out.error_detail = "malformed chunk size line from " + Host();
        } else {
          IoFailed(r, deadline, "reading a chunk size", out);
        }
        return TryEnd::kDone;
      }
      std::string hex = Trim(line.substr(0, line.find(';')));
      if (hex.empty() || hex.size() > 15 || !std::all_of(hex.begin(), hex.end(), ::isxdigit)) {
        out.error = TransportError::kOther;
        out.error_detail = "malformed chunk size line from " + Host();
        return TryEnd::kDone;
      }
      const std::uint64_t size = std::stoull(hex, nullptr, 16);
      if (size == 0) {
        for (;;) {  // trailers, bounded like headers
          r = conn_->ReadLine(&line, opts_.max_header_bytes, Until(deadline), &too_long);
          trailer_bytes += line.size();
          if (r != IoResult::kOk || trailer_bytes > opts_.max_header_bytes) {
            if (r == IoResult::kOk || too_long) {
              out.error = TransportError::kHeadersTooLarge;
              out.error_detail = "response trailers exceeded " + std::to_string(opts_.max_header_bytes) + " bytes";
            } else {
              IoFailed(r, deadline, "reading the trailers", out);
            }
            return TryEnd::kDone;
          }
          if (IsBlankLine(line)) break;
        }
        break;
      }
      if (!read_exactly(size, "reading a chunk")) return TryEnd::kDone;
      r = conn_->ReadLine(&line, 2, Until(deadline), &too_long);
      if (r != IoResult::kOk || !IsBlankLine(line)) {
        if (r != IoResult::kOk && !too_long) {
          IoFailed(r, deadline, "reading a chunk", out);
        } else {
          out.error = TransportError::kOther;
          out.error_detail = "malformed chunk framing from " + Host();
        }
        return TryEnd::kDone;
      }
    }
  } else if (length) {
    if (!read_exactly(*length, "reading the body")) return TryEnd::kDone;
  } else if (until_close) {
    close_after = true;
    for (;;) {
      piece.clear();
      const IoResult r = conn_->ReadSome(&piece, 64 * 1024, Until(deadline));
      if (r == IoResult::kEof) break;
      if (r != IoResult::kOk) {
        IoFailed(r, deadline, "reading the body", out);
        return TryEnd::kDone;
      }
      if (!deliver(piece)) return TryEnd::kDone;
    }
  }
  if (close_after) {
    Drop();
  } else {
    ++conn_->requests;
  }
  return TryEnd::kDone;
}

HttpResponse Http11Transport::Send(const char* method, std::string_view path, const HeaderList& headers,
                                   const std::string* body, const std::function<bool(std::string_view)>& on_chunk,
                                   const StreamedBody* streamed, bool stream_ok_body,
                                   const std::function<void(const HttpResponse&)>& on_head) {
  const SteadyTime start = SteadyClock::now();
  const SteadyTime deadline = After(start, opts_.timeout_s);
  static_assert(std::is_same_v<SteadyClock::duration, std::chrono::nanoseconds>);
  const std::int64_t start_ns = std::max<std::int64_t>(1, start.time_since_epoch().count());
  awaiting_since_ns_ = start_ns;
  struct NotAwaiting {
    std::atomic<std::int64_t>& v;
    ~NotAwaiting() { v = 0; }
  } not_awaiting{awaiting_since_ns_};
  HttpResponse out;
  if (cancel_.exchange(false)) {
    Drop();
    out.error = TransportError::kCancelled;
    out.error_detail = "cancelled before the request was sent";
    return out;
  }

  std::string request = method;
  request += ' ';
  if (proxy_ && !url_.https) request += "http://" + Host();  // absolute form through a plain proxy
  request += url_.prefix;
  request.append(path);
  request += " HTTP/1.1\r\n";
  bool has_accept = false, has_agent = false;
  for (const auto& [k, v] : headers) {
    if (k.find_first_of("\r\n:") != std::string::npos || v.find_first_of("\r\n") != std::string::npos) {
      out.error = TransportError::kOther;
      out.error_detail = "a request header name or value contains a line break";
      return out;
    }
    const std::string lk = Lower(k);
    if (lk == "accept") has_accept = true;
    if (lk == "user-agent") has_agent = true;
    if (lk == "host" || lk == "content-length" || lk == "content-type" || lk == "connection") continue;
    request += k + ": " + v + "\r\n";
  }
  const bool default_port = url_.port == (url_.https ? 443 : 80);
  request += "Host: " + (default_port ? (url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host)
                                      : Host()) + "\r\n";
  if (!has_agent) request += "User-Agent: retort\r\n";
  if (!has_accept) request += "Accept: */*\r\n";
  if (proxy_ && !url_.https && !proxy_->authorization.empty())
    request += "Proxy-Authorization: " + proxy_->authorization + "\r\n";
  if (body != nullptr) {
    request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body->size()) + "\r\n";
  } else if (streamed != nullptr) {
    std::FILE* f = std::fopen(streamed->file_path.c_str(), "rb");
    long size = -1;
    if (f != nullptr) {
      if (std::fseek(f, 0, SEEK_END) == 0) size = std::ftell(f);
      std::fclose(f);
    }
    if (size < 0 || streamed->content_type.find_first_of("\r\n") != std::string::npos) {
      out.error = TransportError::kOther;
      out.error_detail = "cannot read '" + streamed->file_path + "'";
      return out;
    }
    const std::uint64_t length = streamed->head.size() + static_cast<std::uint64_t>(size) + streamed->tail.size();
    request += "Content-Type: " + streamed->content_type + "\r\nContent-Length: " + std::to_string(length) + "\r\n";
  }
  request += "\r\n";
  if (body != nullptr) request += *body;
  if (streamed != nullptr) request += streamed->head;

  for (int round = 0; round < 2; ++round) {
    bool reused = false;
    if (conn_ && conn_->requests > 0 && conn_->LooksReusable()) {
      reused = true;
    } else if (conn_) {
      Drop();
    }
    if (!conn_ && !Connect(deadline, out)) break;
    awaiting_since_ns_ = reused ? 0 : start_ns;  // a served connection's thread is already ours
    const TryEnd end = TryOnce(method, request, streamed, reused, start, deadline, on_chunk, stream_ok_body, on_head, out);
    if (end == TryEnd::kResendFresh && round == 0 && !cancel_) {
      Drop();
      out = HttpResponse{};
      out.resent = true;
      continue;
    }
    break;
  }
  if (out.error != TransportError::kNone) Drop();  // a connection in an unknown state is not reused
  if (cancel_.exchange(false) && out.error == TransportError::kReset) {
    out.error = TransportError::kCancelled;
    out.error_detail = "cancelled";
  }
  out.latency_ms = MsSince(start, SteadyClock::now());
  return out;
}

}  // namespace

bool IsCleartextToRemote(const std::string& base_url) {
  Result<ParsedUrl> u = ParseBaseUrl(base_url);
  return u.ok() && !u->https && !IsLoopbackHost(u->host);
}

const char* TransportErrorName(TransportError e) {
  switch (e) {
    case TransportError::kNone: return "none";
    case TransportError::kConnect: return "connect";
    case TransportError::kTimeout: return "timeout";
    case TransportError::kReset: return "reset";
    case TransportError::kBodyTooLarge: return "body_too_large";
    case TransportError::kCancelled: return "cancelled";
    case TransportError::kOther: return "other";
    case TransportError::kHeadersTooLarge: return "headers_too_large";
  }
  return "other";
}

Result<std::unique_ptr<HttpTransport>> HttpTransport::Create(const TransportOptions& opts) {
  static const bool sigpipe_ignored = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)sigpipe_ignored;
  Result<ParsedUrl> url = ParseBaseUrl(opts.base_url);
  if (!url.ok()) return url.status();
  for (const auto& [name, v] : {std::pair<const char*, double>{"timeout_s", opts.timeout_s},
                                {"connect_timeout_s", opts.connect_timeout_s}}) {
    if (!(v > 0) || !std::isfinite(v)) return Status::InvalidArgument(std::string(name) + ": must be a positive number of seconds");
  }
  if (!(opts.idle_timeout_s >= 0) || !std::isfinite(opts.idle_timeout_s))
    return Status::InvalidArgument("idle_timeout_s: must be >= 0 seconds");
  std::optional<ProxyRoute> proxy;
  if (opts.use_env_proxy) {
    Result<std::optional<ProxyRoute>> p = ProxyFor(url->https ? "https" : "http", url->host, url->port,
                                                       opts.env ? opts.env : ProcessEnv());
    if (!p.ok()) return p.status();
    proxy = std::move(*p);
  }
  std::unique_ptr<TlsContext> tls;
  if (url->https) {
    Result<std::unique_ptr<TlsContext>> t = TlsContext::Create(opts.ca_file, opts.insecure);
    if (!t.ok()) return t.status();
    tls = std::move(*t);
  }
  return std::unique_ptr<HttpTransport>(new Http11Transport(opts, std::move(*url), std::move(proxy), std::move(tls)));
}

}  // namespace retort
