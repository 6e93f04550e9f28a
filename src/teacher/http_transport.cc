// HttpTransport over cpp-httplib 0.11.4 (the only teacher file that includes httplib.h).
#include "teacher/http_transport.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>

#include <httplib.h>

namespace retort {
namespace {

using SteadyClock = std::chrono::steady_clock;

double MsSince(SteadyClock::time_point start, SteadyClock::time_point now) {
  return std::chrono::duration<double, std::milli>(now - start).count();
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

TransportError MapError(httplib::Error e) {
  switch (e) {
    case httplib::Error::Success: return TransportError::kNone;
    case httplib::Error::Connection:
    case httplib::Error::BindIPAddress:
    case httplib::Error::SSLConnection:
    case httplib::Error::SSLLoadingCerts:
    case httplib::Error::SSLServerVerification: return TransportError::kConnect;
    case httplib::Error::ConnectionTimeout: return TransportError::kTimeout;
    case httplib::Error::Read:
    case httplib::Error::Write: return TransportError::kReset;
    case httplib::Error::Canceled: return TransportError::kCancelled;
    default: return TransportError::kOther;
  }
}

class HttplibTransport : public HttpTransport {
 public:
  HttplibTransport(const TransportOptions& opts, ParsedUrl url, std::unique_ptr<httplib::ClientImpl> cli)
      : opts_(opts), url_(std::move(url)), cli_(std::move(cli)) {}

  HttpResponse Post(std::string_view path, const HeaderList& headers, const std::string& body,
                    const std::function<bool(std::string_view)>& on_chunk) override {
    return Send("POST", path, headers, &body, on_chunk);
  }

  HttpResponse Get(std::string_view path, const HeaderList& headers) override {
    return Send("GET", path, headers, nullptr, nullptr);
  }

  // httplib's stop() shuts the socket of a request in flight down, so Post returns an error.
  void Cancel() override { cli_->stop(); }

  std::string Host() const override {
    bool v6 = url_.host.find(':') != std::string::npos;
    return (v6 ? "[" + url_.host + "]" : url_.host) + ":" + std::to_string(url_.port);
  }

 private:
  HttpResponse Send(const char* method, std::string_view path, const HeaderList& headers, const std::string* body,
                    const std::function<bool(std::string_view)>& on_chunk);

  TransportOptions opts_;
  ParsedUrl url_;
  std::unique_ptr<httplib::ClientImpl> cli_;
};

HttpResponse HttplibTransport::Send(const char* method, std::string_view path, const HeaderList& headers,
                                    const std::string* body, const std::function<bool(std::string_view)>& on_chunk) {
  HttpResponse out;
  httplib::Request req;
  req.method = method;
  req.path = url_.prefix + std::string(path);
  for (const auto& [k, v] : headers) req.headers.emplace(k, v);
  if (body != nullptr) {
    req.body = *body;
    req.set_header("Content-Type", "application/json");
  }
  bool too_large = false, cancelled = false;
  const SteadyClock::time_point start = SteadyClock::now();
  SteadyClock::time_point last_activity = start;
  std::string acc;
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) -> bool {
    SteadyClock::time_point now = SteadyClock::now();
    if (out.first_byte_ms < 0) out.first_byte_ms = MsSince(start, now);
    last_activity = now;
    if (acc.size() + n > opts_.max_body_bytes) {
      too_large = true;
      return false;
    }
    acc.append(data, n);
    if (on_chunk && !on_chunk(std::string_view(data, n))) {
      cancelled = true;
      return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  bool ok = false;
  try {
    ok = cli_->send(req, res, err);
  } catch (const std::exception& e) {
    out.error = TransportError::kOther;
    out.error_detail = std::string("exception: ") + e.what();
    return out;
  }
  const SteadyClock::time_point end = SteadyClock::now();
  out.latency_ms = MsSince(start, end);
  if (res.status > 0) out.status = res.status;
  for (const auto& [k, v] : res.headers) out.headers.emplace_back(Lower(k), v);
  out.body = std::move(acc);
  if (ok) return out;
  if (too_large) {
    out.error = TransportError::kBodyTooLarge;
    out.error_detail = "body exceeded " + std::to_string(opts_.max_body_bytes) + " bytes";
  } else if (cancelled) {
    out.error = TransportError::kCancelled;
    out.error_detail = "cancelled by the body consumer";
  } else {
    out.error = MapError(err);
    if (out.error == TransportError::kNone) out.error = TransportError::kOther;
    // httplib reports a read timeout as a read error: tell them apart by the idle time.
    if (err == httplib::Error::Read && MsSince(last_activity, end) >= opts_.timeout_s * 1000.0 * 0.9)
      out.error = TransportError::kTimeout;
    out.error_detail = httplib::to_string(err) + " (" + Host() + ")";
  }
  return out;
}

}  // namespace

const char* TransportErrorName(TransportError e) {
  switch (e) {
    case TransportError::kNone: return "none";
    case TransportError::kConnect: return "connect";
    case TransportError::kTimeout: return "timeout";
    case TransportError::kReset: return "reset";
    case TransportError::kBodyTooLarge: return "body_too_large";
    case TransportError::kCancelled: return "cancelled";
    case TransportError::kOther: return "other";
  }
  return "other";
}

Result<std::unique_ptr<HttpTransport>> HttpTransport::Create(const TransportOptions& opts) {
  Result<ParsedUrl> url = ParseBaseUrl(opts.base_url);
  if (!url.ok()) return url.status();
  if (!(opts.timeout_s > 0) || !std::isfinite(opts.timeout_s))
    return Status::InvalidArgument("timeout_s: must be a positive number of seconds");
  std::unique_ptr<httplib::ClientImpl> cli;
  try {
    if (url->https) {
      auto ssl = std::make_unique<httplib::SSLClient>(url->host, url->port);
      if (!ssl->is_valid()) return Status::InvalidArgument("base_url: cannot initialise TLS");
      ssl->enable_server_certificate_verification(!opts.insecure);
      if (!opts.ca_file.empty()) ssl->set_ca_cert_path(opts.ca_file);
      cli = std::move(ssl);
    } else {
      cli = std::make_unique<httplib::ClientImpl>(url->host, url->port);
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("base_url: ") + e.what());
  }
  const auto secs = static_cast<time_t>(opts.timeout_s);
  const auto usecs = static_cast<time_t>((opts.timeout_s - static_cast<double>(secs)) * 1e6);
  cli->set_tcp_nodelay(true);  // without it small requests wait on Nagle + delayed ACK (~40 ms each)
  cli->set_keep_alive(true);
  cli->set_connection_timeout(secs, usecs);
  cli->set_read_timeout(secs, usecs);
  cli->set_write_timeout(secs, usecs);
  return std::unique_ptr<HttpTransport>(new HttplibTransport(opts, std::move(*url), std::move(cli)));
}

}  // namespace retort
