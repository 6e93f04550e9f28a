// PromptLineParser implementation: UTF-8 check, JSON parse, strict typed field extraction.
#include "prompts/prompt_line_parser.h"

#include <nlohmann/json.hpp>

#include "prompts/simple_line_scanner.h"
#include "store/corpus_json.h"
#include "store/sha256.h"

namespace retort {

using nlohmann::json;

const char* LineErrorReasonName(LineErrorReason r) {
  switch (r) {
    case LineErrorReason::kInvalidJson: return "invalid_json";
    case LineErrorReason::kInvalidUtf8: return "invalid_utf8";
    case LineErrorReason::kNotAnObject: return "not_an_object";
    case LineErrorReason::kWrongType: return "wrong_type";
    case LineErrorReason::kMissingContent: return "missing_content";
    case LineErrorReason::kEmptyContent: return "empty_content";
    case LineErrorReason::kUnknownRole: return "unknown_role";
    case LineErrorReason::kUnknownField: return "unknown_field";
    case LineErrorReason::kAmbiguousForm: return "ambiguous_form";
    case LineErrorReason::kRoleOrder: return "role_order";
    case LineErrorReason::kIdConflict: return "id_conflict";
    case LineErrorReason::kLineTooLong: return "line_too_long";
    case LineErrorReason::kMissingColumn: return "missing_column";
    case LineErrorReason::kInvalidCsv: return "invalid_csv";
    case LineErrorReason::kUnsupportedRequest: return "unsupported_request";
  }
  return "invalid_json";
}

ParsedLine LineFailure(LineErrorReason reason, std::string field, std::string message) {
  ParsedLine out;
  out.error = LineError{reason, std::move(field), std::move(message)};
  return out;
}

namespace {

ParsedLine Fail(LineErrorReason reason, std::string field, std::string message) {
  return LineFailure(reason, std::move(field), std::move(message));
}

const char* TypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unsupported value";
  }
}

ParsedLine WrongType(const std::string& field, const char* want, const json& got) {
  return Fail(LineErrorReason::kWrongType, field, std::string("must be ") + want + ", got " + TypeName(got));
}

bool IsBlank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  return true;
}

std::string_view StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

ParsedLine FinishPrompt(std::vector<Message> messages, std::string id, std::string metadata_json) {
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].role == "system" && i != 0)
      return Fail(LineErrorReason::kRoleOrder, "messages[" + std::to_string(i) + "].role",
                  "a system message may only be the first message");
  if (messages.back().role != "user")
    return Fail(LineErrorReason::kRoleOrder, "messages[" + std::to_string(messages.size() - 1) + "].role",
                "the last message must be a user turn (the teacher answers it), got '" + messages.back().role + "'");
  ParsedLine out;
  out.ok = true;
  out.prompt.messages_json = MessagesToJson(messages);  // stored as is: the Store need not re-serialise
  out.prompt.content_hash = Sha256Hex(out.prompt.messages_json);
  out.prompt.key = id.empty() ? "h:" + out.prompt.content_hash.substr(0, 16) : std::move(id);
  out.prompt.messages = std::move(messages);
  out.prompt.metadata_json = std::move(metadata_json);
  return out;
}

