// MessageLiterals implementation: a validating slicer for canonical literals, a re-quoting fallback.
#include "export/message_literals.h"

#include <nlohmann/json.hpp>

#include "export/json_writer.h"
#include "store/corpus_json.h"
#include "store/utf8.h"

namespace retort {

namespace {

bool Expect(std::string_view s, size_t* pos, std::string_view lit) {
  if (s.compare(*pos, lit.size(), lit) != 0) return false;
  *pos += lit.size();
  return true;
}

inline bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Scans the string literal starting at s[*pos] == '"' and returns true, with *pos past its
// closing quote, when the literal is exactly what JsonWriter::AppendQuoted writes for the text
// it decodes to: raw bytes are printable ASCII or well-formed UTF-8; escapes are \" \\ \n \r
// \t \b \f, or \u00XX (lower-case hex) for the other control characters. Anything else (e.g.
// "\/" or "\u00e9") returns false: that text is decoded and re-quoted instead.
bool ScanWriterLiteral(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = *pos;
  if (i >= n || p[i] != '"') return false;
  ++i;
  while (i < n) {
    i = JsonWriter::SkipPlain(p, i, n);
    if (i == n) break;
    const unsigned char c = p[i];
    if (c == '"') {
      *pos = i + 1;
      return true;
    }
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(p + i, n - i);
      if (len == 0) return false;
      i += len;
      continue;
    }
    if (c != '\\' || i + 1 >= n) return false;  // raw control character, or a truncated escape
    const char e = static_cast<char>(p[i + 1]);
    if (e == '"' || e == '\\' || e == 'n' || e == 'r' || e == 't' || e == 'b' || e == 'f') {
      i += 2;
      continue;
    }
    if (e != 'u' || i + 6 > n || p[i + 2] != '0' || p[i + 3] != '0' || (p[i + 4] != '0' && p[i + 4] != '1') ||
        !IsLowerHex(static_cast<char>(p[i + 5])))
      return false;
    const int v = (p[i + 4] - '0') * 16 + (p[i + 5] <= '9' ? p[i + 5] - '0' : p[i + 5] - 'a' + 10);
    if (v == '\b' || v == '\t' || v == '\n' || v == '\f' || v == '\r') return false;  // written short
    i += 6;
  }
  return false;
}

}  // namespace

bool MessageLiterals::SliceCanonical(std::string_view s) {
  size_t pos = 0;
  if (!Expect(s, &pos, "[")) return false;
  if (Expect(s, &pos, "]")) return pos == s.size();
  for (;;) {
    MessageLiteral m;
    if (!Expect(s, &pos, "{\"content\":")) return false;
    size_t start = pos;
    if (!ScanWriterLiteral(s, &pos)) return false;
    m.content = s.substr(start, pos - start);
    if (!Expect(s, &pos, ",\"role\":")) return false;
    start = pos;
    if (!ScanWriterLiteral(s, &pos)) return false;
    m.role = s.substr(start, pos - start);
    if (!Expect(s, &pos, "}")) return false;
    lits_.push_back(m);
    if (Expect(s, &pos, "]")) return pos == s.size();
    if (!Expect(s, &pos, ",")) return false;
  }
}

Status MessageLiterals::Parse(std::string_view stored_json) {
  lits_.clear();
  if (SliceCanonical(stored_json)) return Status::OK();
  Result<std::vector<Message>> m = MessagesFromJson(stored_json);
  if (!m.ok()) return m.status();
  Assign(*m);
  return Status::OK();
}

void MessageLiterals::Assign(const std::vector<Message>& messages) {
  lits_.clear();
  quoted_.clear();
  offs_.clear();
  for (const Message& m : messages) {
    JsonWriter::AppendQuoted(&quoted_, m.role);
    offs_.emplace_back(quoted_.size(), 0);
    JsonWriter::AppendQuoted(&quoted_, m.content);
    offs_.back().second = quoted_.size();
  }
  // Views are taken once quoted_ no longer grows.
  size_t begin = 0;
  for (const auto& [role_end, content_end] : offs_) {
    lits_.push_back(MessageLiteral{std::string_view(quoted_).substr(begin, role_end - begin),
                                   std::string_view(quoted_).substr(role_end, content_end - role_end)});
    begin = content_end;
  }
}

std::string MessageLiterals::Decode(std::string_view literal) {
  nlohmann::json j = nlohmann::json::parse(literal, nullptr, false);
  return j.is_string() ? j.get_ref<const std::string&>() : std::string(literal);
}

}  // namespace retort
