// Unit: ServicePolicy — key variables, teacher URL prefixes and export folders a request may
// name (issue #12, item 1).
#include "service/service_policy.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "test_support/temp_dir.h"

using namespace retort;
namespace fs = std::filesystem;

namespace {

ServicePolicy Make(std::vector<std::string> envs, std::vector<std::string> prefixes, const std::string& root = "/tmp/r") {
  Result<ServicePolicy> p = ServicePolicy::Create(std::move(envs), std::move(prefixes), root);
  REQUIRE(p.ok());
  return *p;
}

}  // namespace

TEST_CASE("ServicePolicy: only the provider defaults and --allow-key-env variables may be named", "[service][security]") {
  const ServicePolicy p = Make({"RETORT_TEAM_KEY"}, {});
  CHECK(p.CheckKeyEnv("").ok());  // the provider's default
  CHECK(p.CheckKeyEnv("OPENAI_API_KEY").ok());
  CHECK(p.CheckKeyEnv("ANTHROPIC_API_KEY").ok());
  CHECK(p.CheckKeyEnv("RETORT_TEAM_KEY").ok());
  for (const char* v : {"AWS_SECRET_ACCESS_KEY", "HOME", "openai_api_key", "RETORT_TEAM_KEY2", "PATH"}) {
    Status st = p.CheckKeyEnv(v);
    INFO(v);
    REQUIRE_FALSE(st.ok());
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(st.message(), Catch::StartsWith("api_key_env: '" + std::string(v) + "' is not an allowed key variable"));
    CHECK_THAT(st.message(), Catch::Contains("--allow-key-env"));
  }
  for (const char* bad : {"", "1X", "A-B", "A B", "A=B"}) {
    Result<ServicePolicy> r = ServicePolicy::Create({bad}, {}, "/tmp/r");
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::StartsWith("--allow-key-env:"));
  }
}

TEST_CASE("ServicePolicy: by default teacher URLs are loopback or the public provider APIs", "[service][security]") {
  const ServicePolicy p = Make({}, {});
  for (const char* ok : {"http://127.0.0.1:9000/v1", "https://127.0.0.1/v1", "http://127.1.2.3:1/", "http://localhost:8000",
                         "http://LOCALHOST:8000/v1", "http://[::1]:9000/v1", "https://api.openai.com/v1",
                         "https://API.OpenAI.com:443/v1", "https://api.anthropic.com", "https://api.anthropic.com/"}) {
    INFO(ok);
    CHECK(p.CheckBaseUrl(ok).ok());
  }
  for (const char* bad : {"http://api.openai.com/v1",                // plain http to the provider
                          "https://api.openai.com:8443/v1",          // another port
                          "https://api.openai.com.attacker.example/v1", "https://api.openai.com@attacker.example/v1",
                          "https://attacker.example/api.openai.com/", "http://10.0.0.1:8000/v1",
                          "http://169.254.169.254/latest/meta-data", "http://127.0.0.1.nip.io/v1", "http://0x7f.0.0.1/",
                          "http://2130706433/", "http://127.0.0.1:9000/v1/../../admin", "http://127.0.0.1%2f@evil/",
                          "http://127.0.0.1:9000/v1?x=1", "file:///etc/passwd", "gopher://127.0.0.1/",
                          "http://127.0.0.1:0/", "http://127.0.0.1:99999/", "http://", "http:///v1",
                          "http://127.0.0.1 .attacker/"}) {
    Status st = p.CheckBaseUrl(bad);
    INFO(bad);
    REQUIRE_FALSE(st.ok());
    CHECK_THAT(st.message(), Catch::StartsWith("base_url: "));
  }
  HarvestOptions o;
  o.base_urls = {"http://127.0.0.1:1/v1", "http://10.0.0.1/v1"};
  CHECK_THAT(p.CheckRun(o).message(), Catch::Contains("10.0.0.1"));
  o.base_urls = {"http://127.0.0.1:1/v1"};
  o.api_key_env = "AWS_SECRET_ACCESS_KEY";
  CHECK_THAT(p.CheckRun(o).message(), Catch::StartsWith("api_key_env:"));
}

TEST_CASE("ServicePolicy: --allow-base-url prefixes replace the default and match at path boundaries",
          "[service][security]") {
  const ServicePolicy p = Make({}, {"http://10.0.0.5:8000/v1", "https://gpu.internal/"});
  CHECK(p.CheckBaseUrl("http://10.0.0.5:8000/v1").ok());
  CHECK(p.CheckBaseUrl("http://10.0.0.5:8000/v1/").ok());
  CHECK(p.CheckBaseUrl("http://10.0.0.5:8000/v1/x").ok());
  CHECK(p.CheckBaseUrl("https://GPU.internal/v1").ok());
  CHECK_FALSE(p.CheckBaseUrl("http://10.0.0.5:8000/v1x").ok());
  CHECK_FALSE(p.CheckBaseUrl("http://10.0.0.5:8001/v1").ok());
  CHECK_FALSE(p.CheckBaseUrl("https://10.0.0.5:8000/v1").ok());
  CHECK_FALSE(p.CheckBaseUrl("http://gpu.internal/v1").ok());
  CHECK_FALSE(p.CheckBaseUrl("http://127.0.0.1:9000/v1").ok());  // loopback no longer by default
  CHECK_FALSE(p.CheckBaseUrl("https://api.openai.com/v1").ok());
  // A scheme alone allows every host of that scheme (an explicit opt-out).
  const ServicePolicy any = Make({}, {"https://"});
  CHECK(any.CheckBaseUrl("https://anything.example/v1").ok());
  CHECK_FALSE(any.CheckBaseUrl("http://anything.example/v1").ok());
  for (const char* bad : {"ftp://x/", "https://user@x/", "http://x/?a", "x", "http://x:y/"}) {
    Result<ServicePolicy> r = ServicePolicy::Create({}, {bad}, "/tmp/r");
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.status().message(), Catch::StartsWith("--allow-base-url:"));
  }
}

TEST_CASE("ServicePolicy: exports stay below the export root, symbolic links included", "[service][security]") {
  test::TempDir dir;
  const std::string root = dir.path() + "/root";
  const ServicePolicy p = Make({}, {}, root + "/");
  Result<std::string> a = p.ResolveExportDir("demo");
  REQUIRE(a.ok());
  CHECK(*a == fs::canonical(root).string() + "/demo");  // the root is created on first use
  Result<std::string> b = p.ResolveExportDir("team/./demo-r1/");
  REQUIRE(b.ok());
  CHECK(*b == fs::canonical(root).string() + "/team/demo-r1");
  fs::create_directories(dir.path() + "/outside");
  fs::create_directories(root + "/real");
  fs::create_directory_symlink(dir.path() + "/outside", root + "/escape");
  fs::create_directory_symlink(root + "/real", root + "/inside");
  fs::create_directory_symlink("/", root + "/slash");
  Result<std::string> in = p.ResolveExportDir("inside/x");
  REQUIRE(in.ok());
  CHECK(*in == fs::canonical(root).string() + "/real/x");
  for (const char* bad : {"/tmp/x", "../x", "a/../../x", "a/..", "..", ".", "./", "", "escape", "escape/x",
                          "slash/etc", "a\nb"}) {
    Result<std::string> r = p.ResolveExportDir(bad);
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::StartsWith("out: "));
  }
  CHECK_FALSE(ServicePolicy().ResolveExportDir("x").ok());  // no root: exports refused
}
