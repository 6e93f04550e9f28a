// Recorded bodies from docs/wire-formats.md (§A.3, §A.6, §D.2, §D.3), shared by the teacher tests.
#pragma once

namespace retort::testdata {

// §A.6 example stream (OpenAI Chat Completions, include_usage).
inline constexpr const char* kOpenAIStream =
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],"
    "\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
    "data: [DONE]\n\n";

// The non-streamed equivalent of kOpenAIStream.
inline constexpr const char* kOpenAIStreamEquivalentBody =
    R"({"id":"chatcmpl-123","object":"chat.completion","created":1694268190,"model":"gpt-4o-mini",
        "choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"logprobs":null,"finish_reason":"stop"}],
        "usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}})";

// §A.3 example non-streaming response.
inline constexpr const char* kOpenAIBody =
    R"({"id":"chatcmpl-123","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06",
 "choices":[{"index":0,
   "message":{"role":"assistant","content":"4","refusal":null,"annotations":[]},
   "logprobs":null,"finish_reason":"stop"}],
 "usage":{"prompt_tokens":20,"completion_tokens":1,"total_tokens":21,
   "prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},
   "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,
     "accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},
 "service_tier":"default","system_fingerprint":"fp_fc9f1d7035"})";

// §D.3 example stream (Anthropic Messages, thinking + text).
inline constexpr const char* kAnthropicStream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],"
    "\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me see\xE2\x80\xA6\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\xE2\x80\xA6\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: ping\n"
    "data: {\"type\":\"ping\"}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello!\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

// The non-streamed equivalent of kAnthropicStream.
inline constexpr const char* kAnthropicStreamEquivalentBody =
    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
    "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Let me see\xE2\x80\xA6\",\"signature\":\"EqQB\xE2\x80\xA6\"},"
    "{\"type\":\"text\",\"text\":\"Hello!\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":25,\"output_tokens\":15}}";

// §D.2 example non-streaming response.
inline constexpr const char* kAnthropicBody =
    "{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
    "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Suppose \xE2\x88\x9A" "2 = p/q in lowest terms\xE2\x80\xA6\",\"signature\":\"EqQBCgIYAhIM\"},"
    "{\"type\":\"text\",\"text\":\"Assume \xE2\x88\x9A" "2 = p/q \xE2\x80\xA6 contradiction.\"}],"
    "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":24,\"output_tokens\":812,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}";

}  // namespace retort::testdata
