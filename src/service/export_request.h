// ExportRequest: the JSON body of POST /v1/exports -> ExportOptions.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "retort/exporter.h"
#include "retort/status.h"

namespace retort {

// Builds export options from a JSON object: "run", "out" and the flags of `retort export` with
// '-' turned into '_' (format, fields, reasoning, with_logprobs, shard_records, shard_bytes,
// compress, split, seed, keep_truncated, keep_duplicates, min_chars, max_chars, drop_pattern
// (a string or an array of strings), drop_pattern_reasoning, license). Nothing is coerced.
// Errors (InvalidArgument, the message names the JSON field): not an object, an unknown field,
// a wrongly typed or out-of-range value, a missing run or out, or ExportOptions::Validate()
// failing.
Result<ExportOptions> ExportOptionsFromJson(const nlohmann::json& body);

// Everything POST /v1/exports does with its body before touching the Store:
// ParseJsonObjectBody then ExportOptionsFromJson. Pure; thread-safe.
Result<ExportOptions> ParseExportRequest(std::string_view body);

}  // namespace retort
