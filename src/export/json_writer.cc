// JsonWriter implementation: escaping with inline UTF-8 validation, to_chars for numbers.
#include "export/json_writer.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "store/utf8.h"

namespace retort {

void JsonWriter::Sep() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_[depth_]) out_->push_back(',');
  first_[depth_] = false;
}

void JsonWriter::Open(char c) {
  Sep();
  out_->push_back(c);
  ++depth_;
  first_[depth_] = true;
}

void JsonWriter::Close(char c) {
  --depth_;
  out_->push_back(c);
}

void JsonWriter::Key(std::string_view k) {
  Sep();
  AppendQuoted(out_, k);
  out_->push_back(':');
  after_key_ = true;
}

void JsonWriter::String(std::string_view s) {
  Sep();
  AppendQuoted(out_, s);
}

void JsonWriter::Int(std::int64_t v) {
  Sep();
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_->append(buf, r.ptr);
}

void JsonWriter::Double(double v) {
  Sep();
  if (!std::isfinite(v)) v = -9999.0;
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string_view t(buf, static_cast<size_t>(r.ptr - buf));
  out_->append(t);
  // Keep it a JSON number that reads back as floating point ("-1" -> "-1.0").
  if (t.find_first_of(".e") == std::string_view::npos) out_->append(".0");
}

void JsonWriter::Raw(std::string_view json) {
  Sep();
  out_->append(json);
}

// True when any of the 8 bytes of x is < 0x20, '"', '\\' or >= 0x80 (SWAR; exact as a yes/no).
static inline bool AnyByteNeedsCare(std::uint64_t x) {
  constexpr std::uint64_t k01 = 0x0101010101010101ULL, k80 = 0x8080808080808080ULL;
  const std::uint64_t below_space = (x - k01 * 0x20) & ~x & k80;
  const std::uint64_t q = x ^ (k01 * '"');
  const std::uint64_t quote = (q - k01) & ~q & k80;
  const std::uint64_t b = x ^ (k01 * '\\');
  const std::uint64_t backslash = (b - k01) & ~b & k80;
  return ((below_space | quote | backslash | x) & k80) != 0;
}

size_t JsonWriter::SkipPlain(const unsigned char* p, size_t i, size_t n) {
#if defined(__SSE2__)
  // A signed compare with 0x20 flags both control characters and bytes >= 0x80 (negative).
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
  while (i + 16 <= n) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i m =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)), _mm_cmplt_epi8(x, space));
    const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(m));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(mask));
    i += 16;
  }
#endif
  while (i + 8 <= n) {
    std::uint64_t x;
    std::memcpy(&x, p + i, 8);
    if (AnyByteNeedsCare(x)) break;
    i += 8;
  }
  for (; i < n; ++i) {
    const unsigned char c = p[i];
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) return i;
  }
  return n;
}

void JsonWriter::AppendQuoted(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  size_t i = 0;
  while (i < n) {
    i = SkipPlain(p, i, n);  // plain ASCII needs no escaping
    if (i == n) break;
    unsigned char c = p[i];
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(p + i, n - i);
      if (len) {
        i += len;
        continue;
      }
    }
    out->append(s.data() + run, i - run);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->append("\xEF\xBF\xBD");  // invalid UTF-8 byte -> U+FFFD
        }
    }
    ++i;
    run = i;
  }
  out->append(s.data() + run, n - run);
  out->push_back('"');
}

}  // namespace retort
