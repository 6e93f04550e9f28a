// Fuzz target: prompt files, split into lines by LineReader and parsed by both line parsers.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_split.h"
#include "fuzz/parsed_line_check.h"
#include "prompts/line_reader.h"
#include "prompts/prompt_line_parser.h"

using retort::fuzz::CheckParsedLine;
using retort::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks a small line limit so the too-long path is exercised too.
  const std::size_t max_line = 16 + static_cast<std::size_t>(data[0]) * 64;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (std::string_view line : {text, text.substr(0, text.find('\n'))}) {
    CheckParsedLine(retort::ParsePromptJsonLine(line));
    CheckParsedLine(retort::ParsePromptTextLine(line));
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
    CheckParsedLine(retort::ParsePromptJsonLine(line));
  }
  std::fclose(f);
  std::string_view expect = text;
  if (!expect.empty() && expect.back() == '\n') expect.remove_suffix(1);
  if (!any_too_long) Require(joined == expect, "LineReader lines do not rebuild the input");
  return 0;
}
