// ParseProviderErrorBody: reads every known teacher error-body shape into a ProviderError.
#pragma once

#include <string_view>

#include "teacher/json_field.h"
#include "teacher/provider.h"

namespace retort {

// Accepts {"error":{"message","type","param","code"}} (OpenAI; vLLM with integer code),
// {"error":"text"}, flat {"object":"error","message","type","code"} (older vLLM and forks)
// and {"type":"error","error":{"type","message","details":{"error_code"}}} (Anthropic).
// `code` may be a string, an integer or null. Fields of the wrong type are left empty
// (an error body is diagnostic, never training data). All fields empty if unrecognised.
ProviderError ParseProviderErrorBody(std::string_view body);

// The same, for an already parsed JSON value (e.g. an in-stream error payload).
ProviderError ParseProviderErrorJson(const Json& j);

// The Status for an error payload received inside a 200 stream: Unavailable when it signals
// overload or a server-side failure (overloaded_error, api_error, server_error, ...),
// Corruption otherwise. The message is "<what> <type>: <first 200 bytes of message>".
Status InStreamErrorStatus(const Json& payload, const std::string& what);

}  // namespace retort
