// CorpusJson implementation (nlohmann_json; sorted keys make dumps canonical).
#include "store/corpus_json.h"

#include <nlohmann/json.hpp>

#include "store/sha256.h"
#include "store/utf8.h"

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

void AppendCanonicalJsonString(std::string_view s, std::string* out) {
  if (!IsValidUtf8(s)) {
    // nlohmann's replacement rules for invalid sequences are intricate: let it write them.
    out->append(json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace));
    return;
  }
  static const char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t run = 0;  // start of the pending bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\f': out->append("\\f"); break;
      case '\r': out->append("\\r"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendMessagesJson(const std::vector<Message>& messages, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i) out->push_back(',');
    out->append("{\"content\":");
    AppendCanonicalJsonString(messages[i].content, out);
    out->append(",\"role\":");
    AppendCanonicalJsonString(messages[i].role, out);
    out->push_back('}');
  }
  out->push_back(']');
}

std::string MessagesToJson(const std::vector<Message>& messages) {
  std::string out;
  AppendMessagesJson(messages, &out);
  return out;
}

namespace {

// Decodes the JSON string literal at text[*pos] (the opening quote) of the canonical form.
// Returns false for anything it does not handle (\u escapes, malformed input); the caller then
// falls back to the full parser, which decides.
bool DecodeSimpleString(std::string_view text, size_t* pos, std::string* out) {
  size_t i = *pos;
  if (i >= text.size() || text[i] != '"') return false;
  ++i;
  out->clear();
  size_t run = i;
  for (; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"') {
      out->append(text.data() + run, i - run);
      *pos = i + 1;
      return true;
    }
    if (c < 0x20) return false;
    if (c != '\\') continue;
    out->append(text.data() + run, i - run);
    if (++i >= text.size()) return false;
    switch (text[i]) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      default: return false;  // \uXXXX and invalid escapes
    }
    run = i + 1;
  }
  return false;
}

bool Expect(std::string_view text, size_t* pos, std::string_view lit) {
  if (text.substr(*pos, lit.size()) != lit) return false;
  *pos += lit.size();
  return true;
}

// The canonical [{"content":"...","role":"..."},...] with simple escapes only.
bool DecodeCanonicalMessages(std::string_view text, std::vector<Message>* out) {
  size_t pos = 0;
  if (!Expect(text, &pos, "[")) return false;
  if (Expect(text, &pos, "]")) return pos == text.size();
  for (;;) {
    Message m;
    if (!Expect(text, &pos, "{\"content\":") || !DecodeSimpleString(text, &pos, &m.content) ||
        !Expect(text, &pos, ",\"role\":") || !DecodeSimpleString(text, &pos, &m.role) || !Expect(text, &pos, "}"))
      return false;
    // Only valid UTF-8 is decoded here, as nlohmann's parser requires.
    if (!IsValidUtf8(m.content) || !IsValidUtf8(m.role)) return false;
    out->push_back(std::move(m));
    if (Expect(text, &pos, "]")) return pos == text.size();
    if (!Expect(text, &pos, ",")) return false;
  }
}

}  // namespace

Result<std::vector<Message>> MessagesFromJson(std::string_view text) {
  {
    std::vector<Message> fast;
    if (DecodeCanonicalMessages(text, &fast)) return fast;
  }
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
  // Only when set: the keys (JobKey) and stored parameters of runs without a schema are unchanged.
  if (!p.response_schema.empty()) {
    json s = json::parse(p.response_schema, nullptr, false);
    j["response_schema"] = s.is_discarded() ? json(p.response_schema) : s;
  }
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
    if (j.contains("response_schema")) p.response_schema = j["response_schema"].dump();
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
