// JsonField implementation.
#include "teacher/json_field.h"

#include <algorithm>
#include <limits>

namespace retort {
namespace {

Status WrongType(const std::string& path, const char* type) {
  return Status::Corruption(path + ": expected " + type);
}

// The member `key`, or nullptr when absent or null.
const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

Status ParseJson(std::string_view text, Json* out) {
  if (JsonNestingExceeds(text, kMaxJsonDepth))
    return Status::Corruption("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  *out = Json::parse(text, nullptr, false);
  if (out->is_discarded()) {
    *out = Json();
    return Status::Corruption("invalid JSON (" + std::to_string(text.size()) + " bytes)");
  }
  return Status::OK();
}

std::string JsonPath(const std::string& parent, const char* key) {
  return parent.empty() ? std::string(key) : parent + "." + key;
}

std::string JsonPath(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

Status ReadString(const Json& obj, const char* key, const std::string& where, std::optional<std::string>* out) {
  out->reset();
  const Json* v = Member(obj, key);
  if (v == nullptr) return Status::OK();
  if (!v->is_string()) return WrongType(JsonPath(where, key), "string");
  *out = v->get_ref<const std::string&>();
  return Status::OK();
}

Status ReadInt(const Json& obj, const char* key, const std::string& where, std::optional<std::int64_t>* out) {
  out->reset();
  const Json* v = Member(obj, key);
  if (v == nullptr) return Status::OK();
  if (v->is_number_unsigned()) {
    auto u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return Status::Corruption(JsonPath(where, key) + ": integer out of range");
    *out = static_cast<std::int64_t>(u);
    return Status::OK();
  }
  if (!v->is_number_integer()) return WrongType(JsonPath(where, key), "integer");
  *out = v->get<std::int64_t>();
  return Status::OK();
}

Status ReadNumber(const Json& obj, const char* key, const std::string& where, std::optional<double>* out) {
  out->reset();
  const Json* v = Member(obj, key);
  if (v == nullptr) return Status::OK();
  if (!v->is_number()) return WrongType(JsonPath(where, key), "number");
  *out = v->get<double>();
  return Status::OK();
}

Status ReadObject(const Json& obj, const char* key, const std::string& where, const Json** out) {
  *out = Member(obj, key);
  if (*out != nullptr && !(*out)->is_object()) {
    *out = nullptr;
    return WrongType(JsonPath(where, key), "object");
  }
  return Status::OK();
}

Status ReadArray(const Json& obj, const char* key, const std::string& where, const Json** out) {
  *out = Member(obj, key);
  if (*out != nullptr && !(*out)->is_array()) {
    *out = nullptr;
    return WrongType(JsonPath(where, key), "array");
  }
  return Status::OK();
}

Result<std::string> DumpJson(const Json& j) {
  try {
    return j.dump();
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("cannot serialise JSON: ") + e.what());
  }
}

std::size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Unicode table 3-7)
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if ((b(i) & 0xC0) != 0x80) return 0;
  return n;
}

std::string ShortText(std::string_view s, std::size_t max_bytes) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = Utf8SequenceLength(s.substr(i));
    std::string_view piece = n == 0 ? kReplacement : s.substr(i, n);
    if (out.size() + piece.size() > max_bytes) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (n == 1 && (c < 0x20 || c == 0x7F)) out.push_back(' ');
    else out.append(piece);
    i += n == 0 ? 1 : n;
  }
  return out;
}

Status MergeExtraBody(const std::string& extra_json, Json* body) {
  if (extra_json.empty()) return Status::OK();
  Json extra = Json::parse(extra_json, nullptr, false);
  if (extra.is_discarded()) return Status::InvalidArgument("extra_body: invalid JSON");
  if (!extra.is_object()) return Status::InvalidArgument("extra_body: expected a JSON object");
  for (auto it = extra.begin(); it != extra.end(); ++it) (*body)[it.key()] = it.value();
  return Status::OK();
}

}  // namespace retort
