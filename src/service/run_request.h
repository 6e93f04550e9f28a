// RunRequest: the JSON body of POST /v1/runs -> HarvestOptions, through HarvestOptionTable().
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "retort/harvester.h"
#include "retort/status.h"

namespace retort {

// The JSON field name of a harvest option: "max-tokens" -> "max_tokens".
std::string JsonFieldName(const std::string& option_name);

// True when a body field name looks like it carries a secret (api_key, token, password, ...).
// Option names of the table (max_tokens, api_key_env, ...) are not secrets.
bool LooksLikeSecretField(const std::string& field);

// Builds the options of a run from a JSON object: "name" (the run), "set", and every option of
// HarvestOptionTable() under its JSON field name. Strings for string options, integers for
// integer options, numbers for number options, booleans for flags, a string or an array of
// strings for repeatable options ("extra_body" may also be a JSON object). Nothing is coerced.
// Errors (InvalidArgument, the message names the JSON field): not an object, an unknown field,
// a wrongly typed value, a field that looks like a secret ("API keys come from the server's
// environment: use api_key_env"), or HarvestOptions::Validate() failing. A missing base_url is
// taken from $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL as in `retort harvest`.
Result<HarvestOptions> HarvestOptionsFromJson(const nlohmann::json& body);

// Parses a request body that must hold one JSON object. Never throws; never recurses over the
// body: nesting is checked first by a flat scan (JsonNestingExceeds). Errors (InvalidArgument):
// "body: JSON nested deeper than 512 levels", "body: not valid JSON", "body: expected a JSON object".
Result<nlohmann::json> ParseJsonObjectBody(std::string_view body);

// A parsed POST /v1/runs body.
struct RunRequest {
  // Validated options; options.run satisfies ValidResourceName().
  HarvestOptions options;
  // The body as received: saved with the run (Store::SaveRunOptions) and parsed again by
  // HarvestOptionsFromJson when the run resumes.
  nlohmann::json body;
};

// Everything POST /v1/runs does with its body before touching the Store: ParseJsonObjectBody,
// HarvestOptionsFromJson and the run-name rule of ValidResourceName(). Errors: InvalidArgument
// naming the field. Pure apart from reading $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL; thread-safe.
Result<RunRequest> ParseRunRequest(std::string_view body);

// Rewrites "--max-tokens" in a message to "max_tokens" (option names -> JSON field names).
std::string FlagsToJsonFields(std::string message);

}  // namespace retort
