// Shared pieces of the simulator's two wire formats.
#include "sim/sim_wire.h"

namespace retort {

using nlohmann::json;

std::string SimDump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::optional<std::int64_t>> SimOptInt(const json& obj, const char* key, std::int64_t lo,
                                              std::int64_t hi) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::int64_t>();
  if (!it->is_number_integer()) {
    return Status::InvalidArgument(std::string("'") + key + "' must be an integer");
  }
  const std::int64_t v = it->is_number_unsigned() && it->get<std::uint64_t>() > INT64_MAX
                             ? INT64_MAX
                             : it->get<std::int64_t>();
  if (v < lo || v > hi) {
    return Status::InvalidArgument(std::string("'") + key + "' must be in [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return std::optional<std::int64_t>(v);
}

Result<std::optional<bool>> SimOptBool(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return Status::InvalidArgument(std::string("'") + key + "' must be a boolean");
  return std::optional<bool>(it->get<bool>());
}

Result<std::string> SimContentText(const json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    return Status::InvalidArgument(where + " must be a string or an array of content parts");
  }
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return Status::InvalidArgument(where + ": every content part must be an object with a string 'type'");
    }
    if (part["type"].get<std::string>() != "text") continue;
    auto t = part.find("text");
    if (t == part.end() || !t->is_string()) {
      return Status::InvalidArgument(where + ": a text part needs a string 'text'");
    }
    text += t->get<std::string>();
  }
  return text;
}

}  // namespace retort
