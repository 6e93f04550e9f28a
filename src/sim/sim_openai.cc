// The simulator's OpenAI Chat Completions wire format.
#include "sim/sim_openai.h"

#include <cstdio>

namespace retort {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

Status ParseMessages(const json& obj, SimRequest& req) {
  auto it = obj.find("messages");
  if (it == obj.end()) return Status::InvalidArgument("'messages' is required");
  if (!it->is_array() || it->empty()) {
    return Status::InvalidArgument("'messages' must be a non-empty array");
  }
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return Status::InvalidArgument(where + " must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      return Status::InvalidArgument(where + ".role must be a string");
    }
    Message msg;
    msg.role = role->get<std::string>();
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      if (msg.role != "assistant") return Status::InvalidArgument(where + ".content is required");
    } else {
      SIM_ASSIGN_OR_RETURN(text, SimContentText(*content, where + ".content"));
      msg.content = std::move(text);
    }
    req.messages.push_back(std::move(msg));
  }
  return Status::OK();
}

ojson LogprobEntry(const TokenLogprob& lp) {
  auto bytes = [](const std::string& s) {
    ojson b = ojson::array();
    for (unsigned char ch : s) b.push_back(static_cast<int>(ch));
    return b;
  };
  ojson top = ojson::array();
  for (const auto& alt : lp.top) {
    top.push_back({{"token", alt.token}, {"logprob", alt.logprob}, {"bytes", bytes(alt.token)}});
  }
  return {{"token", lp.token}, {"logprob", lp.logprob}, {"bytes", bytes(lp.token)},
          {"top_logprobs", std::move(top)}};
}

ojson Usage(const SimCompletion& c) {
  ojson u = {{"prompt_tokens", c.prompt_tokens},
             {"completion_tokens", c.completion_tokens},
             {"total_tokens", c.prompt_tokens + c.completion_tokens}};
  if (c.reasoning_tokens > 0) {
    u["completion_tokens_details"] = {{"reasoning_tokens", c.reasoning_tokens}};
  }
  return u;
}

const char* Finish(const SimChoice& ch) { return ch.truncated ? "length" : "stop"; }

std::string ThinkOpen() { return "<think>"; }
std::string ThinkClose() { return "</think>\n\n"; }

}  // namespace

std::string OpenAICompletionId(std::uint64_t hash) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "chatcmpl-sim%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

