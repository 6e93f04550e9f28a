// SimpleLineScanner implementation: a strict recursive-descent scan of the accepted shapes only;
// the metadata object (free-form) is handed to nlohmann for its canonical dump.
#include "prompts/simple_line_scanner.h"

#include <nlohmann/json.hpp>

namespace retort {

namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  void Ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool Eat(char c) {
    Ws();
    if (i_ >= s_.size() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  bool AtEnd() {
    Ws();
    return i_ == s_.size();
  }
  bool Peek(char c) {
    Ws();
    return i_ < s_.size() && s_[i_] == c;
  }

  // A JSON string with every escape decoded; false on anything invalid or a lone surrogate.
  bool String(std::string* out) {
    Ws();
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    out->clear();
    size_t run = i_;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        out->append(s_.data() + run, i_ - run);
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c != '\\') {
        ++i_;
        continue;
      }
      out->append(s_.data() + run, i_ - run);
      if (++i_ >= s_.size()) return false;
      const char e = s_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          unsigned cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo = 0;
            if (i_ + 1 >= s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return false;
            i_ += 2;
            if (!Hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default: return false;
      }
      run = i_;
    }
    return false;
  }

  // Skips one JSON value that must be an object; returns its text (validated by the caller).
  bool RawObject(std::string_view* out) {
    Ws();
    if (i_ >= s_.size() || s_[i_] != '{') return false;
    const size_t start = i_;
    int depth = 0;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') {
        while (i_ < s_.size() && s_[i_] != '"') i_ += s_[i_] == '\\' ? 2 : 1;
        if (i_ >= s_.size()) return false;
        ++i_;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          *out = s_.substr(start, i_ - start);
          return true;
        }
      }
    }
    return false;
  }

 private:
  bool Hex4(unsigned* cp) {
    if (i_ + 4 > s_.size()) return false;
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
      else return false;
    }
    *cp = v;
    return true;
  }
  static void AppendUtf8(unsigned cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

bool KnownRole(const std::string& r) { return r == "system" || r == "user" || r == "assistant"; }

// {"role": "...", "content": "..."} in either order, both present exactly once, valid values.
bool ScanMessage(Scanner& sc, std::string* key, Message* m) {
  if (!sc.Eat('{')) return false;
  bool has_role = false, has_content = false;
  for (int n = 0; n < 2; ++n) {
    if (n > 0 && !sc.Eat(',')) return false;
    if (!sc.String(key) || !sc.Eat(':')) return false;
    if (*key == "role" && !has_role) {
      if (!sc.String(&m->role) || !KnownRole(m->role)) return false;
      has_role = true;
    } else if (*key == "content" && !has_content) {
      if (!sc.String(&m->content) || m->content.empty()) return false;
      has_content = true;
    } else {
      return false;
    }
  }
  return sc.Eat('}');
}

// Whether `raw` (a complete JSON object) is already what nlohmann's dump() writes for it: no
// whitespace; keys strictly increasing (std::map order), printable ASCII without escapes; values
// true, false, null, integers without sign tricks or leading zeros (<= 18 digits) or printable
// ASCII strings without escapes. Then it is its own canonical form; anything else goes through
// nlohmann.
bool IsCanonicalFlatObject(std::string_view raw) {
  if (raw == "{}") return true;
  size_t i = 1;
  const size_t n = raw.size();
  auto plain_string = [&](std::string_view* out) {  // at '"'; plain printable ASCII up to '"'
    if (i >= n || raw[i] != '"') return false;
    const size_t start = ++i;
    while (i < n && raw[i] != '"') {
      const unsigned char c = static_cast<unsigned char>(raw[i]);
      if (c < 0x20 || c > 0x7e || c == '\\') return false;
      ++i;
    }
    if (i >= n) return false;
    *out = raw.substr(start, i - start);
    ++i;
    return true;
  };
  std::string_view prev_key;
  for (bool first = true;; first = false) {
    std::string_view key, sv;
    if (!plain_string(&key)) return false;
    if (!first && !(prev_key < key)) return false;
    prev_key = key;
    if (i >= n || raw[i++] != ':') return false;
    if (i >= n) return false;
    const char c = raw[i];
    if (c == '"') {
      if (!plain_string(&sv)) return false;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i;
      if (c == '-') ++i;
      if (i >= n || raw[i] < '0' || raw[i] > '9') return false;
      if (raw[i] == '0' && (c == '-' || (i + 1 < n && raw[i + 1] >= '0' && raw[i + 1] <= '9'))) return false;
      while (i < n && raw[i] >= '0' && raw[i] <= '9') ++i;
      if (i - start > 18) return false;
    } else if (raw.substr(i, 4) == "true" || raw.substr(i, 4) == "null") {
      i += 4;
    } else if (raw.substr(i, 5) == "false") {
      i += 5;
    } else {
      return false;
    }
    if (i >= n) return false;
    if (raw[i] == '}') return i + 1 == n;
    if (raw[i++] != ',') return false;
  }
}

}  // namespace

std::optional<ScannedLine> ScanSimplePromptLine(std::string_view line) {
  Scanner sc(line);
  ScannedLine out;
  if (!sc.Eat('{')) return std::nullopt;
  bool has_id = false, has_messages = false, has_metadata = false, has_prompt = false, has_system = false;
  std::string key, prompt, system;
  if (sc.Peek('}')) return std::nullopt;  // {} is an error: the full parser words it
  for (bool first = true;; first = false) {
    if (!first && !sc.Eat(',')) return std::nullopt;
    if (!sc.String(&key) || !sc.Eat(':')) return std::nullopt;
    if (key == "id" && !has_id) {
      if (!sc.String(&out.id) || out.id.empty()) return std::nullopt;
      has_id = true;
    } else if (key == "messages" && !has_messages) {
      if (!sc.Eat('[') || sc.Peek(']')) return std::nullopt;
      std::string mkey;
      for (bool mfirst = true;; mfirst = false) {
        if (!mfirst && !sc.Eat(',')) return std::nullopt;
        Message m;
        if (!ScanMessage(sc, &mkey, &m)) return std::nullopt;
        out.messages.push_back(std::move(m));
        if (sc.Peek(']')) break;
      }
      if (!sc.Eat(']')) return std::nullopt;
      has_messages = true;
    } else if (key == "metadata" && !has_metadata) {
      std::string_view raw;
      if (!sc.RawObject(&raw)) return std::nullopt;
      if (IsCanonicalFlatObject(raw)) {
        out.metadata_json.assign(raw);  // already canonical: no parse and re-dump
      } else {
        nlohmann::json j = nlohmann::json::parse(raw, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return std::nullopt;
        try {
          out.metadata_json = j.dump();  // std::map keys: sorted, canonical (as the full parser)
        } catch (const nlohmann::json::exception&) {
          return std::nullopt;
        }
      }
      has_metadata = true;
    } else if (key == "prompt" && !has_prompt) {
      if (!sc.String(&prompt) || prompt.empty()) return std::nullopt;
      has_prompt = true;
    } else if (key == "system" && !has_system) {
      if (!sc.String(&system) || system.empty()) return std::nullopt;
      has_system = true;
    } else {
      return std::nullopt;
    }
    if (sc.Peek('}')) break;
  }
  if (!sc.Eat('}') || !sc.AtEnd()) return std::nullopt;
  if (has_messages == has_prompt || (has_messages && has_system)) return std::nullopt;
  if (has_prompt) {
    if (has_system) out.messages.push_back(Message{"system", std::move(system)});
    out.messages.push_back(Message{"user", std::move(prompt)});
  }
  return out;
}

}  // namespace retort
