// Integration tests of the simulator's rate limits, fault injection, Stop() and the
// `retort sim` command.
#include <catch2/catch.hpp>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "sim/sim_answer.h"
#include "sim/sim_limiter.h"
#include "sim/sim_test_client.h"

extern char** environ;

using namespace simtest;  // NOLINT: test helpers

TEST_CASE("Simulator enforces rpm with 429, Retry-After and limit headers and the window frees", "[teacher]") {
  retort::FakeClock clock;
  SimulatorOptions opts;
  opts.rpm = 5;
  opts.clock = &clock;
  auto sim = StartSim(opts);
  auto cli = ClientFor(*sim);
  const json body = ChatBody(kMessages);
  for (int i = 0; i < 5; ++i) {
    auto res = PostChat(*cli, body);
    REQUIRE(res);
    REQUIRE(res->status == 200);
    CHECK(res->get_header_value("x-ratelimit-limit-requests") == "5");
    CHECK(res->get_header_value("x-ratelimit-remaining-requests") == std::to_string(4 - i));
    // The oldest request (admitted at i = 0) leaves the window 60 s after it arrived.
    CHECK(res->get_header_value("x-ratelimit-reset-requests") == retort::GoDuration(60000 - 1000 * i));
    CHECK_FALSE(res->has_header("x-ratelimit-limit-tokens"));  // tpm unlimited
    clock.Advance(1000);
  }
  auto limited = PostChat(*cli, body);
  REQUIRE(limited);
  CHECK(limited->status == 429);
  // The oldest request was admitted 5 s ago: it leaves the window in 55 s.
  CHECK(limited->get_header_value("Retry-After") == "55");
  CHECK(limited->get_header_value("retry-after-ms") == "55000");
  CHECK(limited->get_header_value("x-ratelimit-remaining-requests") == "0");
  CHECK(limited->get_header_value("x-ratelimit-reset-requests") == "55s");
  json err = ParseJson(limited->body);
  CHECK(err["error"]["type"] == "requests");
  CHECK(err["error"]["code"] == "rate_limit_exceeded");

  // Anthropic shape for the same condition.
  auto alimited = PostMessages(*cli, {{"model", "m"}, {"max_tokens", 10},
                                      {"messages", {{{"role", "user"}, {"content", "hi"}}}}});
  REQUIRE(alimited);
  CHECK(alimited->status == 429);
  CHECK(ParseJson(alimited->body)["error"]["type"] == "rate_limit_error");
  CHECK(alimited->get_header_value("retry-after") == "55");
  CHECK(alimited->get_header_value("anthropic-ratelimit-requests-limit") == "5");
  CHECK(alimited->get_header_value("anthropic-ratelimit-requests-remaining") == "0");
  CHECK(alimited->get_header_value("anthropic-ratelimit-requests-reset") ==
        retort::Rfc3339(clock.WallMs() + 55000));

  clock.Advance(55000);  // the first request expires
  auto freed = PostChat(*cli, body);
  REQUIRE(freed);
  CHECK(freed->status == 200);
  CHECK(freed->get_header_value("x-ratelimit-remaining-requests") == "0");
  auto st = sim->Stats();
  CHECK(st.rate_limited == 2);
  CHECK(st.over_limit_requests == 2);
  CHECK(st.max_requests_in_any_window == 5);
  CHECK(st.ok == 6);
}

TEST_CASE("Simulator enforces a 1 s sliding window with a fractional Retry-After", "[teacher][issue-11]") {
  retort::FakeClock clock;
  SimulatorOptions opts;
  opts.rpm = 120;  // 2 in any second
  opts.limit_window_s = 1;
  opts.clock = &clock;
  auto sim = StartSim(opts);
  auto cli = ClientFor(*sim);
  const json body = ChatBody(kMessages);
  for (int i = 0; i < 2; ++i) {
    auto res = PostChat(*cli, body);
    REQUIRE(res);
    REQUIRE(res->status == 200);
    CHECK(res->get_header_value("x-ratelimit-limit-requests") == "120");
    CHECK(res->get_header_value("x-ratelimit-remaining-requests") == std::to_string(1 - i));
    clock.Advance(100);
  }
  auto limited = PostChat(*cli, body);
  REQUIRE(limited);
  CHECK(limited->status == 429);
  CHECK(limited->get_header_value("retry-after") == "0.8");  // the first leaves 1 s after it came
  CHECK(limited->get_header_value("retry-after-ms") == "800");
  CHECK(limited->get_header_value("x-ratelimit-reset-requests") == "800ms");
  clock.Advance(800);
  auto again = PostChat(*cli, body);
  REQUIRE(again);
  CHECK(again->status == 200);
  CHECK(sim->Stats().max_requests_in_any_second == 2);
}

