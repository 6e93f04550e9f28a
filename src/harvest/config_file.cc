// ConfigFile: a small, strict TOML-subset parser for harvest config files.
#include "harvest/config_file.h"

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

namespace retort {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Parses one value at the start of `s`; advances `s`. Error text on failure.
bool ParseValue(std::string_view& s, std::string* out, std::string* err) {
  s = Trim(s);
  if (s.empty()) {
    *err = "expected a value";
    return false;
  }
  if (s.front() == '"') {
    std::string v;
    size_t i = 1;
    for (; i < s.size() && s[i] != '"'; ++i) {
      if (s[i] == '\\') {
        if (++i >= s.size()) break;
        switch (s[i]) {
          case '"': v += '"'; break;
          case '\\': v += '\\'; break;
          case 'n': v += '\n'; break;
          case 't': v += '\t'; break;
          default:
            *err = std::string("unknown escape \\") + s[i];
            return false;
        }
      } else {
        v += s[i];
      }
    }
    if (i >= s.size()) {
      *err = "unterminated string";
      return false;
    }
    s.remove_prefix(i + 1);
    *out = v;
    return true;
  }
  if (s.front() == '\'') {
    size_t end = s.find('\'', 1);
    if (end == std::string_view::npos) {
      *err = "unterminated string";
      return false;
    }
    *out = std::string(s.substr(1, end - 1));
    s.remove_prefix(end + 1);
    return true;
  }
  size_t end = 0;
  while (end < s.size() && s[end] != ',' && s[end] != ']' && s[end] != '#' &&
         !std::isspace(static_cast<unsigned char>(s[end])))
    ++end;
  std::string tok(s.substr(0, end));
  bool number = !tok.empty();
  for (char c : tok)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E' ||
          c == '_'))
      number = false;
  if (!(number || tok == "true" || tok == "false")) {
    *err = "expected a quoted string, a number, true or false, got '" + tok + "'";
    return false;
  }
  std::string clean;
  for (char c : tok)
    if (c != '_') clean += c;
  *out = clean;
  s.remove_prefix(end);
  return true;
}

}  // namespace

Result<std::vector<ConfigEntry>> ParseConfigText(std::string_view text, const std::string& filename) {
  std::vector<ConfigEntry> out;
  std::set<std::string> seen;
  int lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++lineno;
    auto fail = [&](const std::string& msg) {
      return Status::InvalidArgument(filename + ":" + std::to_string(lineno) + ": " + msg);
    };
    line = Trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[') {
      if (Trim(line) == "[harvest]") continue;
      return fail("unexpected table header '" + std::string(line) + "' (only [harvest] is allowed)");
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return fail("expected 'key = value'");
    std::string key(Trim(line.substr(0, eq)));
    if (key.empty()) return fail("missing key before '='");
    for (char& c : key) {
      if (c == '_') c = '-';
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-'))
        return fail("invalid key '" + std::string(Trim(line.substr(0, eq))) + "'");
    }
    if (!seen.insert(key).second) return fail("duplicate key '" + key + "'");
    ConfigEntry e;
    e.key = key;
    e.line = lineno;
    std::string_view rest = Trim(line.substr(eq + 1));
    std::string err;
    if (!rest.empty() && rest.front() == '[') {
      rest.remove_prefix(1);
      for (;;) {
        rest = Trim(rest);
        if (!rest.empty() && rest.front() == ']') {
          rest.remove_prefix(1);
          break;
        }
        std::string v;
        if (!ParseValue(rest, &v, &err)) return fail(key + ": " + err);
        e.values.push_back(v);
        rest = Trim(rest);
        if (!rest.empty() && rest.front() == ',') {
          rest.remove_prefix(1);
          continue;
        }
        if (!rest.empty() && rest.front() == ']') {
          rest.remove_prefix(1);
          break;
        }
        return fail(key + ": expected ',' or ']' in the array");
      }
    } else {
      std::string v;
      if (!ParseValue(rest, &v, &err)) return fail(key + ": " + err);
      e.values.push_back(v);
    }
    rest = Trim(rest);
    if (!rest.empty() && rest.front() != '#') return fail(key + ": unexpected text after the value");
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<ConfigEntry>> ParseConfigFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::IOError("--config: cannot read '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseConfigText(ss.str(), path);
}

}  // namespace retort
