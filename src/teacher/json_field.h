// JsonField: typed, non-throwing reads of response-body JSON fields with path-named errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "retort/status.h"
#include "store/corpus_json.h"  // kMaxJsonDepth, JsonNestingExceeds

namespace retort {

using Json = nlohmann::json;

// Parses untrusted JSON text into `*out` without throwing. Corruption "invalid JSON (<n>
// bytes)" for malformed text (including invalid UTF-8 in strings), or "JSON nested deeper
// than <kMaxJsonDepth> levels" (checked before parsing).
Status ParseJson(std::string_view text, Json* out);

// Merges the --extra-body JSON object (may be "") into *body; its keys override ours.
// InvalidArgument when it is not a JSON object.
Status MergeExtraBody(const std::string& extra_json, Json* body);

// Joins a parent path and a key: ("choices[0]", "message") -> "choices[0].message".
std::string JsonPath(const std::string& parent, const char* key);
// ("choices", 0) -> "choices[0]".
std::string JsonPath(const std::string& parent, std::size_t index);

// Each reader looks up `key` in `obj` (REQUIRES: obj.is_object()). An absent key or a JSON
// null leaves `*out` empty and returns OK; a value of the wrong type returns Corruption
// "<path>: expected <type>" where path = JsonPath(where, key).
Status ReadString(const Json& obj, const char* key, const std::string& where, std::optional<std::string>* out);
// Integers must be JSON integers within int64 (no floats, no strings).
Status ReadInt(const Json& obj, const char* key, const std::string& where, std::optional<std::int64_t>* out);
// Any JSON number.
Status ReadNumber(const Json& obj, const char* key, const std::string& where, std::optional<double>* out);
// Sets `*out` to the object/array inside `obj` (not copied), or nullptr when absent/null.
Status ReadObject(const Json& obj, const char* key, const std::string& where, const Json** out);
Status ReadArray(const Json& obj, const char* key, const std::string& where, const Json** out);

// Serialises `j` compactly with sorted keys. InvalidArgument if a string is not valid UTF-8.
Result<std::string> DumpJson(const Json& j);

// Returns the length (1..4) of the well-formed UTF-8 sequence at the start of `s`, or 0 if
// it is not one (a stray continuation byte, an overlong form, a surrogate, > U+10FFFF or a
// truncated sequence).
std::size_t Utf8SequenceLength(std::string_view s);

// A one-line human message made of `s`: always valid UTF-8 (each ill-formed byte becomes
// U+FFFD), control characters replaced with spaces, cut to at most `max_bytes` bytes on a
// character boundary. Safe to store and to serialise as JSON whatever `s` holds.
std::string ShortText(std::string_view s, std::size_t max_bytes);

}  // namespace retort
