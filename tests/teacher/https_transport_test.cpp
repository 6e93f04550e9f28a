#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <httplib.h>

#include "teacher/http_transport.h"

using namespace retort;

namespace {

// A throw-away self-signed certificate for 127.0.0.1 (SAN IP), written as PEM files.
class SelfSignedCert {
 public:
  SelfSignedCert() {
    dir_ = std::filesystem::temp_directory_path() / ("retort_tls_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    EVP_PKEY* key = EVP_EC_gen("P-256");
    REQUIRE(key != nullptr);
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
    REQUIRE(san != nullptr);
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(cert, bc, -1);
    X509_EXTENSION_free(bc);
    REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
    FILE* f = std::fopen(cert_path().c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(key_path().c_str(), "w");
    REQUIRE(f != nullptr);
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~SelfSignedCert() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string cert_path() const { return (dir_ / "cert.pem").string(); }
  std::string key_path() const { return (dir_ / "key.pem").string(); }

 private:
  std::filesystem::path dir_;
};

}  // namespace

TEST_CASE("HttpTransport speaks HTTPS and verifies the server certificate", "[teacher]") {
  SelfSignedCert cert;
  httplib::SSLServer svr(cert.cert_path().c_str(), cert.key_path().c_str());
  REQUIRE(svr.is_valid());
  svr.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"tls\":true}", "application/json");
  });
  int port = svr.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread th([&] { svr.listen_after_bind(); });
  struct Stop {
    httplib::Server& s;
    std::thread& t;
    ~Stop() {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!s.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      s.stop();
      t.join();
    }
  } stop{svr, th};

  TransportOptions o;
  o.base_url = "https://127.0.0.1:" + std::to_string(port) + "/v1";
  o.timeout_s = 10;

  // Default: verification on, the self-signed certificate is not trusted.
  auto strict = HttpTransport::Create(o);
  REQUIRE(strict.ok());
  HttpResponse r = (*strict)->Post("/chat/completions", {}, "{}");
  CHECK(r.error == TransportError::kConnect);

  // Trusting it through ca_file.
  o.ca_file = cert.cert_path();
  auto trusted = HttpTransport::Create(o);
  REQUIRE(trusted.ok());
  r = (*trusted)->Post("/chat/completions", {}, "{}");
  CHECK(r.error == TransportError::kNone);
  CHECK(r.status == 200);
  CHECK(r.body == "{\"tls\":true}");

  // Or by explicitly disabling verification.
  o.ca_file.clear();
  o.insecure = true;
  auto insecure = HttpTransport::Create(o);
  REQUIRE(insecure.ok());
  r = (*insecure)->Post("/chat/completions", {}, "{}");
  CHECK(r.status == 200);
}
