// Utf8: well-formedness check shared by prompt import and the canonical JSON codecs.
#pragma once

#include <cstddef>
#include <string_view>

namespace retort {

// Length (2-4) of the well-formed multi-byte UTF-8 sequence at p[0..n), or 0 when p[0] starts
// none (ASCII, a stray continuation byte, overlong, surrogate, > U+10FFFF, truncated).
// REQUIRES: n >= 1.
inline size_t Utf8SequenceLength(const unsigned char* p, size_t n) {
  const unsigned char c = p[0];
  size_t len;
  unsigned cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (len > n) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
// On false, *bad_offset (if given) is the byte offset of the first bad sequence.
bool IsValidUtf8(std::string_view s, size_t* bad_offset = nullptr);

}  // namespace retort
