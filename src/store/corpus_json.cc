// CorpusJson implementation (nlohmann_json; sorted keys make dumps canonical).
#include "store/corpus_json.h"

#include <nlohmann/json.hpp>

#include "store/sha256.h"

namespace retort {

bool JsonNestingExceeds(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character cannot end the string
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

using nlohmann::json;

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kPending: return "pending";
    case JobState::kLeased: return "leased";
    case JobState::kDone: return "done";
    case JobState::kFailed: return "failed";
  }
  return "pending";
}

std::optional<JobState> ParseJobState(const std::string& s) {
  if (s == "pending") return JobState::kPending;
  if (s == "leased") return JobState::kLeased;
  if (s == "done") return JobState::kDone;
  if (s == "failed") return JobState::kFailed;
  return std::nullopt;
}

static json MessagesJson(const std::vector<Message>& messages) {
  json arr = json::array();
  for (const Message& m : messages) arr.push_back(json{{"role", m.role}, {"content", m.content}});
  return arr;
}

std::string MessagesToJson(const std::vector<Message>& messages) {
  return MessagesJson(messages).dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::vector<Message>> MessagesFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return Status::Corruption("stored messages are not a JSON array");
  std::vector<Message> out;
  out.reserve(j.size());
  for (const json& m : j) {
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      return Status::Corruption("stored message is not {role, content}");
    out.push_back(Message{m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

std::string ContentHash(const std::vector<Message>& messages) { return Sha256Hex(MessagesToJson(messages)); }

static json RequestParamsJson(const GenerationParams& p) {
  json j = json::object();
  if (p.max_tokens) j["max_tokens"] = *p.max_tokens;
  if (p.temperature) j["temperature"] = *p.temperature;
  if (p.top_p) j["top_p"] = *p.top_p;
  if (p.seed) j["seed"] = *p.seed;
  if (!p.stop.empty()) j["stop"] = p.stop;
  if (!p.extra_body_json.empty()) {
    json e = json::parse(p.extra_body_json, nullptr, false);
    j["extra_body"] = e.is_discarded() ? json(p.extra_body_json) : e;
  }
  if (p.logprobs) j["logprobs"] = *p.logprobs;
  return j;
}

std::string ParamsToJson(const GenerationParams& p) {
  json j = RequestParamsJson(p);
  j["samples"] = p.samples;
  if (p.n_per_request) j["n_per_request"] = true;
  if (p.stream) j["stream"] = true;
  if (p.split_think) j["split_think"] = true;
  return j.dump();
}

Result<GenerationParams> ParamsFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("stored run parameters are not a JSON object");
  GenerationParams p;
  try {
    if (j.contains("max_tokens")) p.max_tokens = j["max_tokens"].get<std::int64_t>();
    if (j.contains("temperature")) p.temperature = j["temperature"].get<double>();
    if (j.contains("top_p")) p.top_p = j["top_p"].get<double>();
    if (j.contains("seed")) p.seed = j["seed"].get<std::int64_t>();
    if (j.contains("stop")) p.stop = j["stop"].get<std::vector<std::string>>();
    if (j.contains("extra_body")) p.extra_body_json = j["extra_body"].dump();
    if (j.contains("logprobs")) p.logprobs = j["logprobs"].get<int>();
    p.samples = j.value("samples", 1);
    p.n_per_request = j.value("n_per_request", false);
    p.stream = j.value("stream", false);
    p.split_think = j.value("split_think", false);
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("stored run parameters: ") + e.what());
  }
  return p;
}

std::string DiffParams(const GenerationParams& a, const GenerationParams& b) {
  json ja = json::parse(ParamsToJson(a));
  json jb = json::parse(ParamsToJson(b));
  // stream / n_per_request / split_think change how, not what, is harvested? split_think changes
  // what is stored, so every field is compared.
  for (auto it = ja.begin(); it != ja.end(); ++it) {
    if (!jb.contains(it.key())) return it.key() + ": stored " + it.value().dump() + ", given (unset)";
    if (jb[it.key()] != it.value())
      return it.key() + ": stored " + it.value().dump() + ", given " + jb[it.key()].dump();
  }
  for (auto it = jb.begin(); it != jb.end(); ++it)
    if (!ja.contains(it.key())) return it.key() + ": stored (unset), given " + it.value().dump();
  return "";
}

std::string JobKey(const std::string& provider, const std::string& model, const std::vector<Message>& messages,
                   const GenerationParams& params, int sample) {
  json j = {{"provider", provider}, {"model", model}, {"messages", MessagesJson(messages)},
            {"params", RequestParamsJson(params)}, {"sample", sample}};
  return Sha256Hex(j.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string LogprobsToJson(const std::vector<TokenLogprob>& lps) {
  json arr = json::array();
  for (const TokenLogprob& t : lps) {
    json alts = json::array();
    for (const auto& a : t.top) alts.push_back(json::array({a.token, a.logprob}));
    arr.push_back(json::array({t.token, t.logprob, alts}));
  }
  return arr.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::vector<TokenLogprob>> LogprobsFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return Status::Corruption("stored logprobs are not a JSON array");
  std::vector<TokenLogprob> out;
  try {
    for (const json& e : j) {
      TokenLogprob t;
      t.token = e.at(0).get<std::string>();
      t.logprob = e.at(1).get<double>();
      for (const json& a : e.at(2)) t.top.push_back({a.at(0).get<std::string>(), a.at(1).get<double>()});
      out.push_back(std::move(t));
    }
  } catch (const json::exception& ex) {
    return Status::Corruption(std::string("stored logprobs: ") + ex.what());
  }
  return out;
}

}  // namespace retort