Result<SimRequest> ParseOpenAIRequest(std::string_view body) {
  const json obj = json::parse(body, nullptr, false);
  if (obj.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
  if (!obj.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  SimRequest req;
  auto model = obj.find("model");
  if (model == obj.end()) return Status::InvalidArgument("'model' is required");
  if (!model->is_string()) return Status::InvalidArgument("'model' must be a string");
  req.model = model->get<std::string>();
  RETORT_RETURN_IF_ERROR(ParseMessages(obj, req));

  SIM_ASSIGN_OR_RETURN(n, SimOptInt(obj, "n", 1, 128));
  req.n = static_cast<int>(n.value_or(1));
  SIM_ASSIGN_OR_RETURN(seed, SimOptInt(obj, "seed", INT64_MIN, INT64_MAX));
  req.seed = seed;
  SIM_ASSIGN_OR_RETURN(max_tokens, SimOptInt(obj, "max_tokens", 1, INT64_MAX));
  SIM_ASSIGN_OR_RETURN(max_completion, SimOptInt(obj, "max_completion_tokens", 1, INT64_MAX));
  req.max_tokens = max_completion ? max_completion : max_tokens;
  SIM_ASSIGN_OR_RETURN(stream, SimOptBool(obj, "stream"));
  req.stream = stream.value_or(false);
  SIM_ASSIGN_OR_RETURN(logprobs, SimOptBool(obj, "logprobs"));
  req.logprobs = logprobs.value_or(false);
  SIM_ASSIGN_OR_RETURN(top, SimOptInt(obj, "top_logprobs", 0, 20));
  if (top && !req.logprobs) {
    return Status::InvalidArgument("'top_logprobs' requires 'logprobs': true");
  }
  req.top_logprobs = static_cast<int>(top.value_or(0));
  auto so = obj.find("stream_options");
  if (so != obj.end() && !so->is_null()) {
    if (!so->is_object()) return Status::InvalidArgument("'stream_options' must be an object");
    if (!req.stream) return Status::InvalidArgument("'stream_options' is only allowed with 'stream': true");
    SIM_ASSIGN_OR_RETURN(usage, SimOptBool(*so, "include_usage"));
    req.include_usage = usage.value_or(false);
  }
  return req;
}

std::string OpenAIResponseBody(const SimRequest& req, const SimCompletion& c,
                               const std::string& reasoning_mode) {
  ojson choices = ojson::array();
  for (std::size_t i = 0; i < c.choices.size(); ++i) {
    const SimChoice& ch = c.choices[i];
    ojson msg = {{"role", "assistant"}};
    const bool has_reasoning = !ch.reasoning.empty();
    if (has_reasoning && reasoning_mode == "think") {
      msg["content"] = ThinkOpen() + ch.reasoning + ThinkClose() + ch.answer;
    } else {
      msg["content"] = ch.answer;
    }
    if (has_reasoning && (reasoning_mode == "reasoning" || reasoning_mode == "reasoning_content")) {
      msg[reasoning_mode] = ch.reasoning;
    }
    msg["refusal"] = nullptr;
    msg["annotations"] = ojson::array();
    ojson logprobs = nullptr;
    if (req.logprobs) {
      ojson content = ojson::array();
      for (const auto& lp : ch.logprobs) content.push_back(LogprobEntry(lp));
      logprobs = {{"content", std::move(content)}, {"refusal", nullptr}};
    }
    choices.push_back({{"index", i}, {"message", std::move(msg)}, {"logprobs", std::move(logprobs)},
                       {"finish_reason", Finish(ch)}});
  }
  ojson body = {{"id", OpenAICompletionId(c.hash)},
                {"object", "chat.completion"},
                {"created", kSimCreated},
                {"model", req.model},
                {"choices", std::move(choices)},
                {"usage", Usage(c)},
                {"system_fingerprint", "fp_retort_sim"}};
  return SimDump(body);
}

std::vector<SimEvent> OpenAIStreamEvents(const SimRequest& req, const SimCompletion& c,
                                         const std::string& reasoning_mode) {
  const std::string id = OpenAICompletionId(c.hash);
  std::vector<SimEvent> events;
  auto chunk = [&](ojson choices, bool token) {
    ojson j = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", kSimCreated},
               {"model", req.model}, {"system_fingerprint", "fp_retort_sim"},
               {"choices", std::move(choices)}};
    if (req.include_usage) j["usage"] = nullptr;
    events.push_back({"data: " + SimDump(j) + "\n\n", token});
  };
  auto delta = [&](std::size_t index, ojson d, ojson logprobs, bool token) {
    ojson choice = {{"index", index}, {"delta", std::move(d)}, {"logprobs", std::move(logprobs)},
                    {"finish_reason", nullptr}};
    chunk(ojson::array({std::move(choice)}), token);
  };
  for (std::size_t i = 0; i < c.choices.size(); ++i) {
    const SimChoice& ch = c.choices[i];
    const bool has_reasoning = !ch.reasoning.empty();
    const bool think = has_reasoning && reasoning_mode == "think";
    delta(i, {{"role", "assistant"}, {"content", ""}}, nullptr, false);
    if (has_reasoning && (reasoning_mode == "reasoning" || reasoning_mode == "reasoning_content")) {
      for (const auto& t : ch.reasoning_tokens) delta(i, {{reasoning_mode, t}}, nullptr, true);
    }
    if (think) {
      delta(i, {{"content", ThinkOpen()}}, nullptr, true);
      for (const auto& t : ch.reasoning_tokens) delta(i, {{"content", t}}, nullptr, true);
      delta(i, {{"content", ThinkClose()}}, nullptr, true);
    }
    for (std::size_t k = 0; k < ch.answer_tokens.size(); ++k) {
      ojson lp = nullptr;
      if (req.logprobs && k < ch.logprobs.size()) {
        lp = {{"content", ojson::array({LogprobEntry(ch.logprobs[k])})}, {"refusal", nullptr}};
      }
      delta(i, {{"content", ch.answer_tokens[k]}}, std::move(lp), true);
    }
    ojson fin = {{"index", i}, {"delta", ojson::object()}, {"logprobs", nullptr},
                 {"finish_reason", Finish(ch)}};
    chunk(ojson::array({std::move(fin)}), false);
  }
  if (req.include_usage) {
    ojson j = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", kSimCreated},
               {"model", req.model}, {"system_fingerprint", "fp_retort_sim"},
               {"choices", ojson::array()}, {"usage", Usage(c)}};
    events.push_back({"data: " + SimDump(j) + "\n\n", false});
  }
  events.push_back({"data: [DONE]\n\n", false});
  return events;
}

std::string OpenAIErrorBody(const std::string& message, const std::string& type,
                            const std::string& code, const std::string& param) {
  ojson err = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) err["param"] = param;
  if (!code.empty()) err["code"] = code;
  return SimDump(ojson{{"error", std::move(err)}});
}

}  // namespace retort
