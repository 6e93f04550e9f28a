// ListenAddress: getaddrinfo() once; loopback only when every resolved address is.
#include "service/listen_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace retort {

namespace {

bool IsLoopbackAddress(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

Result<ListenAddress> ResolveListenHost(const std::string& host) {
  if (host.empty()) return Status::InvalidArgument("--listen: the host is empty");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res)
    return Status::InvalidArgument("--listen: cannot resolve '" + host + "': " + ::gai_strerror(rc));
  ListenAddress out;
  out.loopback = true;
  for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (!IsLoopbackAddress(ai->ai_addr)) out.loopback = false;
    if (out.numeric_host.empty()) {
      char buf[NI_MAXHOST] = {0};
      if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) == 0)
        out.numeric_host = buf;
    }
  }
  ::freeaddrinfo(res);
  if (out.numeric_host.empty()) return Status::InvalidArgument("--listen: cannot resolve '" + host + "'");
  return out;
}

}  // namespace retort
