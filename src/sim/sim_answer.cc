// Deterministic content of the teacher simulator.
#include "sim/sim_answer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

namespace retort {
namespace {

constexpr std::array<const char*, 64> kVocabulary = {
    "the",      "answer",  "is",       "simple",    "because",  "every",    "step",     "follows",
    "from",     "a",       "careful",  "reading",   "of",       "question", "we",       "first",
    "note",     "that",    "each",     "term",      "can",      "be",       "checked",  "directly",
    "so",       "result",  "holds",    "in",        "general",  "and",      "this",     "case",
    "clearly",  "value",   "remains",  "stable",    "under",    "small",    "changes",  "which",
    "confirms", "our",     "estimate", "therefore", "it",       "works",    "well",     "for",
    "typical",  "inputs",  "with",     "minor",     "caveats",  "about",    "edge",     "cases",
    "such",     "as",      "empty",    "lists",     "or",       "very",     "large",    "numbers"};

constexpr std::uint64_t kFnvOffset = 1469598103934665603ULL;
constexpr std::uint64_t kFnvPrime = 1099511628211ULL;

void Mix(std::uint64_t& h, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kFnvPrime;
  }
}

void MixString(std::uint64_t& h, const std::string& s) {
  const std::uint64_t len = s.size();
  Mix(h, &len, sizeof(len));  // length prefix: no ambiguity between fields
  Mix(h, s.data(), s.size());
}

// splitmix64: a small, well-distributed generator seeded from the hash.
std::uint64_t SplitMix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t ChoiceState(const std::string& model, const std::vector<Message>& messages,
                          std::optional<std::int64_t> seed, int choice_index, std::uint64_t kind) {
  std::uint64_t h = SimRequestHash(model, messages, seed);
  const std::int64_t idx = choice_index;
  Mix(h, &idx, sizeof(idx));
  Mix(h, &kind, sizeof(kind));
  return h;
}

std::string Words(std::uint64_t& state, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    std::string w = kVocabulary[SplitMix(state) % kVocabulary.size()];
    if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    if (i > 0) out += ' ';
    out += w;
  }
  out += '.';
  return out;
}

}  // namespace

std::uint64_t SimRequestHash(const std::string& model, const std::vector<Message>& messages,
                             std::optional<std::int64_t> seed) {
  std::uint64_t h = kFnvOffset;
  MixString(h, model);
  const std::uint64_t count = messages.size();
  Mix(h, &count, sizeof(count));
  for (const Message& m : messages) {
    MixString(h, m.role);
    MixString(h, m.content);
  }
  const unsigned char has_seed = seed.has_value() ? 1 : 0;
  Mix(h, &has_seed, 1);
  if (seed) Mix(h, &*seed, sizeof(*seed));
  return h;
}

std::string SimulatedAnswer(const std::string& model, const std::vector<Message>& messages,
                            std::optional<std::int64_t> seed, int choice_index, int min_words,
                            int max_words) {
  if (min_words < 1) min_words = 1;
  if (max_words < min_words) max_words = min_words;
  std::uint64_t state = ChoiceState(model, messages, seed, choice_index, 1);
  const auto span = static_cast<std::uint64_t>(max_words - min_words + 1);
  const int count = min_words + static_cast<int>(SplitMix(state) % span);
  return Words(state, count);
}

std::string SimulatedReasoning(const std::string& model, const std::vector<Message>& messages,
                               std::optional<std::int64_t> seed, int choice_index) {
  std::uint64_t state = ChoiceState(model, messages, seed, choice_index, 2);
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%08llx",
                static_cast<unsigned long long>(SplitMix(state) & 0xffffffffULL));
  const int extra = 4 + static_cast<int>(SplitMix(state) % 8);
  return std::string("Let me think about ") + hex + ". " + Words(state, extra);
}

std::vector<std::string> SimTokens(const std::string& text) {
  std::vector<std::string> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = text.find(' ', i + 1);
    if (j == std::string::npos) j = text.size();
    tokens.push_back(text.substr(i, j - i));
    i = j;
  }
  return tokens;
}

std::int64_t SimWordCount(const std::string& text) {
  std::int64_t n = 0;
  bool in_word = false;
  for (unsigned char c : text) {
    const bool space = std::isspace(c) != 0;
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

std::int64_t SimPromptTokens(const std::vector<Message>& messages) {
  std::int64_t n = 0;
  for (const Message& m : messages) n += SimWordCount(m.content) + 4;
  return n;
}

std::vector<TokenLogprob> SimLogprobs(const std::vector<std::string>& tokens, int top_k,
                                      std::uint64_t salt) {
  std::vector<TokenLogprob> out;
  out.reserve(tokens.size());
  std::uint64_t state = salt;
  for (const std::string& tok : tokens) {
    TokenLogprob lp;
    lp.token = tok;
    // Quantised to 1/1024 so the values survive a JSON round trip exactly.
    lp.logprob = -static_cast<double>(SplitMix(state) % 2048) / 1024.0;
    double next = lp.logprob;
    for (int k = 0; k < top_k; ++k) {
      if (k == 0) {
        lp.top.push_back({tok, lp.logprob});
        continue;
      }
      next -= static_cast<double>(1 + SplitMix(state) % 1024) / 1024.0;
      // A vocabulary word other than the token, with the token's leading-space style.
      std::string alt;
      do {
        alt = std::string(tok.empty() || tok[0] != ' ' ? "" : " ") +
              kVocabulary[SplitMix(state) % kVocabulary.size()];
      } while (alt == tok);
      lp.top.push_back({alt, next});
    }
    out.push_back(std::move(lp));
  }
  return out;
}

SimCompletion SimGenerate(const SimRequest& req, bool with_reasoning, int min_words,
                          int max_words) {
  SimCompletion c;
  c.hash = SimRequestHash(req.model, req.messages, req.seed);
  c.prompt_tokens = SimPromptTokens(req.messages);
  for (int i = 0; i < req.n; ++i) {
    SimChoice ch;
    std::string full = SimulatedAnswer(req.model, req.messages, req.seed, i, min_words, max_words);
    ch.answer_tokens = SimTokens(full);
    if (req.max_tokens && static_cast<std::int64_t>(ch.answer_tokens.size()) > *req.max_tokens) {
      ch.answer_tokens.resize(static_cast<std::size_t>(std::max<std::int64_t>(0, *req.max_tokens)));
      ch.truncated = true;
    }
    for (const std::string& t : ch.answer_tokens) ch.answer += t;
    if (with_reasoning) {
      ch.reasoning = SimulatedReasoning(req.model, req.messages, req.seed, i);
      ch.reasoning_tokens = SimTokens(ch.reasoning);
    }
    if (req.logprobs) {
      ch.logprobs = SimLogprobs(ch.answer_tokens, req.top_logprobs,
                                c.hash ^ (0x5bd1e995ULL * static_cast<std::uint64_t>(i + 1)));
    }
    const auto words = static_cast<std::int64_t>(ch.answer_tokens.size());
    const auto rwords = static_cast<std::int64_t>(ch.reasoning_tokens.size());
    c.completion_tokens += words + rwords;
    c.reasoning_tokens += rwords;
    c.choices.push_back(std::move(ch));
  }
  return c;
}

}  // namespace retort
