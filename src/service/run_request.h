// RunRequest: the JSON body of POST /v1/runs -> HarvestOptions, through HarvestOptionTable().
#pragma once

#include <nlohmann/json.hpp>
#include <string>

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

// Rewrites "--max-tokens" in a message to "max_tokens" (option names -> JSON field names).
std::string FlagsToJsonFields(std::string message);

}  // namespace retort
