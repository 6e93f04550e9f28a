// AnthropicMessagesStreamAssembler: rebuilds a Message from an Anthropic Messages SSE stream.
#pragma once

#include <map>
#include <string>

#include "teacher/json_field.h"
#include "teacher/provider.h"
#include "teacher/sse_parser.h"

namespace retort {

// Handles message_start, content_block_start/_delta (text, thinking, signature,
// input_json)/_stop, message_delta (stop_reason, cumulative usage), message_stop; ping and
// unknown events are ignored. Finish() rebuilds the equivalent non-streaming Message and
// parses it with ParseAnthropicMessageJson, so the result is identical to ParseResponse.
// Not thread-safe; one per request.
class AnthropicMessagesStreamAssembler : public StreamAssembler {
 public:
  explicit AnthropicMessagesStreamAssembler(bool split_think) : split_think_(split_think) {}
  // Unavailable for an `error` event of type overloaded_error (or another server-side
  // type), Corruption for other errors, invalid JSON, wrong types or out-of-order events.
  // Errors are sticky.
  Status Feed(std::string_view bytes) override;
  bool SawFirstToken() const override { return saw_first_token_; }
  // Corruption unless message_stop was seen. Fills ChatResponse::assembled_body.
  Result<ChatResponse> Finish() override;

 private:
  struct Block {
    Json block;               // the content block being assembled
    std::string partial_json; // input_json_delta pieces
    bool has_json = false;
  };
  Status HandleEvent(const SseEvent& ev);
  Status HandleDelta(const Json& j, const std::string& where, Block* block);

  bool split_think_;
  SseParser sse_;
  Status error_;
  bool started_ = false;
  bool stopped_ = false;
  bool saw_first_token_ = false;
  std::size_t events_ = 0;
  Json message_;                      // from message_start, content emptied
  std::map<std::int64_t, Block> blocks_;
  Json usage_ = Json::object();       // message_start usage, overlaid by message_delta usage
  Json stop_reason_;                  // null until message_delta sets it
  Json stop_sequence_;
};

}  // namespace retort
