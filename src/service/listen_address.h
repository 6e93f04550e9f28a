// ListenAddress: the --listen host of `retort serve` resolved once, so that the loopback check
// and the bind see the same address (issue #12, item 11).
#pragma once

#include <string>

#include "retort/status.h"

namespace retort {

struct ListenAddress {
  // The numeric address the server binds ("127.0.0.1", "::1", "0.0.0.0").
  std::string numeric_host;
  // True when every address the name resolves to is a loopback address (127.0.0.0/8, ::1,
  // ::ffff:127.0.0.0/104).
  bool loopback = false;
};

// Resolves `host` (a name or a numeric address; IPv6 without brackets). Not a prefix test:
// "127.attacker.example" is whatever it resolves to. InvalidArgument naming --listen when it
// does not resolve.
Result<ListenAddress> ResolveListenHost(const std::string& host);

}  // namespace retort
