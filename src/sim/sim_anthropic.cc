// The simulator's Anthropic Messages wire format.
#include "sim/sim_anthropic.h"

#include <cstdio>

namespace retort {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

std::string Signature(std::uint64_t hash) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "simsig%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

ojson Usage(const SimCompletion& c, bool final) {
  return {{"input_tokens", c.prompt_tokens},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", 0},
          {"output_tokens", final ? c.completion_tokens : 0}};
}

std::string Event(const char* name, const ojson& data) {
  return std::string("event: ") + name + "\ndata: " + SimDump(data) + "\n\n";
}

}  // namespace

std::string AnthropicMessageId(std::uint64_t hash) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "msg_sim%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

Result<SimRequest> ParseAnthropicRequest(std::string_view body) {
  const json obj = json::parse(body, nullptr, false);
  if (obj.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
  if (!obj.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  SimRequest req;
  auto model = obj.find("model");
  if (model == obj.end()) return Status::InvalidArgument("model: Field required");
  if (!model->is_string()) return Status::InvalidArgument("model: must be a string");
  req.model = model->get<std::string>();
  SIM_ASSIGN_OR_RETURN(max_tokens, SimOptInt(obj, "max_tokens", 1, INT64_MAX));
  if (!max_tokens) return Status::InvalidArgument("max_tokens: Field required");
  req.max_tokens = max_tokens;
  auto sys = obj.find("system");
  if (sys != obj.end() && !sys->is_null()) {
    SIM_ASSIGN_OR_RETURN(text, SimContentText(*sys, "system"));
    req.messages.push_back({"system", std::move(text)});
  }
  auto msgs = obj.find("messages");
  if (msgs == obj.end()) return Status::InvalidArgument("messages: Field required");
  if (!msgs->is_array() || msgs->empty()) {
    return Status::InvalidArgument("messages: must be a non-empty array");
  }
  for (std::size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string where = "messages." + std::to_string(i);
    if (!m.is_object()) return Status::InvalidArgument(where + ": must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string() ||
        (role->get<std::string>() != "user" && role->get<std::string>() != "assistant")) {
      return Status::InvalidArgument(where + ".role: must be \"user\" or \"assistant\"");
    }
    auto content = m.find("content");
    if (content == m.end()) return Status::InvalidArgument(where + ".content: Field required");
    SIM_ASSIGN_OR_RETURN(text, SimContentText(*content, where + ".content"));
    req.messages.push_back({role->get<std::string>(), std::move(text)});
  }
  SIM_ASSIGN_OR_RETURN(stream, SimOptBool(obj, "stream"));
  req.stream = stream.value_or(false);
  auto thinking = obj.find("thinking");
  if (thinking != obj.end() && !thinking->is_null()) {
    if (!thinking->is_object() || !thinking->contains("type") || !(*thinking)["type"].is_string()) {
      return Status::InvalidArgument("thinking: must be an object with a string 'type'");
    }
    const std::string type = (*thinking)["type"].get<std::string>();
    if (type != "enabled" && type != "disabled" && type != "adaptive") {
      return Status::InvalidArgument("thinking.type: must be enabled, disabled or adaptive");
    }
    req.thinking = type != "disabled";
  }
  return req;
}

std::string AnthropicResponseBody(const SimRequest& req, const SimCompletion& c) {
  const SimChoice& ch = c.choices.front();
  ojson content = ojson::array();
  if (!ch.reasoning.empty()) {
    content.push_back({{"type", "thinking"}, {"thinking", ch.reasoning}, {"signature", Signature(c.hash)}});
  }
  content.push_back({{"type", "text"}, {"text", ch.answer}});
  ojson body = {{"id", AnthropicMessageId(c.hash)},
                {"type", "message"},
                {"role", "assistant"},
                {"model", req.model},
                {"content", std::move(content)},
                {"stop_reason", ch.truncated ? "max_tokens" : "end_turn"},
                {"stop_sequence", nullptr},
                {"usage", Usage(c, true)}};
  return SimDump(body);
}

std::vector<SimEvent> AnthropicStreamEvents(const SimRequest& req, const SimCompletion& c) {
  const SimChoice& ch = c.choices.front();
  std::vector<SimEvent> ev;
  ojson start_msg = {{"id", AnthropicMessageId(c.hash)}, {"type", "message"}, {"role", "assistant"},
                     {"content", ojson::array()}, {"model", req.model}, {"stop_reason", nullptr},
                     {"stop_sequence", nullptr}, {"usage", Usage(c, false)}};
  ev.push_back({Event("message_start", {{"type", "message_start"}, {"message", std::move(start_msg)}}), false});
  ev.push_back({Event("ping", {{"type", "ping"}}), false});
  int index = 0;
  if (!ch.reasoning.empty()) {
    ev.push_back({Event("content_block_start",
                        {{"type", "content_block_start"}, {"index", index},
                         {"content_block", {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}}}),
                  false});
    for (const auto& t : ch.reasoning_tokens) {
      ev.push_back({Event("content_block_delta",
                          {{"type", "content_block_delta"}, {"index", index},
                           {"delta", {{"type", "thinking_delta"}, {"thinking", t}}}}),
                    true});
    }
    ev.push_back({Event("content_block_delta",
                        {{"type", "content_block_delta"}, {"index", index},
                         {"delta", {{"type", "signature_delta"}, {"signature", Signature(c.hash)}}}}),
                  false});
    ev.push_back({Event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}), false});
    ++index;
  }
  ev.push_back({Event("content_block_start", {{"type", "content_block_start"}, {"index", index},
                                              {"content_block", {{"type", "text"}, {"text", ""}}}}),
                false});
  for (const auto& t : ch.answer_tokens) {
    ev.push_back({Event("content_block_delta", {{"type", "content_block_delta"}, {"index", index},
                                                {"delta", {{"type", "text_delta"}, {"text", t}}}}),
                  true});
  }
  ev.push_back({Event("content_block_stop", {{"type", "content_block_stop"}, {"index", index}}), false});
  ev.push_back({Event("message_delta",
                      {{"type", "message_delta"},
                       {"delta", {{"stop_reason", ch.truncated ? "max_tokens" : "end_turn"},
                                  {"stop_sequence", nullptr}}},
                       {"usage", {{"output_tokens", c.completion_tokens}}}}),
                false});
  ev.push_back({Event("message_stop", {{"type", "message_stop"}}), false});
  return ev;
}

std::string AnthropicErrorBody(const std::string& type, const std::string& message,
                               const std::string& request_id) {
  return SimDump(ojson{{"type", "error"},
                       {"error", {{"type", type}, {"message", message}}},
                       {"request_id", request_id}});
}

}  // namespace retort
