// ServicePolicy: the operator's allow-lists for key variables, teacher URLs and export folders.
#include "service/service_policy.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace retort {

namespace fs = std::filesystem;

const std::vector<std::string>& DefaultKeyEnvs() {
  static const std::vector<std::string> kEnvs = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"};
  return kEnvs;
}

const std::vector<std::string>& DefaultBaseUrlPrefixes() {
  static const std::vector<std::string> kPrefixes = {"https://api.openai.com/", "https://api.anthropic.com/"};
  return kPrefixes;
}

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ValidEnvName(const std::string& v) {
  if (v.empty() || v.size() > 256 || std::isdigit(static_cast<unsigned char>(v[0]))) return false;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool PathHasDotSegment(const std::string& path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string seg = path.substr(start, end - start);
    if (seg == "." || seg == "..") return true;
    start = end + 1;
  }
  return false;
}

bool PathBelow(const std::string& path, const std::string& prefix) {
  std::string p = prefix;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p == "/") return true;
  return path == p || path.rfind(p + "/", 0) == 0;
}

bool Matches(const UrlParts& prefix, const UrlParts& url) {
  if (prefix.scheme != url.scheme) return false;
  if (prefix.host.empty()) return true;  // "https://": any host of that scheme
  return prefix.host == url.host && prefix.port == url.port && PathBelow(url.path, prefix.path);
}

}  // namespace

bool IsLoopbackHostLiteral(const std::string& host) {
  const std::string h = Lower(host);
  if (h == "localhost" || h == "[::1]") return true;
  // Exactly four decimal parts 0..255, the first 127.
  int parts = 0;
  size_t start = 0;
  while (start <= h.size()) {
    size_t end = h.find('.', start);
    if (end == std::string::npos) end = h.size();
    const std::string part = h.substr(start, end - start);
    if (!AllDigits(part) || part.size() > 3 || std::stoi(part) > 255) return false;
    if (parts == 0 && part != "127") return false;
    ++parts;
    start = end + 1;
  }
  return parts == 4;
}

Result<UrlParts> SplitTeacherUrl(const std::string& url, bool allow_empty_host) {
  for (unsigned char c : url)
    if (c <= 0x20 || c == 0x7f || c == '@' || c == '%' || c == '\\' || c == '?' || c == '#')
      return Status::InvalidArgument("'" + url +
                                     "' holds a character the allow-list does not accept (user info, '%', '\\\\', "
                                     "'?', '#', spaces or control characters)");
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return Status::InvalidArgument("'" + url + "' is not an http:// or https:// URL");
  UrlParts p;
  p.scheme = Lower(url.substr(0, sep));
  if (p.scheme != "http" && p.scheme != "https")
    return Status::InvalidArgument("'" + url + "' is not an http:// or https:// URL");
  const std::string rest = url.substr(sep + 3);
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  p.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (PathHasDotSegment(p.path)) return Status::InvalidArgument("'" + url + "' has a '.' or '..' path segment");
  std::string port;
  if (authority.empty()) {
    if (!allow_empty_host || p.path != "/") return Status::InvalidArgument("'" + url + "' has no host");
    p.port = 0;
    return p;
  }
  if (authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("'" + url + "' has a malformed IPv6 host");
    p.host = Lower(authority.substr(0, close + 1));
    for (size_t i = 1; i < close; ++i)
      if (!(std::isxdigit(static_cast<unsigned char>(p.host[i])) || p.host[i] == ':' || p.host[i] == '.'))
        return Status::InvalidArgument("'" + url + "' has a malformed IPv6 host");
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Status::InvalidArgument("'" + url + "' has a malformed host");
      port = authority.substr(close + 2);
      if (port.empty()) return Status::InvalidArgument("'" + url + "' has an empty port");
    }
  } else {
    const size_t colon = authority.find(':');
    p.host = Lower(authority.substr(0, colon));
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return Status::InvalidArgument("'" + url + "' has an empty port");
    }
    if (p.host.empty() || p.host.front() == '.' || p.host.front() == '-')
      return Status::InvalidArgument("'" + url + "' has a malformed host");
    for (char c : p.host)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'))
        return Status::InvalidArgument("'" + url + "' has a malformed host");
  }
  if (!port.empty()) {
    if (!AllDigits(port) || port.size() > 5 || std::stoi(port) < 1 || std::stoi(port) > 65535)
      return Status::InvalidArgument("'" + url + "' has a bad port");
    p.port = std::stoi(port);
  } else {
    p.port = p.scheme == "https" ? 443 : 80;
  }
  return p;
}

