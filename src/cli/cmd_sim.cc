// retort sim: runs the built-in teacher simulator until SIGINT/SIGTERM.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "sim/simulator.h"

namespace retort::cli {
namespace {

struct SimFlags {
  std::string listen = "127.0.0.1:0";
  bool no_limit_headers = false;
  bool print_stats = false;
  std::string api_key_env;
  SimulatorOptions opts;
};

// Splits "host:port" at the last ':'. InvalidArgument if either part is missing or bad.
Status ParseListen(const std::string& s, std::string& host, int& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    return Status::InvalidArgument("--listen must be host:port, got '" + s + "'");
  }
  host = s.substr(0, colon);
  const std::string p = s.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("--listen: bad port '" + p + "'");
  }
  port = std::stoi(p);
  if (port > 65535) return Status::InvalidArgument("--listen: port out of range: " + p);
  return Status::OK();
}

int RunSim(SimFlags& f) {
  SimulatorOptions opts = f.opts;
  opts.limit_headers = !f.no_limit_headers;
  if (!f.api_key_env.empty()) {
    const char* key = std::getenv(f.api_key_env.c_str());
    if (!key || !*key) {
      std::cerr << "retort sim: --api-key-env: $" << f.api_key_env << " is not set\n";
      return 2;
    }
    opts.api_key = key;
  }
  if (Status st = ParseListen(f.listen, opts.host, opts.port); !st.ok()) {
    std::cerr << "retort sim: " << st.message() << "\n";
    return 2;
  }
  if (Status st = opts.Validate(); !st.ok()) {
    std::cerr << "retort sim: " << st.message() << "\n";
    return 2;
  }
  // Block the stop signals before any server thread exists so only sigwait() sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto sim = Simulator::Start(opts);
  if (!sim.ok()) {
    std::cerr << "retort sim: " << sim.status().ToString() << "\n";
    return 1;
  }
  std::cout << "listening on " << opts.host << ":" << (*sim)->port() << std::endl;
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  (*sim)->Stop();
  if (f.print_stats) std::cout << SimulatorStatsJson((*sim)->Stats()) << std::endl;
  return 0;
}

}  // namespace