TEST_CASE("Simulator announces Anthropic input and output token limits and settles output to usage",
          "[teacher][issue-11]") {
  retort::FakeClock clock;
  SimulatorOptions opts;
  opts.itpm = 1000;
  opts.otpm = 100;
  opts.limit_model = "bucket";
  opts.min_words = 10;
  opts.max_words = 10;
  opts.clock = &clock;
  auto sim = StartSim(opts);
  auto cli = ClientFor(*sim);
  const json body = {{"model", "m"}, {"max_tokens", 64}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  // Each request is charged 64 output tokens when admitted and settled to the 10 it produces.
  for (int i = 0; i < 4; ++i) {
    auto res = PostMessages(*cli, body);
    REQUIRE(res);
    REQUIRE(res->status == 200);
    CHECK(res->get_header_value("anthropic-ratelimit-output-tokens-limit") == "100");
    CHECK(res->get_header_value("anthropic-ratelimit-output-tokens-remaining") == std::to_string(36 - 10 * i));
    CHECK(res->get_header_value("anthropic-ratelimit-input-tokens-limit") == "1000");
    CHECK(res->get_header_value("anthropic-ratelimit-input-tokens-remaining") == std::to_string(1000 - 5 * (i + 1)));
    CHECK_FALSE(res->has_header("anthropic-ratelimit-tokens-limit"));  // no combined limit set
  }
  auto limited = PostMessages(*cli, body);
  REQUIRE(limited);
  CHECK(limited->status == 429);
  CHECK_THAT(ParseJson(limited->body)["error"]["message"].get<std::string>(), Catch::Contains("output_tokens"));
  CHECK(limited->get_header_value("retry-after") == "2.4");  // 4 tokens at 100 per minute
  CHECK_FALSE(limited->has_header("retry-after-ms"));
  // The OpenAI wire has no input/output headers; the limits still apply.
  auto chat = PostChat(*cli, ChatBody(kMessages));
  REQUIRE(chat);
  CHECK(chat->status == 200);  // no max_tokens: charged the 10 it produces
  CHECK_FALSE(chat->has_header("anthropic-ratelimit-output-tokens-limit"));
  CHECK_FALSE(chat->has_header("x-ratelimit-limit-tokens"));
}

TEST_CASE("Simulator enforces tpm with a tokens 429", "[teacher]") {
  retort::FakeClock clock;
  SimulatorOptions opts;
  opts.tpm = 100;
  opts.min_words = 10;
  opts.max_words = 10;
  opts.clock = &clock;
  auto sim = StartSim(opts);
  auto cli = ClientFor(*sim);
  const json body = ChatBody(kMessages);  // 16 prompt + 10 completion = 26 tokens
  for (int i = 0; i < 3; ++i) {
    auto res = PostChat(*cli, body);
    REQUIRE(res);
    REQUIRE(res->status == 200);
    CHECK(res->get_header_value("x-ratelimit-remaining-tokens") == std::to_string(100 - 26 * (i + 1)));
  }
  auto limited = PostChat(*cli, body);
  REQUIRE(limited);
  CHECK(limited->status == 429);
  CHECK(ParseJson(limited->body)["error"]["type"] == "tokens");
  CHECK(limited->get_header_value("Retry-After") == "60");
  CHECK(sim->Stats().max_tokens_in_any_window == 78);
}

TEST_CASE("Simulator injects each fault kind at rate 1.0", "[teacher]") {
  SECTION("5xx") {
    SimulatorOptions opts;
    opts.fail_5xx = 1.0;
    auto sim = StartSim(opts);
    auto cli = ClientFor(*sim);
    auto res = PostChat(*cli, ChatBody(kMessages));
    REQUIRE(res);
    CHECK(res->status == 500);
    CHECK(ParseJson(res->body)["error"]["type"] == "server_error");
    auto ares = PostMessages(*cli, {{"model", "m"}, {"max_tokens", 10},
                                    {"messages", {{{"role", "user"}, {"content", "hi"}}}}});
    REQUIRE(ares);
    CHECK(ares->status == 529);
    CHECK(ParseJson(ares->body)["error"]["type"] == "overloaded_error");
    CHECK(sim->Stats().fault_5xx == 2);
  }
  SECTION("reset") {
    SimulatorOptions opts;
    opts.fail_reset = 1.0;
    auto sim = StartSim(opts);
    auto cli = ClientFor(*sim);
    auto res = PostChat(*cli, ChatBody(kMessages));
    CHECK_FALSE(res);
    CHECK(res.error() != httplib::Error::Success);
    CHECK(sim->Stats().fault_reset == 1);
    CHECK(sim->Stats().ok == 0);
  }
  SECTION("truncate") {
    SimulatorOptions opts;
    opts.fail_truncate = 1.0;
    auto sim = StartSim(opts);
    auto cli = ClientFor(*sim);
    auto res = PostChat(*cli, ChatBody(kMessages));
    CHECK_FALSE(res);
    // A response handler sees the 200 and its full Content-Length before the body is cut.
    int status = 0;
    std::string length, received;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = ChatBody(kMessages).dump();
    req.set_header("Content-Type", "application/json");
    req.response_handler = [&](const httplib::Response& r) {
      status = r.status;
      length = r.get_header_value("Content-Length");
      return true;
    };
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      received.append(data, n);
      return true;
    };
    auto raw = cli->send(req);
    CHECK_FALSE(raw);
    CHECK(status == 200);
    REQUIRE_FALSE(length.empty());
    CHECK(received.size() == std::stoul(length) / 2);
    // A truncated stream ends without [DONE].
    json sbody = ChatBody(kMessages);
    sbody["stream"] = true;
    std::string sreceived;
    httplib::Request sreq = req;
    sreq.body = sbody.dump();
    sreq.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      sreceived.append(data, n);
      return true;
    };
    CHECK_FALSE(cli->send(sreq));
    CHECK(sreceived.find("[DONE]") == std::string::npos);
    CHECK(sim->Stats().fault_truncate == 3);
  }
  SECTION("malformed") {
    SimulatorOptions opts;
    opts.fail_malformed = 1.0;
    auto sim = StartSim(opts);
    auto cli = ClientFor(*sim);
    auto res = PostChat(*cli, ChatBody(kMessages));
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(json::parse(res->body, nullptr, false).is_discarded());
    CHECK(sim->Stats().fault_malformed == 1);
  }
  SECTION("hang") {
    SimulatorOptions opts;
    opts.fail_hang = 1.0;
    opts.hang_ms = 50;
    auto sim = StartSim(opts);
    auto cli = ClientFor(*sim);
    auto res = PostChat(*cli, ChatBody(kMessages));
    CHECK_FALSE(res);
    CHECK(sim->Stats().fault_hang == 1);
  }
}