Result<ServicePolicy> ServicePolicy::Create(std::vector<std::string> extra_key_envs,
                                            std::vector<std::string> base_url_prefixes, std::string export_root) {
  ServicePolicy p;
  for (const std::string& v : extra_key_envs) {
    if (!ValidEnvName(v))
      return Status::InvalidArgument("--allow-key-env: '" + v + "' is not an environment variable name");
    p.key_envs_.push_back(v);
  }
  for (const std::string& u : base_url_prefixes) {
    Result<UrlParts> parts = SplitTeacherUrl(u, /*allow_empty_host=*/true);
    if (!parts.ok()) return Status::InvalidArgument("--allow-base-url: " + parts.status().message());
    p.prefixes_.push_back(*parts);
    p.prefix_text_.push_back(u);
  }
  if (export_root.empty()) return Status::InvalidArgument("--export-root: an export folder is required");
  std::error_code ec;
  fs::path root = fs::absolute(export_root, ec);
  if (ec) return Status::InvalidArgument("--export-root: cannot make '" + export_root + "' absolute: " + ec.message());
  p.export_root_ = root.lexically_normal().string();
  while (p.export_root_.size() > 1 && p.export_root_.back() == '/') p.export_root_.pop_back();
  return p;
}

Status ServicePolicy::CheckKeyEnv(const std::string& var) const {
  if (var.empty()) return Status::OK();  // the provider's default, one of DefaultKeyEnvs()
  const std::vector<std::string>& d = DefaultKeyEnvs();
  if (std::find(d.begin(), d.end(), var) != d.end()) return Status::OK();
  if (std::find(key_envs_.begin(), key_envs_.end(), var) != key_envs_.end()) return Status::OK();
  return Status::InvalidArgument("api_key_env: '" + var +
                                 "' is not an allowed key variable: a run may name OPENAI_API_KEY, "
                                 "ANTHROPIC_API_KEY or a variable the operator allowed with --allow-key-env");
}

Status ServicePolicy::CheckBaseUrl(const std::string& url) const {
  Result<UrlParts> u = SplitTeacherUrl(url);
  if (!u.ok()) return Status::InvalidArgument("base_url: " + u.status().message());
  if (prefixes_.empty()) {
    if (IsLoopbackHostLiteral(u->host)) return Status::OK();
    for (const std::string& d : DefaultBaseUrlPrefixes())
      if (Result<UrlParts> p = SplitTeacherUrl(d); p.ok() && Matches(*p, *u)) return Status::OK();
    return Status::InvalidArgument("base_url: '" + url +
                                   "' is not an allowed teacher URL: by default only loopback URLs, "
                                   "https://api.openai.com/ and https://api.anthropic.com/ are; the operator "
                                   "allows others with --allow-base-url");
  }
  for (const UrlParts& p : prefixes_)
    if (Matches(p, *u)) return Status::OK();
  return Status::InvalidArgument("base_url: '" + url +
                                 "' is not an allowed teacher URL: it matches no --allow-base-url prefix");
}

Status ServicePolicy::CheckRun(const HarvestOptions& o) const {
  RETORT_RETURN_IF_ERROR(CheckKeyEnv(o.api_key_env));
  for (const std::string& u : o.base_urls) RETORT_RETURN_IF_ERROR(CheckBaseUrl(u));
  return Status::OK();
}

Result<std::string> ServicePolicy::ResolveExportDir(const std::string& out) const {
  if (export_root_.empty()) return Status::InvalidArgument("out: exports are disabled (no export root)");
  if (out.empty()) return Status::InvalidArgument("out: the output folder is required");
  if (out[0] == '/')
    return Status::InvalidArgument("out: expected a path relative to the export root (--export-root), got '" + out +
                                   "'");
  for (unsigned char c : out)
    if (c < 0x20 || c == 0x7f) return Status::InvalidArgument("out: control characters are not allowed");
  for (const auto& part : fs::path(out))
    if (part == "..") return Status::InvalidArgument("out: '..' is not allowed (got '" + out + "')");
  const fs::path root(export_root_);
  const fs::path lexical = (root / out).lexically_normal();
  std::string lex = lexical.string();
  while (lex.size() > 1 && lex.back() == '/') lex.pop_back();
  if (lex == export_root_) return Status::InvalidArgument("out: expected a folder below the export root, got '" + out + "'");
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Status::IOError("cannot create the export root '" + export_root_ + "': " + ec.message());
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) return Status::IOError("cannot resolve the export root '" + export_root_ + "': " + ec.message());
  // Follows every symbolic link that exists along the way: a link out of the root is refused.
  const fs::path real = fs::weakly_canonical(lexical, ec);
  if (ec) return Status::InvalidArgument("out: cannot resolve '" + out + "': " + ec.message());
  std::string r = real.string(), rr = real_root.string();
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  const std::string below = rr == "/" ? rr : rr + "/";
  if (r == rr || r.rfind(below, 0) != 0)
    return Status::InvalidArgument("out: '" + out + "' resolves outside the export root (symbolic link)");
  return r;
}

std::vector<std::string> ServicePolicy::key_envs() const {
  std::vector<std::string> out = DefaultKeyEnvs();
  out.insert(out.end(), key_envs_.begin(), key_envs_.end());
  return out;
}

std::vector<std::string> ServicePolicy::base_url_prefixes() const {
  if (!prefix_text_.empty()) return prefix_text_;
  std::vector<std::string> out = {"loopback (http(s)://localhost, 127.x.x.x, [::1], any port)"};
  const std::vector<std::string>& d = DefaultBaseUrlPrefixes();
  out.insert(out.end(), d.begin(), d.end());
  return out;
}

}  // namespace retort
