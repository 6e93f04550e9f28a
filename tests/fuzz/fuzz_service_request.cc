// Fuzz target: the request bodies of `retort serve` — POST /v1/runs, POST /v1/exports and the
// JSONL body of POST /v1/prompt-sets/{name} — through the parsers the service itself calls.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_split.h"
#include "fuzz/parsed_line_check.h"
#include "prompts/line_reader.h"
#include "prompts/prompt_line_parser.h"
#include "retort/importer.h"
#include "service/export_request.h"
#include "service/run_request.h"
#include "service/service.h"

using retort::fuzz::CheckParsedLine;
using retort::fuzz::Require;

namespace {

// A rejected body must become a 400 whose JSON error body can be serialised (api_router's
// ErrorBody would throw on a message that is not UTF-8 and answer 500 instead).
void RequireReportable(const retort::Status& st) {
  Require(st.code() == retort::StatusCode::kInvalidArgument, "a body parser returned a code other than InvalidArgument");
  Require(!st.message().empty(), "a rejected body without a message");
  try {
    (void)nlohmann::json{{"error", {{"code", "invalid_argument"}, {"message", st.message()}}}}.dump();
  } catch (const std::exception&) {
    Require(false, "error message cannot be serialised as JSON");
  }
}

// POST /v1/runs: what StartRun does before the Store, and what a resume does with the saved body.
void FuzzRunBody(std::string_view body) {
  retort::Result<retort::RunRequest> r = retort::ParseRunRequest(body);
  if (!r.ok()) return RequireReportable(r.status());
  const retort::HarvestOptions& o = r->options;
  Require(o.Validate().ok(), "accepted run options do not validate");
  Require(retort::ValidResourceName(o.run), "accepted run name breaks the name rule");
  std::string saved;
  try {
    saved = r->body.dump();  // Service::StartRun -> Store::SaveRunOptions
  } catch (const std::exception&) {
    Require(false, "accepted run body cannot be saved as JSON");
  }
  // Service::ResumeSaved parses the saved body again: it must give the same run.
  retort::Result<retort::RunRequest> again = retort::ParseRunRequest(saved);
  Require(again.ok(), "saved run body is refused when the run resumes");
  const retort::HarvestOptions& a = again->options;
  Require(a.run == o.run && a.set == o.set && a.provider == o.provider && a.base_urls == o.base_urls &&
              a.model == o.model && a.api_key_env == o.api_key_env && a.params == o.params &&
              a.concurrency == o.concurrency && a.max_attempts == o.max_attempts &&
              a.max_requests == o.max_requests && a.max_total_tokens == o.max_total_tokens,
          "saved run body resumes with other options");
}

// POST /v1/exports.
void FuzzExportBody(std::string_view body) {
  retort::Result<retort::ExportOptions> r = retort::ParseExportRequest(body);
  if (!r.ok()) return RequireReportable(r.status());
  Require(r->Validate().ok(), "accepted export options do not validate");
  Require(!r->run.empty() && !r->out_dir.empty(), "accepted export without run or out");
  std::string canonical;
  try {
    canonical = r->ToJson();  // stored in the manifest and the exports table
  } catch (const std::exception&) {
    Require(false, "accepted export options cannot be written as JSON");
  }
  nlohmann::json j = nlohmann::json::parse(canonical, nullptr, false);
  Require(!j.is_discarded() && j.is_object(), "ExportOptions::ToJson is not a JSON object");
}

// POST /v1/prompt-sets/{name}: the body is read as a JSONL file by the importer (LineReader with
// the default line limit, then ParseImportLine per line); each rejected line is reported back
// as "body:<line>: <field>: <message> (<reason>)" inside the JSON answer.
void FuzzUploadBody(std::string_view body) {
  if (body.empty()) return;
  const retort::ImportOptions io;  // what Service::ImportPromptSet uses
  std::FILE* f = fmemopen(const_cast<char*>(body.data()), body.size(), "rb");
  Require(f != nullptr, "fmemopen failed");
  retort::LineReader reader(f, static_cast<std::size_t>(io.max_line_bytes));
  for (std::int64_t lineno = 1; lineno <= static_cast<std::int64_t>(body.size()) + 1; ++lineno) {
    std::string_view line;
    bool too_long = false;
    retort::Result<bool> more = reader.Next(&line, &too_long);
    Require(more.ok(), "LineReader failed on a memory file");
    if (!*more) break;
    retort::ParsedLine p = retort::ParseImportLine(line, lineno == 1, too_long, io.max_line_bytes, io.text);
    CheckParsedLine(p);
    if (p.ok || p.blank) continue;
    const std::string report = "body:" + std::to_string(lineno) + ": " + p.error.field + ": " + p.error.message +
                               " (" + retort::LineErrorReasonName(p.error.reason) + ")";
    try {
      (void)nlohmann::json{{"errors", {report}}}.dump();
    } catch (const std::exception&) {
      Require(false, "rejected-line report cannot be serialised as JSON");
    }
  }
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  FuzzRunBody(body);
  FuzzExportBody(body);
  FuzzUploadBody(body);
  // The {name} of an upload is matched by the route as [^/]+ and checked by ValidResourceName.
  if (size <= 256) {
    const std::string name(body.substr(0, body.find('/')));
    if (retort::ValidResourceName(name))
      Require(!name.empty() && name.size() <= 128 && name[0] != '.', "a bad resource name is accepted");
  }
  return 0;
}
