// ParseProviderErrorBody implementation.
#include "teacher/provider_error.h"

namespace retort {
namespace {

std::string StringOf(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return "";
  return it->get_ref<const std::string&>();
}

// A code given as a string or an integer, as text.
std::string CodeOf(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return "";
  if (it->is_string()) return it->get_ref<const std::string&>();
  if (it->is_number_integer()) return it->dump();
  return "";
}

void FillFrom(const Json& e, ProviderError* out) {
  out->type = StringOf(e, "type");
  out->code = CodeOf(e, "code");
  out->message = StringOf(e, "message");
  auto details = e.find("details");
  if (details != e.end() && details->is_object()) out->detail_code = StringOf(*details, "error_code");
}

}  // namespace

ProviderError ParseProviderErrorJson(const Json& j) {
  ProviderError out;
  if (!j.is_object()) return out;
  auto err = j.find("error");
  if (err != j.end()) {
    if (err->is_object()) {
      FillFrom(*err, &out);
    } else if (err->is_string()) {
      out.message = err->get_ref<const std::string&>();
    }
    return out;
  }
  auto obj = j.find("object");
  if (obj != j.end() && obj->is_string() && obj->get_ref<const std::string&>() == "error") FillFrom(j, &out);
  return out;
}

ProviderError ParseProviderErrorBody(std::string_view body) {
  Json j;
  if (!ParseJson(body, &j).ok()) return {};
  return ParseProviderErrorJson(j);
}

Status InStreamErrorStatus(const Json& payload, const std::string& what) {
  ProviderError e = ParseProviderErrorJson(payload);
  std::string kind = !e.type.empty() ? e.type : e.code;
  std::string msg = what + (kind.empty() ? "" : " " + ShortText(kind, 80)) + ": " + ShortText(e.message, 200);
  bool transient = kind.find("overloaded") != std::string::npos || e.code.find("overloaded") != std::string::npos ||
                   e.type == "server_error" || e.type == "api_error" || e.type == "service_unavailable_error" ||
                   e.type == "timeout_error";
  return transient ? Status::Unavailable(msg) : Status::Corruption(msg);
}

}  // namespace retort
