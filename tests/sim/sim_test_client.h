// Helpers shared by the simulator's integration tests: start a simulator, talk to it over
// loopback with httplib::Client, parse JSON and SSE bodies.
#pragma once

#include <catch2/catch.hpp>
#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/simulator.h"

namespace simtest {

using nlohmann::json;
using retort::Message;
using retort::Simulator;
using retort::SimulatorOptions;


using nlohmann::json;
using retort::Message;
using retort::Simulator;
using retort::SimulatorOptions;

inline std::unique_ptr<Simulator> StartSim(const SimulatorOptions& opts) {
  auto sim = Simulator::Start(opts);
  REQUIRE(sim.ok());
  return std::move(sim.value());
}

inline std::unique_ptr<httplib::Client> ClientFor(const Simulator& sim) {
  auto cli = std::make_unique<httplib::Client>("127.0.0.1", sim.port());
  cli->set_tcp_nodelay(true);
  cli->set_connection_timeout(5, 0);
  cli->set_read_timeout(20, 0);
  return cli;
}

inline httplib::Result PostChat(httplib::Client& cli, const json& body) {
  return cli.Post("/v1/chat/completions", body.dump(), "application/json");
}

inline httplib::Result PostMessages(httplib::Client& cli, const json& body, bool version_header = true) {
  httplib::Headers h;
  h.emplace("x-api-key", "sk-test");
  if (version_header) h.emplace("anthropic-version", "2023-06-01");
  return cli.Post("/v1/messages", h, body.dump(), "application/json");
}

inline json ParseJson(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

struct SseEvent {
  std::string event;
  std::string data;
};

// A simple SSE parser for tests: LF framing, "event:" and "data:" fields.
inline std::vector<SseEvent> ParseSse(const std::string& body) {
  std::vector<SseEvent> out;
  SseEvent cur;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t nl = body.find('\n', pos);
    if (nl == std::string::npos) nl = body.size();
    const std::string line = body.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      if (!cur.data.empty() || !cur.event.empty()) out.push_back(cur);
      cur = {};
    } else if (line.rfind("event: ", 0) == 0) {
      cur.event = line.substr(7);
    } else if (line.rfind("data: ", 0) == 0) {
      cur.data = line.substr(6);
    }
  }
  return out;
}

inline const std::vector<Message> kMessages = {{"system", "You are terse."}, {"user", "What is two plus two?"}};

inline json ChatBody(const std::vector<Message>& msgs, const std::string& model = "sim-model") {
  json m = json::array();
  for (const auto& msg : msgs) m.push_back({{"role", msg.role}, {"content", msg.content}});
  return {{"model", model}, {"messages", m}};
}

inline std::string Concat(const std::vector<std::string>& v, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n && i < v.size(); ++i) s += v[i];
  return s;
}

}  // namespace simtest
