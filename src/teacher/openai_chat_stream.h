// OpenAIChatStreamAssembler: rebuilds a chat.completion from a Chat Completions SSE stream.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "teacher/json_field.h"
#include "teacher/provider.h"
#include "teacher/sse_parser.h"

namespace retort {

// Accumulates `data:` chunks (deltas by choice index: role, content, reasoning,
// reasoning_content, finish_reason, logprobs.content; the usage chunk) until `[DONE]`.
// Finish() rebuilds the equivalent non-streaming body and parses it with
// ParseOpenAIChatJson, so the result is identical to ParseResponse on that body.
// Not thread-safe; one per request.
class OpenAIChatStreamAssembler : public StreamAssembler {
 public:
  explicit OpenAIChatStreamAssembler(bool split_think) : split_think_(split_think) {}
  // Unavailable for an in-stream {"error":...} of an overload/server kind, Corruption for
  // other errors, invalid JSON or wrongly typed fields. Errors are sticky.
  Status Feed(std::string_view bytes) override;
  bool SawFirstToken() const override { return saw_first_token_; }
  // Corruption when no [DONE] was seen, a choice has no finish_reason, or the result is
  // malformed. Fills ChatResponse::assembled_body (object "chat.completion").
  Result<ChatResponse> Finish() override;

 private:
  struct ChoiceAcc {
    std::optional<std::string> role, content, reasoning, reasoning_content, finish_reason;
    bool has_logprobs = false;
    Json logprobs_content = Json::array();
  };
  Status HandleEvent(const SseEvent& ev);
  Status HandleChoice(const Json& c, const std::string& where);

  bool split_think_;
  SseParser sse_;
  Status error_;
  bool done_ = false;
  bool saw_first_token_ = false;
  std::size_t events_ = 0;
  std::optional<std::string> id_, model_, fingerprint_;
  std::optional<std::int64_t> created_;
  std::map<int, ChoiceAcc> choices_;
  Json usage_;  // the last non-null usage object
};

}  // namespace retort
