// JsonField: typed, non-throwing reads of response-body JSON fields with path-named errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "retort/status.h"

namespace retort {

using Json = nlohmann::json;

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

// Cuts `s` to at most `max_bytes` bytes on a UTF-8 boundary and replaces control
// characters with spaces (for one-line human messages).
std::string ShortText(std::string_view s, std::size_t max_bytes);

}  // namespace retort
