// OpenAIChatStreamAssembler implementation.
#include "teacher/openai_chat_stream.h"

#include "teacher/openai_chat.h"
#include "teacher/provider_error.h"

namespace retort {

Status OpenAIChatStreamAssembler::Feed(std::string_view bytes) {
  if (!error_.ok()) return error_;
  sse_.Feed(bytes, [this](const SseEvent& ev) {
    if (error_.ok() && !done_) error_ = HandleEvent(ev);
  });
  return error_;
}

Status OpenAIChatStreamAssembler::HandleEvent(const SseEvent& ev) {
  std::string where = "chunk[" + std::to_string(events_++) + "]";
  if (ev.data.rfind("[DONE]", 0) == 0) {
    done_ = true;
    return Status::OK();
  }
  Json j;
  if (Status st = ParseJson(ev.data, &j); !st.ok()) return st.WithContext(where);
  if (!j.is_object()) return Status::Corruption(where + ": expected object");
  auto err = j.find("error");
  if (err != j.end() && !err->is_null()) return InStreamErrorStatus(j, "in-stream error");
  std::optional<std::string> s;
  RETORT_RETURN_IF_ERROR(ReadString(j, "id", where, &s));
  if (s && !id_) id_ = s;
  RETORT_RETURN_IF_ERROR(ReadString(j, "model", where, &s));
  if (s && !model_) model_ = s;
  RETORT_RETURN_IF_ERROR(ReadString(j, "system_fingerprint", where, &s));
  if (s && !fingerprint_) fingerprint_ = s;
  std::optional<std::int64_t> created;
  RETORT_RETURN_IF_ERROR(ReadInt(j, "created", where, &created));
  if (created && !created_) created_ = created;
  const Json* choices = nullptr;
  RETORT_RETURN_IF_ERROR(ReadArray(j, "choices", where, &choices));
  if (choices != nullptr) {
    std::string cpath = JsonPath(where, "choices");
    for (std::size_t i = 0; i < choices->size(); ++i)
      RETORT_RETURN_IF_ERROR(HandleChoice((*choices)[i], JsonPath(cpath, i)));
  }
  const Json* usage = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(j, "usage", where, &usage));
  if (usage != nullptr) usage_ = *usage;
  return Status::OK();
}

Status OpenAIChatStreamAssembler::HandleChoice(const Json& c, const std::string& where) {
  if (!c.is_object()) return Status::Corruption(where + ": expected object");
  std::optional<std::int64_t> index;
  RETORT_RETURN_IF_ERROR(ReadInt(c, "index", where, &index));
  if (index && (*index < 0 || *index > 100000)) return Status::Corruption(JsonPath(where, "index") + ": out of range");
  ChoiceAcc& acc = choices_[index ? static_cast<int>(*index) : 0];
  const Json* delta = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(c, "delta", where, &delta));
  if (delta != nullptr) {
    std::string dpath = JsonPath(where, "delta");
    std::optional<std::string> s;
    RETORT_RETURN_IF_ERROR(ReadString(*delta, "role", dpath, &s));
    if (s) acc.role = s;
    struct Field {
      const char* key;
      std::optional<std::string>* dst;
    };
    for (Field f : {Field{"content", &acc.content}, Field{"reasoning", &acc.reasoning},
                    Field{"reasoning_content", &acc.reasoning_content}}) {
      RETORT_RETURN_IF_ERROR(ReadString(*delta, f.key, dpath, &s));
      if (!s) continue;
      if (!s->empty()) saw_first_token_ = true;
      if (!*f.dst) f.dst->emplace();
      (*f.dst)->append(*s);
    }
  }
  std::optional<std::string> finish;
  RETORT_RETURN_IF_ERROR(ReadString(c, "finish_reason", where, &finish));
  if (finish) acc.finish_reason = finish;
  const Json* lp = nullptr;
  RETORT_RETURN_IF_ERROR(ReadObject(c, "logprobs", where, &lp));
  if (lp != nullptr) {
    const Json* content = nullptr;
    RETORT_RETURN_IF_ERROR(ReadArray(*lp, "content", JsonPath(where, "logprobs"), &content));
    if (content != nullptr) {
      acc.has_logprobs = true;
      for (const Json& e : *content) acc.logprobs_content.push_back(e);
    }
  }
  return Status::OK();
}

Result<ChatResponse> OpenAIChatStreamAssembler::Finish() {
  sse_.Finish([](const SseEvent&) {});
  if (!error_.ok()) return error_;
  if (!done_) return Status::Corruption("stream ended without [DONE] after " + std::to_string(events_) + " events");
  try {
    Json body = Json::object();
    body["object"] = "chat.completion";
    if (id_) body["id"] = *id_;
    if (model_) body["model"] = *model_;
    if (created_) body["created"] = *created_;
    if (fingerprint_) body["system_fingerprint"] = *fingerprint_;
    Json choices = Json::array();
    for (const auto& [index, acc] : choices_) {
      if (!acc.finish_reason)
        return Status::Corruption("stream ended without finish_reason for choice " + std::to_string(index));
      Json msg = Json::object();
      msg["role"] = acc.role.value_or("assistant");
      msg["content"] = acc.content ? Json(*acc.content) : Json(nullptr);
      if (acc.reasoning) msg["reasoning"] = *acc.reasoning;
      if (acc.reasoning_content) msg["reasoning_content"] = *acc.reasoning_content;
      Json lp = acc.has_logprobs ? Json{{"content", acc.logprobs_content}, {"refusal", nullptr}} : Json(nullptr);
      choices.push_back({{"index", index}, {"message", msg}, {"logprobs", lp}, {"finish_reason", *acc.finish_reason}});
    }
    body["choices"] = std::move(choices);
    if (!usage_.is_null()) body["usage"] = usage_;
    Result<ChatResponse> r = ParseOpenAIChatJson(body, split_think_);
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
