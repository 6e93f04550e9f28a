// Unit: RequestGuard — Host, Origin, bearer token, Content-Type and framing checks (issue #12).
#include "service/request_guard.h"

#include <catch2/catch.hpp>

using namespace retort;

namespace {

GuardConfig Config(std::string token = "") {
  GuardConfig c;
  c.allowed_hosts = AllowedHosts("127.0.0.1", 8377, {"retort.internal", "proxy.example:8443"});
  c.token = std::move(token);
  c.max_body_bytes = 4096;
  return c;
}

RequestHead Get(const std::string& path = "/v1/runs") {
  RequestHead h;
  h.method = "GET";
  h.path = path;
  h.host = "127.0.0.1:8377";
  h.host_count = 1;
  h.local_authority = "127.0.0.1:8377";
  return h;
}

RequestHead PostJson(const std::string& path = "/v1/runs", const std::string& type = "application/json") {
  RequestHead h = Get(path);
  h.method = "POST";
  h.content_type = type;
  h.content_length = "10";
  h.content_length_count = 1;
  return h;
}

int StatusOf(const GuardConfig& c, const RequestHead& h) { return CheckRequest(c, h).status; }

}  // namespace

TEST_CASE("AllowedHosts: the listen address, loopback names on loopback, --allow-host names", "[service]") {
  auto hosts = AllowedHosts("127.0.0.1", 8377, {"Retort.Internal"});
  for (const char* h : {"127.0.0.1:8377", "localhost:8377", "[::1]:8377", "retort.internal"})
    CHECK(std::find(hosts.begin(), hosts.end(), h) != hosts.end());
  CHECK(std::find(hosts.begin(), hosts.end(), "localhost") == hosts.end());  // port 80 only
  auto v6 = AllowedHosts("::1", 80, {});
  CHECK(std::find(v6.begin(), v6.end(), "[::1]:80") != v6.end());
  CHECK(std::find(v6.begin(), v6.end(), "[::1]") != v6.end());
  auto any = AllowedHosts("0.0.0.0", 9000, {});
  CHECK(std::find(any.begin(), any.end(), "localhost:9000") == any.end());
}

TEST_CASE("CheckRequest refuses a foreign Host with 421 and a foreign Origin with 403", "[service][security]") {
  const GuardConfig c = Config();
  CHECK(StatusOf(c, Get()) == 0);
  RequestHead h = Get();
  for (const char* ok : {"localhost:8377", "LOCALHOST:8377", "[::1]:8377", "retort.internal", "retort.internal:443",
                         "proxy.example:8443"}) {
    h.host = ok;
    INFO(ok);
    CHECK(StatusOf(c, h) == 0);
  }
  for (const char* bad : {"attacker.example:8377", "127.0.0.1.attacker.example:8377", "localhost:8378", "127.0.0.1",
                          "proxy.example:443", "retort.internal.attacker.example", "127.0.0.1:8377/x",
                          "user@127.0.0.1:8377", ""}) {
    h.host = bad;
    INFO(bad);
    CHECK(StatusOf(c, h) == 421);
  }
  // The connection's own address is accepted (a wildcard listen reached by IP).
  h.host = "10.1.2.3:8377";
  h.local_authority = "10.1.2.3:8377";
  CHECK(StatusOf(c, h) == 0);
  h = Get();
  h.host.reset();
  h.host_count = 0;
  CHECK(StatusOf(c, h) == 400);
  h = Get();
  h.host_count = 2;
  CHECK(StatusOf(c, h) == 400);
  // Origin: absent, or this server's own; anything else 403 — on reads too.
  for (const char* ok : {"http://127.0.0.1:8377", "http://localhost:8377", "https://retort.internal"}) {
    RequestHead o = PostJson();
    o.origin = ok;
    o.origin_count = 1;
    INFO(ok);
    CHECK(StatusOf(c, o) == 0);
  }
  for (const char* bad : {"http://attacker.example", "null", "http://127.0.0.1:8377.attacker.example", "file://",
                          "http://127.0.0.1:8378", "ftp://127.0.0.1:8377", ""}) {
    for (RequestHead o : {Get(), PostJson()}) {
      o.origin = bad;
      o.origin_count = 1;
      INFO(o.method << " " << bad);
      CHECK(StatusOf(c, o) == 403);
    }
  }
  // /healthz answers anyone (it says only "ok").
  RequestHead hz = Get("/healthz");
  hz.host = "attacker.example";
  hz.origin = "http://attacker.example";
  hz.origin_count = 1;
  CHECK(StatusOf(c, hz) == 0);
}

