// Fuzz target: prompt files, split into lines by LineReader and parsed by both line parsers.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_split.h"
#include "prompts/line_reader.h"
#include "prompts/prompt_line_parser.h"

using retort::fuzz::Require;

namespace {

// The contract of ParsedLine, and that everything reaching the store or an import summary
// (messages, keys, metadata, error fields and messages) is valid UTF-8.
void Check(const retort::ParsedLine& p) {
  Require(int(p.ok) + int(p.blank) <= 1, "a line is both ok and blank");
  if (p.blank) return;
  if (!p.ok) {
    Require(!p.error.field.empty() && !p.error.message.empty(), "error without field or message");
    Require(retort::IsValidUtf8(p.error.field) && retort::IsValidUtf8(p.error.message), "error text is not UTF-8");
    return;
  }
  const retort::Prompt& pr = p.prompt;
  Require(!pr.messages.empty() && pr.messages.back().role == "user", "accepted prompt does not end with a user turn");
  Require(!pr.key.empty() && retort::IsValidUtf8(pr.key), "accepted prompt has a bad key");
  Require(pr.content_hash.size() == 64, "content hash is not SHA-256 hex");
  for (const retort::Message& m : pr.messages) {
    Require(m.role == "system" || m.role == "user" || m.role == "assistant", "unknown role accepted");
    Require(!m.content.empty() && retort::IsValidUtf8(m.content), "empty or non-UTF-8 content accepted");
  }
  if (!pr.metadata_json.empty()) {
    nlohmann::json j = nlohmann::json::parse(pr.metadata_json, nullptr, false);
    Require(!j.is_discarded() && j.is_object(), "stored metadata is not a JSON object");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks a small line limit so the too-long path is exercised too.
  const std::size_t max_line = 16 + static_cast<std::size_t>(data[0]) * 64;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (std::string_view line : {text, text.substr(0, text.find('\n'))}) {
    Check(retort::ParsePromptJsonLine(line));
    Check(retort::ParsePromptTextLine(line));
  }
  if (text.empty()) return 0;
  std::FILE* f = fmemopen(const_cast<char*>(text.data()), text.size(), "rb");
  Require(f != nullptr, "fmemopen failed");
  retort::LineReader reader(f, max_line);
  std::string joined;
  bool any_too_long = false, first = true;
  for (int i = 0; i <= static_cast<int>(text.size()); ++i) {
    std::string_view line;
    bool too_long = false;
    retort::Result<bool> more = reader.Next(&line, &too_long);
    Require(more.ok(), "LineReader failed on a memory file");
    if (!*more) break;
    Require(line.size() <= max_line, "LineReader returned a line over its limit");
    any_too_long |= too_long;
    if (!first) joined += '\n';
    first = false;
    joined.append(line);
    Check(retort::ParsePromptJsonLine(line));
  }
  std::fclose(f);
  std::string_view expect = text;
  if (!expect.empty() && expect.back() == '\n') expect.remove_suffix(1);
  if (!any_too_long) Require(joined == expect, "LineReader lines do not rebuild the input");
  return 0;
}
