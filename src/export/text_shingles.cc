// Text shingles implementation.
#include "export/text_shingles.h"

#include <nlohmann/json.hpp>

namespace retort {

namespace {

// 0 = separator, else the byte to hash (ASCII lowercased).
struct ByteClass {
  unsigned char map[256];
  ByteClass() {
    for (int c = 0; c < 256; ++c) {
      const bool ascii_sep = c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
      map[c] = ascii_sep ? 0 : static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
  }
};
const ByteClass kClass;

}  // namespace

void AppendWordHashes(std::string_view text, std::vector<std::uint64_t>* out) {
  std::uint64_t h = 0;
  bool in_word = false;
  for (unsigned char raw : text) {
    const unsigned char c = kClass.map[raw];
    if (c == 0) {
      if (in_word) out->push_back(Mix64(h));
      in_word = false;
      continue;
    }
    if (!in_word) h = 0xcbf29ce484222325ULL;  // FNV-1a
    h = (h ^ c) * 0x100000001b3ULL;
    in_word = true;
  }
  if (in_word) out->push_back(Mix64(h));
}

void AppendNGramHashes(const std::vector<std::uint64_t>& words, int n, bool whole_if_short,
                       std::vector<std::uint64_t>* out) {
  const size_t k = static_cast<size_t>(n);
  if (words.size() < k) {
    if (!whole_if_short || words.empty()) return;
  }
  const size_t count = words.size() < k ? 1 : words.size() - k + 1;
  const size_t len = words.size() < k ? words.size() : k;
  for (size_t i = 0; i < count; ++i) {
    std::uint64_t h = 0x9e3779b97f4a7c15ULL * len;
    for (size_t j = 0; j < len; ++j) h = Mix64(h + words[i + j]);
    out->push_back(h);
  }
}

std::string PromptText(std::string_view messages_json) {
  nlohmann::json j = nlohmann::json::parse(messages_json, nullptr, false);
  std::string out;
  if (j.is_discarded() || !j.is_array()) return out;
  for (const nlohmann::json& m : j) {
    if (!m.is_object()) continue;
    auto it = m.find("content");
    if (it == m.end() || !it->is_string()) continue;
    if (!out.empty()) out += '\n';
    out += it->get_ref<const std::string&>();
  }
  return out;
}

}  // namespace retort
