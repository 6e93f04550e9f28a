// RequestGuard: Host, Origin, token, Content-Type and framing checks before routing.
#include "service/request_guard.h"

#include <algorithm>
#include <cctype>

namespace retort {

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

bool IsLoopbackName(const std::string& h) {
  return h == "127.0.0.1" || h == "localhost" || h == "::1" || h == "[::1]";
}

// "name:port" -> "name"; "[v6]:port" -> "[v6]"; no port -> unchanged.
std::string HostPart(const std::string& authority) {
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    return close == std::string::npos ? authority : authority.substr(0, close + 1);
  }
  return authority.substr(0, authority.find(':'));
}

bool HostAccepted(const GuardConfig& cfg, const std::string& local_authority, const std::string& value) {
  const std::string v = Lower(Trim(value));
  if (v.empty()) return false;
  for (unsigned char c : v)
    if (c <= 0x20 || c == 0x7f || c == '/' || c == '@' || c == '\\') return false;
  if (!local_authority.empty() && v == Lower(local_authority)) return true;
  const bool has_port = v.back() != ']' && HostPart(v) != v;
  for (const std::string& a : cfg.allowed_hosts) {
    if (v == a) return true;
    // An entry without a port accepts that name on any port.
    if (has_port && HostPart(a) == a && HostPart(v) == a) return true;
  }
  return false;
}

GuardVerdict Refuse(int status, const char* code, std::string message) {
  return GuardVerdict{status, code, std::move(message)};
}

bool IsUploadPath(const std::string& path) { return path.rfind("/v1/prompt-sets/", 0) == 0; }

}  // namespace

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  // Every byte of the longer string is visited; the length difference is folded in.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool BearerMatches(const std::string& header, const std::string& token) {
  // RFC 9110 §11.1: the scheme is case-insensitive; one or more spaces separate it from the token.
  const size_t sp = header.find(' ');
  const std::string scheme = header.substr(0, sp);
  const bool scheme_ok = Lower(scheme) == "bearer";
  std::string given = sp == std::string::npos ? "" : header.substr(sp);
  given = Trim(given);
  // Compare the token even when the scheme is wrong: the time does not tell which part failed.
  const bool token_ok = ConstantTimeEquals(given, token);
  return scheme_ok && token_ok && !token.empty();
}

std::string MediaType(const std::string& content_type) {
  return Lower(Trim(content_type.substr(0, content_type.find(';'))));
}

std::vector<std::string> AllowedHosts(const std::string& listen_host, int port, const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  const std::string p = std::to_string(port);
  auto add = [&](const std::string& host) {
    const std::string h = Lower(host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host);
    out.push_back(h + ":" + p);
    if (port == 80) out.push_back(h);
  };
  add(listen_host);
  if (IsLoopbackName(Lower(listen_host)) || Lower(listen_host).rfind("127.", 0) == 0)
    for (const char* h : {"localhost", "127.0.0.1", "::1"}) add(h);
  for (const std::string& e : extra) out.push_back(Lower(Trim(e)));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

GuardVerdict CheckRequest(const GuardConfig& cfg, const RequestHead& h) {
  // Framing first: a request whose body length is ambiguous is not read at all (smuggling).
  if (h.host_count > 1 || h.origin_count > 1 || h.content_length_count > 1 || h.transfer_encoding_count > 1)
    return Refuse(400, "invalid_argument", "a repeated Host, Origin, Content-Length or Transfer-Encoding header");
  if (h.content_length && h.transfer_encoding)
    return Refuse(400, "invalid_argument", "both Content-Length and Transfer-Encoding");
  if (h.transfer_encoding && Lower(Trim(*h.transfer_encoding)) != "chunked")
    return Refuse(400, "invalid_argument", "Transfer-Encoding: only chunked is accepted");
  std::int64_t length = 0;
  if (h.content_length) {
    const std::string v = Trim(*h.content_length);
    if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }))
      return Refuse(400, "invalid_argument", "malformed Content-Length");
    length = std::stoll(v);
  }
  const bool has_body = length > 0 || h.transfer_encoding.has_value();
  // The API has GET and POST routes only; anything else is answered before a body is read.
  if (h.method != "GET" && h.method != "HEAD" && h.method != "POST")
    return Refuse(405, "method_not_allowed", "method " + h.method.substr(0, 16) + " is not allowed (GET or POST)");
  const bool healthz = h.method == "GET" && h.path == "/healthz";
  if (!healthz) {
    if (!h.host) return Refuse(400, "invalid_argument", "a Host header is required");
    if (!HostAccepted(cfg, h.local_authority, *h.host))
      return Refuse(421, "misdirected_request",
                    "this server does not answer to that Host (DNS rebinding protection): use the listen address "
                    "or a name the operator allowed with --allow-host");
    if (h.origin) {
      const std::string o = Lower(Trim(*h.origin));
      std::string authority;
      if (o.rfind("http://", 0) == 0) authority = o.substr(7);
      else if (o.rfind("https://", 0) == 0) authority = o.substr(8);
      if (authority.empty() || !HostAccepted(cfg, h.local_authority, authority))
        return Refuse(403, "forbidden", "cross-origin requests are refused (Origin is not this server)");
    }
    const bool is_public = (h.method == "GET" || h.method == "HEAD") &&
                           std::find(cfg.public_paths.begin(), cfg.public_paths.end(), h.path) != cfg.public_paths.end();
    if (!cfg.token.empty() && !is_public && !(h.authorization && BearerMatches(*h.authorization, cfg.token)))
      return Refuse(401, "unauthenticated", "a valid 'Authorization: Bearer <token>' header is required");
  }
  if (h.method != "GET" && h.method != "HEAD") {
    // A browser sends text/plain, form and multipart bodies cross-site without a preflight;
    // JSON types it does not. A request without a body needs no type (curl -X POST .../pause).
    if (h.content_type || has_body) {
      const std::string t = h.content_type ? MediaType(*h.content_type) : "";
      const bool json = t == "application/json";
      const bool jsonl = json || t == "application/x-ndjson" || t == "application/jsonl" ||
                         t == "application/x-jsonlines" || t == "application/jsonlines";
      if (IsUploadPath(h.path) ? !jsonl : !json)
        return Refuse(415, "unsupported_media_type",
                      IsUploadPath(h.path)
                          ? "Content-Type must be application/x-ndjson (JSON Lines) or application/json"
                          : "Content-Type must be application/json");
    }
  }
  if (length > cfg.max_body_bytes)
    return Refuse(413, "payload_too_large",
                  "the request body exceeds --max-body-bytes (" + std::to_string(cfg.max_body_bytes) + " bytes)");
  return GuardVerdict{};
}

}  // namespace retort
