// RecordFormatter implementation: one function per format, keys in a deliberate order.
#include "export/record_formatter.h"

#include "export/json_writer.h"

namespace retort {

namespace {

const std::string& ReasoningOf(const ExportRow& row) {
  static const std::string kEmpty;
  return row.response.reasoning ? *row.response.reasoning : kEmpty;
}

// Metadata is stored as canonical JSON of an object (checked at import); "" means absent.
std::string_view MetadataOf(const ExportRow& row) {
  const std::string& m = row.prompt.metadata_json;
  return m.empty() || m.front() != '{' ? std::string_view("{}") : std::string_view(m);
}

void WriteMessage(JsonWriter& w, const std::string& role, const std::string& content) {
  w.BeginObject();
  w.Key("role");
  w.String(role);
  w.Key("content");
  w.String(content);
  w.EndObject();
}

void WriteLogprobs(JsonWriter& w, const ExportRow& row) {
  w.Key("logprobs");
  w.BeginArray();
  for (const TokenLogprob& t : row.response.logprobs) {
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
  w.EndArray();
}

// Splits the prompt into (system, alternating user/assistant turns ending with user).
// Returns false when the turns do not alternate.
bool SplitTurns(const std::vector<Message>& msgs, std::string* system, size_t* first_turn, std::string* why) {
  size_t i = 0;
  system->clear();
  if (!msgs.empty() && msgs[0].role == "system") {
    *system = msgs[0].content;
    i = 1;
  }
  *first_turn = i;
  for (size_t k = i; k < msgs.size(); ++k) {
    const char* want = (k - i) % 2 == 0 ? "user" : "assistant";
    if (msgs[k].role != want) {
      *why = "message " + std::to_string(k) + " is '" + msgs[k].role + "' where turns must alternate (expected '" +
             want + "')";
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

std::string RecordFormatter::Answer(const ExportRow& row) const {
  const std::string& r = ReasoningOf(row);
  if (reasoning_ != ReasoningMode::kInline || r.empty()) return row.response.content;
  return "<think>\n" + r + "\n</think>\n\n" + row.response.content;
}

bool RecordFormatter::Format(const ExportRow& row, std::string* out, std::string* why) const {
  std::string system;
  size_t first_turn = 0;
  if ((format_ == ExportFormat::kShareGpt || format_ == ExportFormat::kAlpaca) &&
      !SplitTurns(row.prompt.messages, &system, &first_turn, why))
    return false;

  const bool field = reasoning_ == ReasoningMode::kField && !minimal_;
  const std::string answer = Answer(row);
  JsonWriter w(out);
  w.BeginObject();
  if (!minimal_) {
    w.Key("id");
    w.String(row.prompt.key);
    w.Key("sample");
    w.Int(row.sample);
  }
  switch (format_) {
    case ExportFormat::kMessages:
    case ExportFormat::kPromptCompletion: {
      const bool pc = format_ == ExportFormat::kPromptCompletion;
      w.Key(pc ? "prompt" : "messages");
      w.BeginArray();
      for (const Message& m : row.prompt.messages) WriteMessage(w, m.role, m.content);
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
        w.String(ReasoningOf(row));
      }
      w.EndObject();
      w.EndArray();
      break;
    }
    case ExportFormat::kShareGpt: {
      w.Key("conversations");
      w.BeginArray();
      auto turn = [&](const char* from, const std::string& value) {
        w.BeginObject();
        w.Key("from");
        w.String(from);
        w.Key("value");
        w.String(value);
        w.EndObject();
      };
      if (first_turn == 1) turn("system", system);
      for (size_t k = first_turn; k < row.prompt.messages.size(); ++k)
        turn(row.prompt.messages[k].role == "user" ? "human" : "gpt", row.prompt.messages[k].content);
      turn("gpt", answer);
      w.EndArray();
      break;
    }
    case ExportFormat::kAlpaca: {
      const auto& msgs = row.prompt.messages;
      w.Key("instruction");
      w.String(msgs.back().content);
      w.Key("input");
      w.String("");
      w.Key("output");
      w.String(answer);
      w.Key("system");
      w.String(system);
      w.Key("history");
      w.BeginArray();
      for (size_t k = first_turn; k + 1 < msgs.size(); k += 2) {
        w.BeginArray();
        w.String(msgs[k].content);
        w.String(msgs[k + 1].content);
        w.EndArray();
      }
      w.EndArray();
      break;
    }
  }
  if (field && (format_ == ExportFormat::kShareGpt || format_ == ExportFormat::kAlpaca)) {
    w.Key("reasoning");
    w.String(ReasoningOf(row));
  }
  if (!minimal_) {
    w.Key("metadata");
    w.Raw(MetadataOf(row));
    if (logprobs_) WriteLogprobs(w, row);
  }
  w.EndObject();
  out->push_back('\n');
  return true;
}

}  // namespace retort
