// SimpleLineScanner: a DOM-free fast path for the common, well-formed JSONL prompt line shapes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "retort/corpus.h"

namespace retort {

// The fields of a well-formed prompt line, before key/hash derivation.
struct ScannedLine {
  std::string id;                // "" when absent
  std::vector<Message> messages; // from "messages", or from "system"?+"prompt"
  std::string metadata_json;     // canonical (nlohmann dump) of "metadata", or "" when absent
};

// Scans `line` (valid UTF-8, no trailing '\r') when it is a JSON object of one of the accepted
// prompt shapes with every field of the right type and value: {"id"?, "messages":[{"role",
// "content"}...], "metadata"?} or {"id"?, "prompt", "system"?, "metadata"?}, roles among
// system/user/assistant, nothing empty, no duplicate or unknown keys. Returns nullopt for
// anything else, valid or not (the caller then runs the full parser, which owns every error
// message), so the fast path never decides a rejection. Pure function; thread-safe.
std::optional<ScannedLine> ScanSimplePromptLine(std::string_view line);

}  // namespace retort