TEST_CASE("Simulator fault sequence is deterministic for a seed", "[teacher]") {
  auto outcomes = [](std::uint64_t seed) {
    SimulatorOptions opts;
    opts.seed = seed;
    opts.fail_5xx = 0.3;
    opts.fail_malformed = 0.3;
    opts.fail_reset = 0.2;
    auto sim = StartSim(opts);
    auto cli = ClientFor(*sim);
    std::string seq;
    for (int i = 0; i < 24; ++i) {
      auto res = PostChat(*cli, ChatBody(kMessages));
      if (!res) {
        seq += 'R';
      } else if (res->status == 500) {
        seq += '5';
      } else if (json::parse(res->body, nullptr, false).is_discarded()) {
        seq += 'M';
      } else {
        seq += 'o';
      }
    }
    return seq;
  };
  const std::string a = outcomes(42);
  CHECK(a == outcomes(42));
  CHECK(a != outcomes(43));
  for (char kind : {'R', '5', 'M', 'o'}) CHECK(a.find(kind) != std::string::npos);
}

TEST_CASE("Simulator Stop unblocks a hang and idle keep-alive connections quickly", "[teacher]") {
  SimulatorOptions opts;
  opts.fail_hang = 1.0;
  opts.hang_ms = 120000;
  auto sim = StartSim(opts);
  auto idle = ClientFor(*sim);
  idle->set_keep_alive(true);
  REQUIRE(idle->Get("/health"));  // leaves an idle keep-alive connection open
  auto fut = std::async(std::launch::async, [&] {
    auto cli = ClientFor(*sim);
    return static_cast<bool>(PostChat(*cli, ChatBody(kMessages)));
  });
  // Bounded wait until the request is hanging.
  for (int i = 0; i < 5000 && sim->Stats().fault_hang == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(sim->Stats().fault_hang == 1);
  const auto t0 = std::chrono::steady_clock::now();
  sim->Stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took < std::chrono::seconds(10));  // the hang (120 s) and keep-alive (60 s) did not hold it
  REQUIRE(fut.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  CHECK_FALSE(fut.get());
  sim->Stop();  // idempotent
}

TEST_CASE("retort sim prints its address, serves, and exits 0 on SIGTERM", "[teacher]") {
  int out[2];
  REQUIRE(pipe(out) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::vector<std::string> args = {RETORT_BINARY, "sim", "--listen", "127.0.0.1:0", "--seed", "3",
                                   "--print-stats"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, RETORT_BINARY, &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  auto read_until = [&](std::string& buf, const std::string& what) {
    for (int i = 0; i < 200 && buf.find(what) == std::string::npos; ++i) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char tmp[4096];
      const ssize_t n = read(out[0], tmp, sizeof(tmp));
      if (n <= 0) break;
      buf.append(tmp, static_cast<std::size_t>(n));
    }
  };
  std::string buf;
  read_until(buf, "\n");
  const std::string prefix = "listening on 127.0.0.1:";
  REQUIRE(buf.rfind(prefix, 0) == 0);
  const int port = std::stoi(buf.substr(prefix.size()));
  CHECK(port > 0);
  httplib::Client cli("127.0.0.1", port);
  cli.set_tcp_nodelay(true);
  auto res = cli.Post("/v1/chat/completions", ChatBody(kMessages).dump(), "application/json");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(ParseJson(res->body)["choices"][0]["message"]["content"] ==
        retort::SimulatedAnswer("sim-model", kMessages, std::nullopt, 0, 8, 40));
  REQUIRE(kill(pid, SIGTERM) == 0);
  read_until(buf, "}\n");
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  close(out[0]);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::string stats = buf.substr(buf.find('\n') + 1);
  json j = ParseJson(stats);
  CHECK(j["requests"] == 1);
  CHECK(j["ok"] == 1);
}
