// JsonField implementation.
#include "teacher/json_field.h"

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

std::string ShortText(std::string_view s, std::size_t max_bytes) {
  if (s.size() > max_bytes) {
    std::size_t cut = max_bytes;
    // Step back over UTF-8 continuation bytes so a code point is never split.
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut);
  }
  std::string out(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  return out;
}

}  // namespace retort