TEST_CASE("CheckRequest: state-changing requests need a JSON Content-Type, an empty POST needs none",
          "[service][security]") {
  const GuardConfig c = Config();
  CHECK(StatusOf(c, PostJson()) == 0);
  CHECK(StatusOf(c, PostJson("/v1/runs", "Application/JSON; charset=utf-8")) == 0);
  for (const char* bad : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                          "application/x-ndjson", "application/jsonx", ""})
    CHECK(StatusOf(c, PostJson("/v1/runs", bad)) == 415);
  for (const char* ok : {"application/x-ndjson", "application/jsonl", "application/json"})
    CHECK(StatusOf(c, PostJson("/v1/prompt-sets/s", ok)) == 0);
  CHECK(StatusOf(c, PostJson("/v1/prompt-sets/s", "text/plain")) == 415);
  // A body without any type.
  RequestHead untyped = PostJson();
  untyped.content_type.reset();
  CHECK(StatusOf(c, untyped) == 415);
  // No body, no type (curl -X POST .../pause): fine; no body with a form type: refused.
  RequestHead bare = Get("/v1/runs/r/pause");
  bare.method = "POST";
  CHECK(StatusOf(c, bare) == 0);
  bare.content_length = "0";
  bare.content_length_count = 1;
  CHECK(StatusOf(c, bare) == 0);
  bare.content_type = "application/x-www-form-urlencoded";
  CHECK(StatusOf(c, bare) == 415);
  // Only GET, HEAD and POST exist.
  for (const char* m : {"PUT", "DELETE", "PATCH", "OPTIONS", "PRI", "TRACE"}) {
    RequestHead other = PostJson();
    other.method = m;
    INFO(m);
    CHECK(StatusOf(c, other) == 405);
  }
  // Reads need no type.
  RequestHead get = Get();
  get.content_type = "text/plain";
  CHECK(StatusOf(c, get) == 0);
}

TEST_CASE("CheckRequest: framing — size, chunked, repeated or conflicting lengths", "[service][security]") {
  const GuardConfig c = Config();
  RequestHead h = PostJson();
  h.content_length = "4096";
  CHECK(StatusOf(c, h) == 0);
  h.content_length = "4097";
  CHECK(StatusOf(c, h) == 413);
  h.content_length = "17179869184";
  CHECK(StatusOf(c, h) == 413);
  for (const char* bad : {"-1", "1e3", "12 34", "0x10", "99999999999999999999", ""}) {
    h.content_length = bad;
    INFO(bad);
    CHECK(StatusOf(c, h) == 400);
  }
  h = PostJson();
  h.content_length_count = 2;
  CHECK(StatusOf(c, h) == 400);
  h = PostJson();
  h.transfer_encoding = "chunked";
  h.transfer_encoding_count = 1;
  CHECK(StatusOf(c, h) == 400);  // with Content-Length
  h.content_length.reset();
  h.content_length_count = 0;
  CHECK(StatusOf(c, h) == 0);
  h.transfer_encoding = "gzip, chunked";
  CHECK(StatusOf(c, h) == 400);
}

TEST_CASE("Issue 12: the bearer scheme is case-insensitive, the token is not", "[service][security]") {
  CHECK(BearerMatches("Bearer tok", "tok"));
  CHECK(BearerMatches("bearer tok", "tok"));
  CHECK(BearerMatches("BEARER tok", "tok"));
  CHECK(BearerMatches("Bearer   tok", "tok"));
  CHECK_FALSE(BearerMatches("Bearer TOK", "tok"));
  CHECK_FALSE(BearerMatches("Bearer to", "tok"));
  CHECK_FALSE(BearerMatches("Bearer tokk", "tok"));
  CHECK_FALSE(BearerMatches("tok", "tok"));
  CHECK_FALSE(BearerMatches("Basic tok", "tok"));
  CHECK_FALSE(BearerMatches("Bearertok", "tok"));
  CHECK_FALSE(BearerMatches("Bearer ", ""));
  const GuardConfig c = Config("s3cret");
  RequestHead h = Get();
  CHECK(CheckRequest(c, h).status == 401);
  h.authorization = "bearer s3cret";
  CHECK(CheckRequest(c, h).ok());
  h.authorization = "Bearer s3cre";
  const GuardVerdict v = CheckRequest(c, h);
  CHECK(v.status == 401);
  CHECK(v.message.find("s3cre") == std::string::npos);
  CHECK(CheckRequest(c, Get("/healthz")).ok());
}

TEST_CASE("RequestGuard: the dashboard's public paths need no token for GET, but Host and Origin still count",
          "[service][guard]") {
  GuardConfig c = Config("s3cret");
  c.public_paths = {"/", "/ui/app.js"};
  CHECK(StatusOf(c, Get("/")) == 0);
  CHECK(StatusOf(c, Get("/ui/app.js")) == 0);
  RequestHead head = Get("/");
  head.method = "HEAD";
  CHECK(StatusOf(c, head) == 0);
  CHECK(StatusOf(c, Get("/ui/app.js?x")) == 401);  // exact paths only
  CHECK(StatusOf(c, Get("/v1/runs")) == 401);
  CHECK(StatusOf(c, PostJson("/")) == 401);  // only reads are open
  RequestHead foreign = Get("/");
  foreign.host = "evil.example:8377";
  CHECK(StatusOf(c, foreign) == 421);
  RequestHead cross = Get("/");
  cross.origin = "http://evil.example";
  cross.origin_count = 1;
  CHECK(StatusOf(c, cross) == 403);
}
