// RecordFormatter implementation: one function per format, keys in a deliberate order.
#include "export/record_formatter.h"

#include "export/json_writer.h"

namespace retort {

namespace {

// Metadata is stored as canonical JSON of an object (checked at import); "" means absent.
// Absent and empty metadata are written as null, never {}: Arrow cannot write a struct without
// fields to Parquet, and every record keeps the key (docs/formats.md §3).
std::string_view MetadataOf(std::string_view m) {
  return m.empty() || m.front() != '{' || m == "{}" ? std::string_view("null") : m;
}

// {"role":<role>,"content":<content>} from already-quoted literals.
void WriteMessage(JsonWriter& w, const MessageLiteral& m) {
  w.BeginObject();
  w.Key("role");
  w.Raw(m.role);
  w.Key("content");
  w.Raw(m.content);
  w.EndObject();
}

void WriteLogprobs(JsonWriter& w, const std::vector<TokenLogprob>* logprobs) {
  w.Key("logprobs");
  w.BeginArray();
  if (logprobs) {
    for (const TokenLogprob& t : *logprobs) {
      w.BeginObject();
      w.Key("token");
      w.String(t.token);
      w.Key("logprob");
      w.Double(t.logprob);
      w.Key("top");
      w.BeginArray();
      for (const auto& a : t.top) {
        w.BeginObject();
        w.Key("token");
        w.String(a.token);
        w.Key("logprob");
        w.Double(a.logprob);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
  }
  w.EndArray();
}

// Splits the prompt into (system literal, alternating user/assistant turns ending with user).
// Returns false when the turns do not alternate.
bool SplitTurns(const MessageLiterals& msgs, std::string_view* system, size_t* first_turn, std::string* why) {
  size_t i = 0;
  *system = "\"\"";
  if (msgs.size() > 0 && MessageLiterals::Is(msgs[0].role, "system")) {
    *system = msgs[0].content;
    i = 1;
  }
  *first_turn = i;
  for (size_t k = i; k < msgs.size(); ++k) {
    const char* want = (k - i) % 2 == 0 ? "user" : "assistant";
    if (!MessageLiterals::Is(msgs[k].role, want)) {
      *why = "message " + std::to_string(k) + " is '" + MessageLiterals::Decode(msgs[k].role) +
             "' where turns must alternate (expected '" + want + "')";
      return false;
    }
  }
  if ((msgs.size() - i) % 2 == 0) {
    *why = "the prompt does not end with a user turn";
    return false;
  }
  return true;
}

}  // namespace

RecordFormatter::RecordFormatter(const ExportOptions& opts)
    : format_(opts.format),
      minimal_(opts.fields == ExportFields::kMinimal),
      reasoning_(opts.EffectiveReasoning()),
      logprobs_(opts.with_logprobs) {}

bool RecordFormatter::Format(const ExportRow& row, std::string* out, std::string* why) const {
  ExportRowView v;
  v.sample = row.sample;
  v.prompt_key = row.prompt.key;
  v.metadata_json = row.prompt.metadata_json;
  v.content = row.response.content;
  if (row.response.reasoning) v.reasoning = *row.response.reasoning;
  v.finish_reason = row.response.finish_reason;
  v.logprobs = &row.response.logprobs;
  MessageLiterals msgs;
  msgs.Assign(row.prompt.messages);
  return Format(v, msgs, out, why);
}

bool RecordFormatter::Format(const ExportRowView& row, const MessageLiterals& msgs, std::string* out,
                             std::string* why) const {
  std::string_view system;
  size_t first_turn = 0;
  if ((format_ == ExportFormat::kShareGpt || format_ == ExportFormat::kAlpaca) &&
      !SplitTurns(msgs, &system, &first_turn, why))
    return false;

  const std::string_view reasoning = row.reasoning ? *row.reasoning : std::string_view();
  const bool field = reasoning_ == ReasoningMode::kField && !minimal_;
  // The answer: content, with the reasoning inline when asked (only then is it copied).
  std::string inline_answer;
  std::string_view answer = row.content;
  if (reasoning_ == ReasoningMode::kInline && !reasoning.empty()) {
    inline_answer.append("<think>\n").append(reasoning).append("\n</think>\n\n").append(row.content);
    answer = inline_answer;
  }
  JsonWriter w(out);
  w.BeginObject();
  if (!minimal_) {
    w.Key("id");
    w.String(row.prompt_key);
    w.Key("sample");
    w.Int(row.sample);
  }
  switch (format_) {
    case ExportFormat::kMessages:
    case ExportFormat::kPromptCompletion: {
      const bool pc = format_ == ExportFormat::kPromptCompletion;
      w.Key(pc ? "prompt" : "messages");
      w.BeginArray();
      for (const MessageLiteral& m : msgs.messages()) WriteMessage(w, m);
      if (pc) {
        w.EndArray();
        w.Key("completion");
        w.BeginArray();
      }
      w.BeginObject();
      w.Key("role");
      w.String("assistant");
      w.Key("content");
      w.String(answer);
      if (field) {
        w.Key("reasoning_content");
        w.String(reasoning);
      }
      w.EndObject();
      w.EndArray();
      break;
    }
    case ExportFormat::kShareGpt: {
      w.Key("conversations");
      w.BeginArray();
      auto turn = [&](const char* from, std::string_view value_literal) {
        w.BeginObject();
        w.Key("from");
        w.String(from);
        w.Key("value");
        w.Raw(value_literal);
        w.EndObject();
      };
      if (first_turn == 1) turn("system", system);
      for (size_t k = first_turn; k < msgs.size(); ++k)
        turn(MessageLiterals::Is(msgs[k].role, "user") ? "human" : "gpt", msgs[k].content);
      w.BeginObject();
      w.Key("from");
      w.String("gpt");
      w.Key("value");
      w.String(answer);
      w.EndObject();
      w.EndArray();
      break;
    }
    case ExportFormat::kAlpaca: {
      w.Key("instruction");
      w.Raw(msgs[msgs.size() - 1].content);
      w.Key("input");
      w.String("");
      w.Key("output");
      w.String(answer);
      w.Key("system");
      w.Raw(system);
      w.Key("history");
      w.BeginArray();
      for (size_t k = first_turn; k + 1 < msgs.size(); k += 2) {
        w.BeginArray();
        w.Raw(msgs[k].content);
        w.Raw(msgs[k + 1].content);
        w.EndArray();
      }
      w.EndArray();
      break;
    }
  }
  if (field && (format_ == ExportFormat::kShareGpt || format_ == ExportFormat::kAlpaca)) {
    w.Key("reasoning");
    w.String(reasoning);
  }
  if (!minimal_) {
    w.Key("metadata");
    w.Raw(MetadataOf(row.metadata_json));
    if (logprobs_) WriteLogprobs(w, row.logprobs);
  }
  w.EndObject();
  out->push_back('\n');
  return true;
}

}  // namespace retort
