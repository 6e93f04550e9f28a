// RequestGuard: the checks every request to `retort serve` passes before routing — Host (DNS
// rebinding), Origin (cross-site pages), bearer token, Content-Type and body framing (issue #12).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace retort {

// What the guard reads of a request: its method, path and the headers that matter. A header
// that is absent is nullopt; `*_count` counts repeated headers (a repeated Host, Origin,
// Content-Length or Transfer-Encoding is refused rather than guessed at).
struct RequestHead {
  std::string method;
  std::string path;
  std::optional<std::string> host;
  int host_count = 0;
  std::optional<std::string> origin;
  int origin_count = 0;
  std::optional<std::string> authorization;
  std::optional<std::string> content_type;
  std::optional<std::string> content_length;
  int content_length_count = 0;
  std::optional<std::string> transfer_encoding;
  int transfer_encoding_count = 0;
  // The address the connection arrived at, as a Host value: "127.0.0.1:8377", "[::1]:8377".
  std::string local_authority;
};

// The configuration of the guard. Immutable once the router serves: safe for concurrent use.
struct GuardConfig {
  // Host values accepted (lower case, "name:port" or "name" for any port; IPv6 in brackets).
  // Besides these, the connection's own local address (RequestHead::local_authority) is
  // accepted: a browser only sends an IP literal as Host when it was told to use that IP.
  std::vector<std::string> allowed_hosts;
  // Bearer token every request except GET /healthz and GET of `public_paths` must carry;
  // "" = no token (loopback only).
  std::string token;
  // Paths whose GET/HEAD needs no token (the dashboard's static files: the page asks for the
  // token itself). Their Host and Origin are checked like every other request's.
  std::vector<std::string> public_paths;
  // Largest body accepted (Content-Length above it is refused before it is read).
  std::int64_t max_body_bytes = 64LL << 20;
};

// The verdict: status 0 = pass; otherwise the HTTP status, the error code and message of the
// JSON error body (never echoing a token). `close` = the connection must not be reused (the
// body was not read).
struct GuardVerdict {
  int status = 0;
  std::string code;
  std::string message;
  bool ok() const { return status == 0; }
};

// The Host values a server listening on `listen_host`:`port` answers to: "host:port" (IPv6
// bracketed); on loopback also localhost, 127.0.0.1 and [::1] with the port; "host" alone too
// when the port is 80. `extra` are --allow-host values, lower-cased.
std::vector<std::string> AllowedHosts(const std::string& listen_host, int port, const std::vector<std::string>& extra);

// Checks, in this order (the first failure is the verdict):
//   400 invalid_argument       no Host, or a repeated Host/Origin/Content-Length/Transfer-Encoding header,
//                              both Content-Length and Transfer-Encoding, a non-chunked
//                              Transfer-Encoding, a malformed Content-Length
//   405 method_not_allowed     a method other than GET, HEAD and POST
//   421 misdirected_request    Host is not the listen address or an --allow-host name (DNS rebinding)
//   403 forbidden              an Origin header other than http(s)://<an accepted Host> ("null" too)
//   401 unauthenticated        token configured and no "Authorization: Bearer <token>" (scheme
//                              case-insensitive, token compared in constant time)
//   415 unsupported_media_type a method other than GET/HEAD whose Content-Type is not JSON
//                              (uploads: JSON Lines), or that has a body without a Content-Type
//   413 payload_too_large      Content-Length above max_body_bytes
// GET /healthz passes the Host, Origin and token checks (it answers only {"status":"ok"}).
GuardVerdict CheckRequest(const GuardConfig& cfg, const RequestHead& head);

// True when `header` is "Bearer <token>" with the scheme in any case and the token equal to
// `token` (constant time in the token's length).
bool BearerMatches(const std::string& header, const std::string& token);
// Compares `a` and `b` in time that depends only on their lengths.
bool ConstantTimeEquals(const std::string& a, const std::string& b);
// The media type of a Content-Type value, lower case, without parameters or spaces.
std::string MediaType(const std::string& content_type);

}  // namespace retort
