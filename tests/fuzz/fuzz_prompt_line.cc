// Fuzz target: prompt files, split into lines by LineReader and parsed by both line parsers.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_split.h"
#include "fuzz/parsed_line_check.h"
#include "prompts/batch_request_line.h"
#include "prompts/csv_reader.h"
#include "prompts/line_reader.h"
#include "prompts/prompt_line_parser.h"
#include "prompts/prompt_template.h"

using retort::fuzz::CheckParsedLine;
using retort::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks a small line limit so the too-long path is exercised too.
  const std::size_t max_line = 16 + static_cast<std::size_t>(data[0]) * 64;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  static const retort::RowTemplate kTemplate = *retort::MakeRowTemplate("Q: {q} {{x}} {n}", "S {s}", "id");
  for (std::string_view line : {text, text.substr(0, text.find('\n'))}) {
    CheckParsedLine(retort::ParsePromptJsonLine(line));
    CheckParsedLine(retort::ParsePromptTextLine(line));
    retort::ParsedLine b = retort::ParseBatchRequestLine(line);
    CheckParsedLine(b);
    Require(!b.ok || b.batch.has_value(), "an accepted batch line without its BatchLineInfo");
    if (retort::IsBatchRequestLine(line)) Require(b.ok || b.error.field != "custom_id", "detected batch line lacks custom_id");
    CheckParsedLine(retort::ParseTemplateJsonLine(kTemplate, line));
    std::vector<std::string> fields;
    std::string error;
    if (retort::SplitCsvRecord(line, &fields, &error))
      CheckParsedLine(retort::ParseTemplateCsvRecord(kTemplate, {"id", "q", "n", "s"}, fields));
    else
      Require(!error.empty(), "a CSV record rejected without a reason");
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
  // The same bytes as a CSV file: every record within the limit, line numbers increasing.
  std::FILE* cf = fmemopen(const_cast<char*>(text.data()), text.size(), "rb");
  Require(cf != nullptr, "fmemopen failed");
  retort::CsvReader csv(cf, max_line);
  retort::CsvRecord rec;
  std::int64_t last_line = 0;
  for (int i = 0; i <= static_cast<int>(text.size()); ++i) {
    retort::Result<bool> more = csv.Next(&rec);
    Require(more.ok(), "CsvReader failed on a memory file");
    if (!*more) break;
    Require(rec.lineno > last_line, "CSV record line numbers do not increase");
    last_line = rec.lineno;
    size_t bytes = 0;
    for (const std::string& fld : rec.fields) bytes += fld.size();
    Require(bytes <= max_line, "CsvReader returned a record over its limit");
    Require(!(rec.too_long && !rec.fields.empty()), "a too-long CSV record with fields");
  }
  std::fclose(cf);
  std::string_view expect = text;
  if (!expect.empty() && expect.back() == '\n') expect.remove_suffix(1);
  if (!any_too_long) Require(joined == expect, "LineReader lines do not rebuild the input");
  return 0;
}
