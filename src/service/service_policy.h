// ServicePolicy: what a request to `retort serve` may name — key variables, teacher URLs and
// export destinations — as the operator allowed at start-up (issue #12).
#pragma once

#include <string>
#include <vector>

#include "retort/harvester.h"
#include "retort/status.h"

namespace retort {

// The key variables every run may name without --allow-key-env: the providers' defaults.
const std::vector<std::string>& DefaultKeyEnvs();
// The teacher URL prefixes allowed when the operator gives no --allow-base-url, besides any
// loopback URL: the public provider APIs.
const std::vector<std::string>& DefaultBaseUrlPrefixes();

// A teacher URL split into the parts the allow-list compares. Scheme and host are lower case;
// an IPv6 host keeps its brackets ("[::1]"); port is the explicit one or the scheme's default.
struct UrlParts {
  std::string scheme;  // "http" or "https"
  std::string host;    // "" only in a prefix that names a scheme alone ("https://")
  int port = 0;
  std::string path;    // starts with '/'
};
// Splits an http(s) URL. InvalidArgument (no field prefix) for anything the allow-list cannot
// judge safely: another scheme, user info ('@'), '%', '\\', '?', '#', whitespace or control
// characters in the URL, an empty or malformed host, a bad port.
Result<UrlParts> SplitTeacherUrl(const std::string& url, bool allow_empty_host = false);
// True for "localhost", a dotted-quad 127.x.x.x and "[::1]".
bool IsLoopbackHostLiteral(const std::string& host);

// Immutable after construction: safe for concurrent use.
class ServicePolicy {
 public:
  // `extra_key_envs`: --allow-key-env values (added to DefaultKeyEnvs()).
  // `base_url_prefixes`: --allow-base-url values; empty = any loopback URL plus
  // DefaultBaseUrlPrefixes(). `export_root`: --export-root, made absolute.
  // InvalidArgument naming the flag for a malformed variable name or prefix, or an empty root.
  static Result<ServicePolicy> Create(std::vector<std::string> extra_key_envs,
                                      std::vector<std::string> base_url_prefixes, std::string export_root);
  ServicePolicy() = default;  // the defaults, with no export root (every export refused)

  // OK when a run may read its key from `var` ("" = the provider's default, which is always in
  // DefaultKeyEnvs()). InvalidArgument "api_key_env: ..." naming the rule otherwise.
  Status CheckKeyEnv(const std::string& var) const;
  // OK when `url` matches an allowed prefix: same scheme, host (case-insensitive) and port,
  // and a path equal to the prefix's or below it at a '/' boundary. InvalidArgument
  // "base_url: ..." otherwise.
  Status CheckBaseUrl(const std::string& url) const;
  // Both checks for every URL and the key variable of a run's options.
  Status CheckRun(const HarvestOptions& o) const;
  // The absolute directory an export with `out` writes to: `out` must be a relative path below
  // the export root without '..' components, and the resolved path (symbolic links followed
  // as far as they exist) must stay strictly inside the resolved root. InvalidArgument "out: ..."
  // otherwise; IOError when the root cannot be created.
  Result<std::string> ResolveExportDir(const std::string& out) const;

  const std::string& export_root() const { return export_root_; }
  // Human-readable summaries for the start-up log line and docs.
  std::vector<std::string> key_envs() const;
  std::vector<std::string> base_url_prefixes() const;

 private:
  std::vector<std::string> key_envs_;   // beyond the defaults
  std::vector<UrlParts> prefixes_;      // empty = loopback + DefaultBaseUrlPrefixes()
  std::vector<std::string> prefix_text_;
  std::string export_root_;
};

}  // namespace retort
