// Shared pieces of the simulator's two wire formats: JSON field checks and SSE events.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "retort/status.h"
#include "sim/sim_answer.h"

// Binds the value of a Result expression to `lhs`, or returns its Status from the function.
#define SIM_ASSIGN_OR_RETURN(lhs, expr)          \
  auto lhs##_r = (expr);                         \
  if (!lhs##_r.ok()) return lhs##_r.status();    \
  auto lhs = std::move(lhs##_r.value())

namespace retort {

// One server-sent event, fully framed ("event: ...\ndata: ...\n\n"). `token` marks events
// that carry a generated token (the simulator waits token_latency_ms before each).
struct SimEvent {
  std::string text;
  bool token = false;
};

// Serialises without throwing (invalid UTF-8 is replaced).
std::string SimDump(const nlohmann::ordered_json& j);

// Field readers for a parsed request object. Each returns InvalidArgument naming `key` when
// the field is present with the wrong type or out of [lo, hi]; absent (or null) gives nullopt.
Result<std::optional<std::int64_t>> SimOptInt(const nlohmann::json& obj, const char* key,
                                              std::int64_t lo, std::int64_t hi);
Result<std::optional<bool>> SimOptBool(const nlohmann::json& obj, const char* key);

// The text of a message `content`: a string, or an array of parts/blocks whose
// {"type":"text","text":...} entries are concatenated (other block types are skipped).
// InvalidArgument naming `where` for any other shape.
Result<std::string> SimContentText(const nlohmann::json& content, const std::string& where);

}  // namespace retort
