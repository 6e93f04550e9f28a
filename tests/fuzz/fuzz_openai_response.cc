// Fuzz target: OpenAI Chat Completions bodies, error bodies and SSE streams (both split_think values).
#include <cstdint>
#include <string_view>

#include "fuzz/provider_fuzz.h"
#include "teacher/openai_chat.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const retort::OpenAIChatProvider provider;
  retort::fuzz::FuzzProviderInput(provider, std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
