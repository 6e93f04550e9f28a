// CheckParsedLine: the contract of a ParsedLine, shared by the prompt-line and service fuzz targets.
#pragma once

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_split.h"
#include "prompts/prompt_line_parser.h"
#include "store/corpus_json.h"

namespace retort::fuzz {

// The contract of ParsedLine, and that everything reaching the store or an import summary
// (messages, keys, metadata, error fields and messages) is valid UTF-8.
inline void CheckParsedLine(const retort::ParsedLine& p) {
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
  // The store writes messages_json as the prompt's messages and keys content by its hash.
  Require(pr.messages_json == retort::MessagesToJson(pr.messages), "messages_json is not the messages' canonical JSON");
  Require(pr.content_hash == retort::ContentHash(pr.messages), "content hash is not the messages' hash");
  for (const retort::Message& m : pr.messages) {
    Require(m.role == "system" || m.role == "user" || m.role == "assistant", "unknown role accepted");
    Require(!m.content.empty() && retort::IsValidUtf8(m.content), "empty or non-UTF-8 content accepted");
  }
  if (!pr.metadata_json.empty()) {
    nlohmann::json j = nlohmann::json::parse(pr.metadata_json, nullptr, false);
    Require(!j.is_discarded() && j.is_object(), "stored metadata is not a JSON object");
  }
}

}  // namespace retort::fuzz
