// ProxyConfig: which HTTP proxy (if any) a teacher connection goes through, from the usual
// HTTPS_PROXY / HTTP_PROXY / NO_PROXY environment variables.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "retort/status.h"

namespace retort {

// The proxy one teacher endpoint is reached through.
struct ProxyRoute {
  std::string host;  // without brackets
  int port = 0;
  // "Basic <base64>" when the proxy URL carried user:password, else "". A secret: never logged.
  std::string authorization;
  // The variable it came from ("HTTPS_PROXY", "http_proxy", ...), for the one log line.
  std::string source;

  // "host:port" (no credentials).
  std::string HostPort() const;
};

// Reads an environment variable; nullopt when unset. Injected so tests need not touch the
// process environment.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

// The process environment.
EnvLookup ProcessEnv();

// The proxy for a request to `scheme` ("http"/"https") `host`:`port`, following curl and Go:
//  - https targets use https_proxy / HTTPS_PROXY, http targets http_proxy / HTTP_PROXY (the
//    lower-case name wins when both are set);
//  - no_proxy / NO_PROXY: comma- or space-separated entries; "*" matches every host; an entry
//    matches the host itself and its subdomains ("example.com" and ".example.com" both match
//    "api.example.com"), IP literals match exactly, and "host:port" also requires the port;
//  - loopback targets (localhost, *.localhost, 127.0.0.0/8, ::1) are never proxied.
// Proxy URLs: "http://[user:password@]host[:port][/]" or a bare "host:port" (port default 80).
// nullopt = connect directly. InvalidArgument (naming the variable, never echoing its value,
// which may hold a password) for a proxy URL that cannot be used, e.g. an https:// proxy.
Result<std::optional<ProxyRoute>> ProxyFor(const std::string& scheme, const std::string& host, int port,
                                          const EnvLookup& env);

// True for localhost, *.localhost, 127.0.0.0/8 and ::1 (textual check of a host name or literal).
bool IsLoopbackHost(const std::string& host);

}  // namespace retort
