// Unit: ResolveListenHost — the loopback check uses resolved addresses, not a prefix (issue #12, item 11).
#include "service/listen_address.h"

#include <catch2/catch.hpp>

using namespace retort;

TEST_CASE("Issue 12: ResolveListenHost calls an address loopback only when it resolves to loopback",
          "[service][security]") {
  for (const char* h : {"127.0.0.1", "127.5.6.7", "::1", "localhost"}) {
    Result<ListenAddress> a = ResolveListenHost(h);
    INFO(h);
    REQUIRE(a.ok());
    CHECK(a->loopback);
    CHECK_FALSE(a->numeric_host.empty());
  }
  for (const char* h : {"0.0.0.0", "::", "10.1.2.3", "192.168.0.1"}) {
    Result<ListenAddress> a = ResolveListenHost(h);
    INFO(h);
    REQUIRE(a.ok());
    CHECK_FALSE(a->loopback);
  }
  CHECK(ResolveListenHost("127.0.0.1")->numeric_host == "127.0.0.1");
  // A name that merely starts with "127." is not loopback (the prefix test let it through); here
  // it does not resolve at all (.invalid is reserved), which refuses it too.
  Result<ListenAddress> name = ResolveListenHost("127.attacker.invalid");
  CHECK((!name.ok() || !name->loopback));
  if (!name.ok()) CHECK_THAT(name.status().message(), Catch::StartsWith("--listen: cannot resolve"));
  CHECK_FALSE(ResolveListenHost("").ok());
}
