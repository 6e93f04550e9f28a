// Utf8: well-formedness check shared by prompt import and the canonical JSON codecs.
#pragma once

#include <cstddef>
#include <string_view>

namespace retort {

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
// On false, *bad_offset (if given) is the byte offset of the first bad sequence.
bool IsValidUtf8(std::string_view s, size_t* bad_offset = nullptr);

}  // namespace retort
