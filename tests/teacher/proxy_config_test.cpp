// ProxyFor: HTTPS_PROXY / HTTP_PROXY / NO_PROXY as curl and Go read them.
#include <catch2/catch.hpp>

#include <map>

#include "teacher/proxy_config.h"

using namespace retort;

namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string Route(const std::string& scheme, const std::string& host, int port, const EnvLookup& env) {
  Result<std::optional<ProxyRoute>> r = ProxyFor(scheme, host, port, env);
  REQUIRE(r.ok());
  return *r ? (*r)->HostPort() + " " + (*r)->source : "direct";
}

}  // namespace

TEST_CASE("ProxyFor picks the variable of the target's scheme, lower case first", "[teacher]") {
  auto env = Env({{"HTTPS_PROXY", "http://upper:3128"}, {"https_proxy", "lower:8080"}, {"HTTP_PROXY", "plain:80"}});
  CHECK(Route("https", "api.openai.com", 443, env) == "lower:8080 https_proxy");
  CHECK(Route("http", "teacher.internal", 8000, env) == "plain:80 HTTP_PROXY");
  CHECK(Route("https", "api.openai.com", 443, Env({{"HTTPS_PROXY", "http://p.corp"}})) == "p.corp:80 HTTPS_PROXY");
  CHECK(Route("https", "api.openai.com", 443, Env({{"HTTPS_PROXY", "http://[fd00::1]:3128/"}})) == "[fd00::1]:3128 HTTPS_PROXY");
  CHECK(Route("https", "api.openai.com", 443, Env({})) == "direct");
  CHECK(Route("https", "api.openai.com", 443, Env({{"HTTPS_PROXY", ""}})) == "direct");
}

TEST_CASE("ProxyFor never proxies loopback and honours NO_PROXY entries", "[teacher]") {
  auto with = [](const std::string& no_proxy) {
    return Env({{"HTTPS_PROXY", "proxy:3128"}, {"HTTP_PROXY", "proxy:3128"}, {"NO_PROXY", no_proxy}});
  };
  CHECK(Route("http", "127.0.0.1", 8000, with("")) == "direct");
  CHECK(Route("http", "localhost", 8000, with("")) == "direct");
  CHECK(Route("http", "::1", 8000, with("")) == "direct");
  CHECK(Route("http", "127.9.9.9", 8000, with("")) == "direct");
  CHECK(Route("http", "127.attacker.example", 8000, with("")) == "proxy:3128 HTTP_PROXY");
  CHECK(Route("https", "api.example.com", 443, with("example.com")) == "direct");
  CHECK(Route("https", "api.example.com", 443, with(".example.com")) == "direct");
  CHECK(Route("https", "example.com", 443, with(".example.com")) == "direct");
  CHECK(Route("https", "badexample.com", 443, with("example.com")) == "proxy:3128 HTTPS_PROXY");
  CHECK(Route("https", "api.example.com", 443, with("other.org, api.example.com:8443")) == "proxy:3128 HTTPS_PROXY");
  CHECK(Route("https", "api.example.com", 8443, with("other.org, api.example.com:8443")) == "direct");
  CHECK(Route("https", "API.Example.COM", 443, with("example.com")) == "direct");
  CHECK(Route("http", "10.1.2.3", 80, with("10.1.2.3")) == "direct");
  CHECK(Route("https", "anything.org", 443, with("*")) == "direct");
  CHECK(Route("https", "anything.org", 443, Env({{"HTTPS_PROXY", "p:1"}, {"no_proxy", "anything.org"}})) == "direct");
}

TEST_CASE("ProxyFor keeps proxy credentials as a Basic header and never echoes a bad value", "[teacher]") {
  Result<std::optional<ProxyRoute>> r =
      ProxyFor("https", "api.example.com", 443, Env({{"HTTPS_PROXY", "http://user:p%40ss@proxy:3128"}}));
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK((*r)->authorization == "Basic dXNlcjpwQHNz");  // "user:p@ss"
  CHECK((*r)->HostPort() == "proxy:3128");

  for (const char* bad : {"https://user:s3cret@proxy:443", "socks5://user:s3cret@proxy:1080",
                          "http://user:s3cret@proxy:99999", "http://user:s3cret@proxy:3128/path"}) {
    Result<std::optional<ProxyRoute>> b = ProxyFor("https", "api.example.com", 443, Env({{"HTTPS_PROXY", bad}}));
    REQUIRE_FALSE(b.ok());
    CHECK(b.status().code() == StatusCode::kInvalidArgument);
    CHECK(b.status().message().find("$HTTPS_PROXY") != std::string::npos);
    CHECK(b.status().message().find("s3cret") == std::string::npos);
  }
}
