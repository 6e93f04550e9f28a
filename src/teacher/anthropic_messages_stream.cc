// AnthropicMessagesStreamAssembler implementation.
#include "teacher/anthropic_messages_stream.h"

#include "teacher/anthropic_messages.h"
#include "teacher/provider_error.h"

namespace retort {
namespace {

void MergeUsage(const Json& src, Json* dst) {
  for (auto it = src.begin(); it != src.end(); ++it)
    if (!it.value().is_null()) (*dst)[it.key()] = it.value();
}

}  // namespace

Status AnthropicMessagesStreamAssembler::Feed(std::string_view bytes) {
  if (!error_.ok()) return error_;
  sse_.Feed(bytes, [this](const SseEvent& ev) {
    if (error_.ok() && !stopped_) error_ = HandleEvent(ev);
  });
  return error_;
}

Status AnthropicMessagesStreamAssembler::HandleEvent(const SseEvent& ev) {
  std::string where = "event[" + std::to_string(events_++) + "]";
  Json j;
  if (Status st = ParseJson(ev.data, &j); !st.ok()) return st.WithContext(where);
  if (!j.is_object()) return Status::Corruption(where + ": expected object");
  std::optional<std::string> type;
  RETORT_RETURN_IF_ERROR(ReadString(j, "type", where, &type));
  const std::string kind = type ? *type : ev.event;
  where += " " + ShortText(kind, 40);
  if (kind == "error") return InStreamErrorStatus(j, "in-stream error");
  if (kind == "message_start") {
    if (started_) return Status::Corruption(where + ": duplicate message_start");
    const Json* msg = nullptr;
    RETORT_RETURN_IF_ERROR(ReadObject(j, "message", where, &msg));
    if (msg == nullptr) return Status::Corruption(JsonPath(where, "message") + ": missing");
    message_ = *msg;
    message_["content"] = Json::array();
    const Json* usage = nullptr;
    RETORT_RETURN_IF_ERROR(ReadObject(*msg, "usage", JsonPath(where, "message"), &usage));
    if (usage != nullptr) MergeUsage(*usage, &usage_);
    started_ = true;
    return Status::OK();
  }
  if (kind == "ping") return Status::OK();
  bool known = kind == "content_block_start" || kind == "content_block_delta" || kind == "content_block_stop" ||
               kind == "message_delta" || kind == "message_stop";
  if (!known) return Status::OK();  // events added later are ignored
  if (!started_) return Status::Corruption(where + ": before message_start");
  if (kind == "message_stop") {
    stopped_ = true;
    return Status::OK();
  }
  if (kind == "message_delta") {
    const Json* delta = nullptr;
    RETORT_RETURN_IF_ERROR(ReadObject(j, "delta", where, &delta));
    if (delta != nullptr) {
      std::optional<std::string> s;
      RETORT_RETURN_IF_ERROR(ReadString(*delta, "stop_reason", JsonPath(where, "delta"), &s));
      if (s) stop_reason_ = *s;
      RETORT_RETURN_IF_ERROR(ReadString(*delta, "stop_sequence", JsonPath(where, "delta"), &s));
      if (s) stop_sequence_ = *s;
    }
    const Json* usage = nullptr;
    RETORT_RETURN_IF_ERROR(ReadObject(j, "usage", where, &usage));
    if (usage != nullptr) MergeUsage(*usage, &usage_);  // cumulative counts: latest wins
    return Status::OK();
  }
  std::optional<std::int64_t> index;
  RETORT_RETURN_IF_ERROR(ReadInt(j, "index", where, &index));
  if (!index) return Status::Corruption(JsonPath(where, "index") + ": missing");
  if (kind == "content_block_start") {
    const Json* block = nullptr;
    RETORT_RETURN_IF_ERROR(ReadObject(j, "content_block", where, &block));
    if (block == nullptr) return Status::Corruption(JsonPath(where, "content_block") + ": missing");
    if (blocks_.count(*index)) return Status::Corruption(where + ": duplicate block " + std::to_string(*index));
    blocks_[*index].block = *block;
    return Status::OK();
  }
  auto it = blocks_.find(*index);
  if (it == blocks_.end()) return Status::Corruption(where + ": unknown block " + std::to_string(*index));
  if (kind == "content_block_stop") {
    Block& b = it->second;
    if (b.has_json) {
      Json input;
      if (Status st = ParseJson(b.partial_json, &input); !st.ok())
        return Status::Corruption(where + ": input_json_delta pieces: " + st.message());
      b.block["input"] = std::move(input);
      b.has_json = false;
    }
    return Status::OK();
  }
  return HandleDelta(j, where, &it->second);  // content_block_delta
}

Status AnthropicMessagesStreamAssembler::HandleDelta(const Json& j, const std::string& where, Block* block) {
  Block& b = *block;
  const Json* delta = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(j, "delta", where, &delta));
  if (delta == nullptr) return Status::Corruption(JsonPath(where, "delta") + ": missing");
  std::string dpath = JsonPath(where, "delta");
  std::optional<std::string> type;
  RETORT_RETURN_IF_ERROR(ReadString(*delta, "type", dpath, &type));
  if (!type) return Status::Corruption(JsonPath(dpath, "type") + ": missing");
  const char* field = nullptr;  // the delta's field, which is also the block's field
  if (*type == "text_delta") field = "text";
  else if (*type == "thinking_delta") field = "thinking";
  else if (*type == "signature_delta") field = "signature";
  if (field != nullptr) {
    std::optional<std::string> piece;
    RETORT_RETURN_IF_ERROR(ReadString(*delta, field, dpath, &piece));
    if (!piece) return Status::Corruption(JsonPath(dpath, field) + ": missing");
    Json& dst = b.block[field];
    if (dst.is_null()) dst = "";
    if (!dst.is_string()) return Status::Corruption(where + ": block field '" + field + "' is not a string");
    dst.get_ref<std::string&>() += *piece;
    if (*type != "signature_delta" && !piece->empty()) saw_first_token_ = true;
    return Status::OK();
  }
  if (*type == "input_json_delta") {
    std::optional<std::string> piece;
    RETORT_RETURN_IF_ERROR(ReadString(*delta, "partial_json", dpath, &piece));
    b.partial_json += piece.value_or("");
    b.has_json = true;
  }
  return Status::OK();  // unknown delta types are ignored
}

Result<ChatResponse> AnthropicMessagesStreamAssembler::Finish() {
  sse_.Finish([](const SseEvent&) {});
  if (!error_.ok()) return error_;
  if (!stopped_) return Status::Corruption("stream ended without message_stop after " + std::to_string(events_) + " events");
  try {
    Json body = message_;
    Json content = Json::array();
    for (auto& [index, b] : blocks_) content.push_back(b.block);
    body["content"] = std::move(content);
    body["stop_reason"] = stop_reason_;
    body["stop_sequence"] = stop_sequence_;
    if (!usage_.empty()) body["usage"] = usage_;
    Result<ChatResponse> r = ParseAnthropicMessageJson(body, split_think_);
    if (!r.ok()) return r.status().WithContext("assembled stream");
    Result<std::string> dumped = DumpJson(body);
    if (!dumped.ok()) return Status::Corruption(dumped.status().message());
    r->assembled_body = std::move(*dumped);
    return r;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("assembled stream: ") + e.what());
  }
}

}  // namespace retort