void AddSimCommand(CLI::App& app, int& rc) {
  auto* sub = app.add_subcommand("sim", "Run the built-in teacher simulator (OpenAI- and Anthropic-compatible)");
  auto f = std::make_shared<SimFlags>();
  SimulatorOptions& o = f->opts;
  sub->add_option("--listen", f->listen, "Address to listen on, host:port (port 0 = ephemeral)")->capture_default_str();
  sub->add_option("--seed", o.seed, "Seed of fault injection and latency jitter")->capture_default_str();
  sub->add_option("--latency-ms", o.latency_ms, "Base delay per request (ms)")->capture_default_str();
  sub->add_option("--latency-jitter-ms", o.latency_jitter_ms, "Extra uniform delay U[0,j) per request (ms)")->capture_default_str();
  sub->add_option("--token-latency-ms", o.token_latency_ms, "Delay per streamed token (ms)")->capture_default_str();
  sub->add_option("--rpm", o.rpm, "Requests per minute (0 = unlimited), enforced per --limit-model")
      ->capture_default_str();
  sub->add_option("--tpm", o.tpm, "Tokens per minute (0 = unlimited): prompt + completion as --token-count says")
      ->capture_default_str();
  sub->add_option("--itpm", o.itpm,
                  "Input (prompt) tokens per minute, Anthropic's ITPM (0 = unlimited; announced in "
                  "anthropic-ratelimit-input-tokens-* headers only)")
      ->capture_default_str();
  sub->add_option("--otpm", o.otpm,
                  "Output tokens per minute, Anthropic's OTPM (0 = unlimited): charged as --token-count says "
                  "when admitted, corrected to the tokens produced once the response is; announced in "
                  "anthropic-ratelimit-output-tokens-* headers only")
      ->capture_default_str();
  sub->add_option("--limit-model", o.limit_model,
                  "How limits are enforced: sliding = at most limit x W / 60 in any window of W = "
                  "--limit-window-s seconds; bucket = a token bucket holding a full minute, starting full, "
                  "refilling continuously (Anthropic); calendar = fixed wall-clock minutes reset at :00")
      ->check(CLI::IsMember({"sliding", "bucket", "calendar"}))
      ->capture_default_str();
  sub->add_option("--limit-window-s", o.limit_window_s,
                  "Sliding window W in seconds: 60 = a plain per-minute window; 1 = OpenAI's "
                  "'60,000 RPM may be enforced as 1,000 requests per second'")
      ->capture_default_str()
      ->type_name("SECONDS");
  sub->add_option("--token-count", o.token_count,
                  "What a request is charged when admitted: max_tokens = prompt + max_tokens x n (OpenAI; the "
                  "produced completion if the request sets no max_tokens); actual = prompt + produced completion")
      ->check(CLI::IsMember({"max_tokens", "actual"}))
      ->capture_default_str();
  sub->add_option("--fail-5xx", o.fail_5xx, "Probability of a 500 (OpenAI) / 529 (Anthropic)")->capture_default_str();
  sub->add_option("--fail-reset", o.fail_reset, "Probability of dropping the connection")->capture_default_str();
  sub->add_option("--fail-truncate", o.fail_truncate, "Probability of a body cut in half")->capture_default_str();
  sub->add_option("--fail-malformed", o.fail_malformed, "Probability of a non-JSON 200 body")->capture_default_str();
  sub->add_option("--fail-hang", o.fail_hang, "Probability of hanging, then dropping the connection")->capture_default_str();
  sub->add_option("--hang-ms", o.hang_ms, "How long a hang lasts (ms)")->capture_default_str();
  sub->add_option("--reasoning", o.reasoning, "OpenAI reasoning output: none|reasoning|reasoning_content|think")
      ->check(CLI::IsMember({"none", "reasoning", "reasoning_content", "think"}))
      ->capture_default_str();
  sub->add_option("--min-words", o.min_words, "Shortest answer (words)")->capture_default_str();
  sub->add_option("--max-words", o.max_words, "Longest answer (words)")->capture_default_str();
  sub->add_option("--answer-style", o.answer_style,
                  "words | boxed (each answer ends with 'The answer is \\boxed{N}', N = the last integer of the "
                  "last user message; for testing --verify math) | json ({\"answer\":...,\"words\":N})")
      ->capture_default_str();
  sub->add_flag("--no-limit-headers", f->no_limit_headers, "Do not send rate-limit headers");
  sub->add_option("--threads", o.threads,
                  "Server worker threads (one per open connection; more connections wait for a thread)")
      ->capture_default_str();
  sub->add_flag("--close-after-stream", o.close_after_stream,
                "Close the connection after each SSE response although keep-alive was announced (as llama-server does)");
  sub->add_option("--fail-status-for-model", o.fail_status_for_model,
                  "HTTP status (e.g. 400) returned for requests naming model 'bad-model'");
  sub->add_option("--fail-status-for-prompt", o.fail_status_for_prompt,
                  "HTTP status (e.g. 400) returned for requests whose messages contain 'bad-prompt'");
  sub->add_option("--batch-complete-s", o.batch_complete_s,
                  "Batch APIs (OpenAI /v1/files + /v1/batches, Anthropic /v1/messages/batches): seconds from "
                  "creation until a batch has ended (its compressed run time; > 0)")
      ->capture_default_str()
      ->type_name("SECONDS");
  sub->add_option("--batch-window-s", o.batch_window_s,
                  "The 24 h batch completion window compressed to this many seconds (expires_at = created + "
                  "window); a batch whose --batch-complete-s exceeds it expires at the window, partly done")
      ->capture_default_str()
      ->type_name("SECONDS");
  sub->add_option("--batch-expire-first", o.batch_expire_first,
                  "The first N batches created (both APIs together) expire when half their requests are done "
                  "(at --batch-complete-s / 2)")
      ->capture_default_str();
  sub->add_option("--batch-line-error", o.batch_line_error,
                  "Probability that a batch request fails with a retryable server error (OpenAI: error-file "
                  "line with status_code 500; Anthropic: errored, api_error); drawn from seed, batch and "
                  "custom_id, so a resubmitted request gets a fresh draw")
      ->capture_default_str();
  sub->add_option("--batch-truncate-first", o.batch_truncate_first,
                  "The output file (OpenAI) / results (Anthropic) of the first N batches to end (with a non-empty "
                  "output) are cut in the middle of a line at about half their bytes")
      ->capture_default_str();
  sub->add_option("--batch-upload-5xx", o.batch_upload_5xx,
                  "The first N POST /v1/files and POST /v1/messages/batches (together) answer 503 and store "
                  "nothing")
      ->capture_default_str();
  sub->add_option("--api-key-env", f->api_key_env,
                  "Require the API key held in this environment variable (401 otherwise)");
  sub->add_flag("--print-stats", f->print_stats, "Print the stats JSON to stdout on exit");
  sub->callback([f, &rc] { rc = RunSim(*f); });
}

}  // namespace retort::cli
