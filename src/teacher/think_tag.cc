// SplitThinkTag implementation.
#include "teacher/think_tag.h"

#include <string_view>

namespace retort {
namespace {
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
}  // namespace

bool SplitThinkTag(std::string* content, std::string* reasoning) {
  constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  std::string_view c = *content;
  std::size_t start = 0;
  while (start < c.size() && IsSpace(c[start])) ++start;
  if (c.substr(start, kOpen.size()) != kOpen) return false;
  std::size_t inner = start + kOpen.size();
  std::size_t close = c.find(kClose, inner);
  if (close == std::string_view::npos) return false;
  std::size_t rest = close + kClose.size();
  while (rest < c.size() && IsSpace(c[rest])) ++rest;
  *reasoning = std::string(c.substr(inner, close - inner));
  *content = std::string(c.substr(rest));
  return true;
}

}  // namespace retort
