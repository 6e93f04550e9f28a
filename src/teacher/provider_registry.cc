// The provider registry: MakeProvider / ProviderNames over one static table.
// Adding a provider = its own .h/.cc pair + one line in kProviders.
#include <algorithm>

#include "teacher/anthropic_messages.h"
#include "teacher/openai_chat.h"
#include "teacher/provider.h"

namespace retort {
namespace {

struct ProviderEntry {
  const char* name;
  std::unique_ptr<Provider> (*make)();
};

constexpr ProviderEntry kProviders[] = {
    {"anthropic-messages", &NewAnthropicMessagesProvider},
    {"openai-chat", &NewOpenAIChatProvider},
};

}  // namespace

Result<std::unique_ptr<Provider>> MakeProvider(std::string_view name) {
  for (const ProviderEntry& e : kProviders)
    if (name == e.name) return e.make();
  std::string known;
  for (const std::string& n : ProviderNames()) known += (known.empty() ? "" : ", ") + n;
  return Status::InvalidArgument("unknown provider '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string> ProviderNames() {
  std::vector<std::string> names;
  for (const ProviderEntry& e : kProviders) names.emplace_back(e.name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace retort