namespace {

ParsedLine Finish(std::vector<Message> messages, std::string id, std::string metadata_json) {
  return FinishPrompt(std::move(messages), std::move(id), std::move(metadata_json));
}


// The checks every JSON line passes first: blank lines, UTF-8, nesting depth (a deeper value
// would overflow the stack when metadata is re-serialised). Sets *done when they decide the line.
ParsedLine PreCheck(std::string_view line, bool* done) {
  *done = true;
  if (IsBlank(line)) {
    ParsedLine b;
    b.blank = true;
    return b;
  }
  size_t bad = 0;
  if (!IsValidUtf8(line, &bad))
    return Fail(LineErrorReason::kInvalidUtf8, "line", "invalid UTF-8 at byte " + std::to_string(bad + 1));
  if (JsonNestingExceeds(line, kMaxJsonDepth))
    return Fail(LineErrorReason::kInvalidJson, "line",
                "invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  *done = false;
  return ParsedLine{};
}

ParsedLine ParseCheckedJsonLine(std::string_view line);

}  // namespace

std::optional<ParsedLine> PrecheckJsonLine(std::string_view line) {
  bool done = false;
  ParsedLine pre = PreCheck(line, &done);
  if (done) return pre;
  return std::nullopt;
}

ParsedLine ParsePromptJsonLine(std::string_view raw) {
  std::string_view line = StripCr(raw);
  bool done = false;
  ParsedLine pre = PreCheck(line, &done);
  if (done) return pre;
  if (std::optional<ScannedLine> s = ScanSimplePromptLine(line))
    return Finish(std::move(s->messages), std::move(s->id), std::move(s->metadata_json));
  return ParseCheckedJsonLine(line);
}

ParsedLine ParsePromptJsonLineFull(std::string_view raw) {
  std::string_view line = StripCr(raw);
  bool done = false;
  ParsedLine pre = PreCheck(line, &done);
  if (done) return pre;
  return ParseCheckedJsonLine(line);
}

namespace {

ParsedLine ParseCheckedJsonLine(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return Fail(LineErrorReason::kInvalidJson, "line", "invalid JSON");
  if (!j.is_object()) return Fail(LineErrorReason::kNotAnObject, "line", std::string("must be a JSON object, got ") + TypeName(j));

  for (const auto& [k, v] : j.items()) {
    (void)v;
    if (k != "id" && k != "messages" && k != "metadata" && k != "prompt" && k != "system")
      return Fail(LineErrorReason::kUnknownField, k.empty() ? "\"\"" : k,  // a field named "" is still named
                  "unknown field (expected id, messages, prompt, system, metadata)");
  }

  std::string id;
  if (auto it = j.find("id"); it != j.end()) {
    if (!it->is_string()) return WrongType("id", "a string", *it);
    id = it->get_ref<const std::string&>();
    if (id.empty()) return Fail(LineErrorReason::kEmptyContent, "id", "must not be empty");
  }
  std::string metadata;
  if (auto it = j.find("metadata"); it != j.end()) {
    if (!it->is_object()) return WrongType("metadata", "an object", *it);
    metadata = it->dump();  // std::map keys: sorted, canonical
  }

  const bool has_messages = j.contains("messages");
  const bool has_prompt = j.contains("prompt");
  const bool has_system = j.contains("system");
  if (has_messages && (has_prompt || has_system))
    return Fail(LineErrorReason::kAmbiguousForm, has_prompt ? "prompt" : "system",
                "use either \"messages\" or \"prompt\"/\"system\", not both");

  std::vector<Message> messages;
  if (has_messages) {
    const json& arr = j["messages"];
    if (!arr.is_array()) return WrongType("messages", "an array", arr);
    if (arr.empty()) return Fail(LineErrorReason::kEmptyContent, "messages", "must contain at least one message");
    messages.reserve(arr.size());
    for (size_t i = 0; i < arr.size(); ++i) {
      const std::string at = "messages[" + std::to_string(i) + "]";
      const json& m = arr[i];
      if (!m.is_object()) return WrongType(at, "an object", m);
      for (const auto& [k, v] : m.items()) {
        (void)v;
        if (k != "role" && k != "content")
          return Fail(LineErrorReason::kUnknownField, at + "." + k, "unknown field (expected role, content)");
      }
      auto r = m.find("role");
      if (r == m.end()) return Fail(LineErrorReason::kMissingContent, at + ".role", "is required");
      if (!r->is_string()) return WrongType(at + ".role", "a string", *r);
      const std::string& role = r->get_ref<const std::string&>();
      if (role != "system" && role != "user" && role != "assistant")
        return Fail(LineErrorReason::kUnknownRole, at + ".role",
                    "unknown role '" + role + "' (expected system, user or assistant)");
      auto c = m.find("content");
      if (c == m.end()) return Fail(LineErrorReason::kMissingContent, at + ".content", "is required");
      if (!c->is_string()) return WrongType(at + ".content", "a string", *c);
      const std::string& content = c->get_ref<const std::string&>();
      if (content.empty()) return Fail(LineErrorReason::kEmptyContent, at + ".content", "must not be empty");
      messages.push_back(Message{role, content});
    }
  } else if (has_prompt) {
    std::string system;
    if (has_system) {
      const json& s = j["system"];
      if (!s.is_string()) return WrongType("system", "a string", s);
      system = s.get<std::string>();
      if (system.empty()) return Fail(LineErrorReason::kEmptyContent, "system", "must not be empty (omit it instead)");
    }
    const json& p = j["prompt"];
    if (!p.is_string()) return WrongType("prompt", "a string", p);
    if (p.get_ref<const std::string&>().empty())
      return Fail(LineErrorReason::kEmptyContent, "prompt", "must not be empty");
    if (!system.empty()) messages.push_back(Message{"system", system});
    messages.push_back(Message{"user", p.get<std::string>()});
  } else {
    return Fail(LineErrorReason::kMissingContent, has_system ? "prompt" : "messages",
                "a prompt needs \"messages\" or \"prompt\"");
  }
  return Finish(std::move(messages), std::move(id), std::move(metadata));
}

}  // namespace

ParsedLine ParsePromptTextLine(std::string_view raw) {
  std::string_view line = StripCr(raw);
  if (IsBlank(line)) {
    ParsedLine b;
    b.blank = true;
    return b;
  }
  size_t bad = 0;
  if (!IsValidUtf8(line, &bad))
    return Fail(LineErrorReason::kInvalidUtf8, "line", "invalid UTF-8 at byte " + std::to_string(bad + 1));
  return Finish({Message{"user", std::string(line)}}, "", "");
}

ParsedLine ParseImportLine(std::string_view line, bool first_line, bool too_long, std::int64_t max_line_bytes,
                           bool text) {
  if (too_long)
    return Fail(LineErrorReason::kLineTooLong, "line", "longer than " + std::to_string(max_line_bytes) + " bytes");
  if (first_line && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // UTF-8 BOM
  return text ? ParsePromptTextLine(line) : ParsePromptJsonLine(line);
}

}  // namespace retort
