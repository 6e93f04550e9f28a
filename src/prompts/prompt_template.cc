// PromptTemplate implementation: placeholder parsing, rendering from a JSON object, leftover columns as metadata.
#include "prompts/prompt_template.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "store/utf8.h"

namespace retort {

using nlohmann::json;

Result<PromptTemplate> PromptTemplate::Parse(std::string_view text, const std::string& flag) {
  PromptTemplate t;
  t.text_ = std::string(text);
  std::string lit;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      lit += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      lit += '}';
      ++i;
    } else if (c == '}') {
      return Status::InvalidArgument(flag + ": unmatched '}' at character " + std::to_string(i + 1) +
                                     " (write '}}' for a literal brace)");
    } else if (c == '{') {
      const size_t close = text.find_first_of("{}", i + 1);
      if (close == std::string_view::npos || text[close] != '}')
        return Status::InvalidArgument(flag + ": unmatched '{' at character " + std::to_string(i + 1) +
                                       " (write '{{' for a literal brace)");
      std::string name(text.substr(i + 1, close - i - 1));
      if (name.empty())
        return Status::InvalidArgument(flag + ": empty placeholder '{}' at character " + std::to_string(i + 1));
      if (!lit.empty()) t.parts_.push_back(Part{false, std::move(lit)});
      lit.clear();
      if (std::find(t.fields_.begin(), t.fields_.end(), name) == t.fields_.end()) t.fields_.push_back(name);
      t.parts_.push_back(Part{true, std::move(name)});
      i = close;
    } else {
      lit += c;
    }
  }
  if (!lit.empty()) t.parts_.push_back(Part{false, std::move(lit)});
  return t;
}

Result<RowTemplate> MakeRowTemplate(const std::string& user, const std::string& system, const std::string& id_field) {
  RowTemplate t;
  if (user.empty()) return Status::InvalidArgument("--template: must not be empty");
  if (!IsValidUtf8(user)) return Status::InvalidArgument("--template: not valid UTF-8");
  if (!IsValidUtf8(system)) return Status::InvalidArgument("--system-template: not valid UTF-8");
  Result<PromptTemplate> u = PromptTemplate::Parse(user, "--template");
  if (!u.ok()) return u.status();
  t.user = std::move(*u);
  t.system_text = system;
  if (!system.empty()) {
    Result<PromptTemplate> s = PromptTemplate::Parse(system, "--system-template");
    if (!s.ok()) return s.status();
    t.system = std::move(*s);
  }
  t.id_field = id_field;
  return t;
}

namespace {

std::string Text(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// `row` is a JSON object (keys are the column names).
ParsedLine FromObject(const RowTemplate& t, json row) {
  auto missing = [&](const std::string& name, const std::string& which) {
    return LineFailure(LineErrorReason::kMissingColumn, name, "column missing (" + which + ")");
  };
  for (const std::string& f : t.user.fields())
    if (!row.contains(f)) return missing(f, "template '" + t.user.text() + "'");
  if (!t.system_text.empty())
    for (const std::string& f : t.system.fields())
      if (!row.contains(f)) return missing(f, "system template '" + t.system_text + "'");
  std::string id;
  if (!t.id_field.empty()) {
    auto it = row.find(t.id_field);
    if (it == row.end()) return missing(t.id_field, "--id-field");
    if (!it->is_string() && !it->is_number())
      return LineFailure(LineErrorReason::kWrongType, t.id_field, "the id must be a string or a number");
    id = Text(*it);
    if (id.empty()) return LineFailure(LineErrorReason::kEmptyContent, t.id_field, "the id must not be empty");
  }
  // Each placeholder's text, computed once per field.
  std::map<std::string, std::string> texts;
  for (const PromptTemplate* pt : {&t.user, &t.system})
    for (const std::string& f : pt->fields())
      if (!texts.count(f)) texts[f] = Text(row[f]);
  auto value = [&](const std::string& name) -> const std::string& { return texts.at(name); };
  auto too_long = [](const char* field) {
    return LineFailure(LineErrorReason::kLineTooLong, field,
                       "the rendered text is longer than " + std::to_string(kMaxRenderedBytes) + " bytes");
  };
  std::vector<Message> messages;
  std::string text;
  if (!t.system_text.empty()) {
    if (!t.system.Render(value, kMaxRenderedBytes, &text)) return too_long("system");
    if (text.empty()) return LineFailure(LineErrorReason::kEmptyContent, "system", "the system template renders empty");
    messages.push_back(Message{"system", std::move(text)});
  }
  if (!t.user.Render(value, kMaxRenderedBytes, &text)) return too_long("prompt");
  if (text.empty()) return LineFailure(LineErrorReason::kEmptyContent, "prompt", "the template renders empty");
  messages.push_back(Message{"user", std::move(text)});
  for (const std::string& f : t.user.fields()) row.erase(f);
  if (!t.system_text.empty())
    for (const std::string& f : t.system.fields()) row.erase(f);
  if (!t.id_field.empty()) row.erase(t.id_field);
  std::string metadata = row.empty() ? "" : row.dump(-1, ' ', false, json::error_handler_t::replace);
  return FinishPrompt(std::move(messages), std::move(id), std::move(metadata));
}

}  // namespace

ParsedLine ParseTemplateJsonLine(const RowTemplate& t, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (std::optional<ParsedLine> pre = PrecheckJsonLine(line)) return std::move(*pre);
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return LineFailure(LineErrorReason::kInvalidJson, "line", "invalid JSON");
  if (!j.is_object())
    return LineFailure(LineErrorReason::kNotAnObject, "line", "must be a JSON object (its keys fill the template)");
  return FromObject(t, std::move(j));
}

ParsedLine ParseTemplateCsvRecord(const RowTemplate& t, const std::vector<std::string>& header,
                                  const std::vector<std::string>& fields) {
  if (fields.size() != header.size())
    return LineFailure(LineErrorReason::kInvalidCsv, "line",
                       "the record has " + std::to_string(fields.size()) + " fields, the header " +
                           std::to_string(header.size()));
  for (size_t i = 0; i < fields.size(); ++i) {
    size_t bad = 0;
    if (!IsValidUtf8(fields[i], &bad))
      return LineFailure(LineErrorReason::kInvalidUtf8, header[i], "invalid UTF-8 at byte " + std::to_string(bad + 1));
  }
  json row = json::object();
  for (size_t i = 0; i < fields.size(); ++i) row[header[i]] = fields[i];
  return FromObject(t, std::move(row));
}

}  // namespace retort
