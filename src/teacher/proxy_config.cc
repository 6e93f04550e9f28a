// ProxyConfig: HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as curl and Go read them.
#include "teacher/proxy_config.h"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <vector>

namespace retort {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<std::string> FirstSet(const EnvLookup& env, const char* lower, const char* upper,
                                    std::string* source) {
  for (const char* name : {lower, upper}) {
    std::optional<std::string> v = env(name);
    if (v && !v->empty()) {
      *source = name;
      return v;
    }
  }
  return std::nullopt;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string Base64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(std::max(0, n)));
  return out;
}

// Splits "host[:port]" or "[v6][:port]"; port 0 when absent. False when malformed.
bool SplitHostPort(const std::string& authority, std::string* host, int* port) {
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) return false;
    *host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port_text = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    if (colon != std::string::npos && authority.find(':') != colon) {  // a bare IPv6 literal
      *host = authority;
    } else {
      *host = authority.substr(0, colon);
      if (colon != std::string::npos) port_text = authority.substr(colon + 1);
    }
  }
  *port = 0;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), ::isdigit)) return false;
    *port = std::atoi(port_text.c_str());
    if (*port < 1 || *port > 65535) return false;
  }
  return !host->empty();
}

bool NoProxyMatches(const std::string& list, const std::string& host, int port) {
  const std::string h = Lower(host);
  std::string entry;
  auto matches = [&](std::string e) {
    if (e.empty()) return false;
    if (e == "*") return true;
    int eport = 0;
    std::string ehost;
    if (!SplitHostPort(e, &ehost, &eport)) ehost = e;
    if (eport != 0 && eport != port) return false;
    ehost = Lower(ehost);
    while (!ehost.empty() && ehost.front() == '.') ehost.erase(0, 1);
    if (ehost.empty()) return false;
    if (h == ehost) return true;
    return h.size() > ehost.size() && h.compare(h.size() - ehost.size(), ehost.size(), ehost) == 0 &&
           h[h.size() - ehost.size() - 1] == '.';
  };
  for (char c : list + ",") {
    if (c == ',' || c == ' ' || c == '\t') {
      if (matches(entry)) return true;
      entry.clear();
    } else {
      entry += c;
    }
  }
  return false;
}

}  // namespace

std::string ProxyRoute::HostPort() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

bool IsLoopbackHost(const std::string& host) {
  const std::string h = Lower(host);
  if (h == "localhost" || (h.size() > 10 && h.compare(h.size() - 10, 10, ".localhost") == 0)) return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

Result<std::optional<ProxyRoute>> ProxyFor(const std::string& scheme, const std::string& host, int port,
                                          const EnvLookup& env) {
  if (IsLoopbackHost(host)) return std::optional<ProxyRoute>();
  std::string source;
  const std::optional<std::string> url = Lower(scheme) == "https"
                                             ? FirstSet(env, "https_proxy", "HTTPS_PROXY", &source)
                                             : FirstSet(env, "http_proxy", "HTTP_PROXY", &source);
  if (!url) return std::optional<ProxyRoute>();
  std::string ignored;
  if (const std::optional<std::string> no = FirstSet(env, "no_proxy", "NO_PROXY", &ignored);
      no && NoProxyMatches(*no, host, port))
    return std::optional<ProxyRoute>();

  const std::string bad = "$" + source + ": ";
  std::string rest = *url;
  const std::size_t sep = rest.find("://");
  if (sep != std::string::npos) {
    const std::string proxy_scheme = Lower(rest.substr(0, sep));
    if (proxy_scheme != "http")
      return Status::InvalidArgument(bad + "only http:// proxies are supported (got '" + proxy_scheme.substr(0, 16) +
                                     "://'); TLS to the teacher still goes end to end through CONNECT");
    rest = rest.substr(sep + 3);
  }
  const std::size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    const std::string path = rest.substr(slash);
    if (path != "/") return Status::InvalidArgument(bad + "a proxy URL has no path");
    rest = rest.substr(0, slash);
  }
  ProxyRoute r;
  r.source = source;
  const std::size_t at = rest.rfind('@');
  if (at != std::string::npos) {
    r.authorization = "Basic " + Base64(PercentDecode(rest.substr(0, at)));
    rest = rest.substr(at + 1);
  }
  if (!SplitHostPort(rest, &r.host, &r.port))
    return Status::InvalidArgument(bad + "expected http://[user:password@]host[:port]");
  if (r.port == 0) r.port = 80;
  return std::optional<ProxyRoute>(std::move(r));
}

}  // namespace retort
