// Fuzz target: Anthropic Messages bodies, error bodies and SSE streams (both split_think values).
#include <cstdint>
#include <string_view>

#include "fuzz/provider_fuzz.h"
#include "teacher/anthropic_messages.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const retort::AnthropicMessagesProvider provider;
  retort::fuzz::FuzzProviderInput(provider, std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
