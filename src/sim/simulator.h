// Simulator: the built-in OpenAI- and Anthropic-compatible teacher used for dry runs, the
// quickstart, integration tests and benchmarks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "retort/clock.h"
#include "retort/corpus.h"
#include "retort/status.h"
#include "sim/sim_answer.h"  // SimulatedAnswer, SimulatedReasoning

namespace retort {

// How the simulator behaves. Defaults give a fast, fault-free, unlimited teacher.
struct SimulatorOptions {
  // Address to listen on; port 0 picks an ephemeral port (see Simulator::port()).
  std::string host = "127.0.0.1";
  int port = 0;
  // Seed of the fault-injection and latency generators. The fault drawn for the k-th
  // well-formed chat request depends only on the seed and k.
  std::uint64_t seed = 1;
  // Delay before each chat response: latency_ms + U[0, latency_jitter_ms) (uniform).
  double latency_ms = 0, latency_jitter_ms = 0;
  // Extra delay before each token-carrying SSE event when streaming.
  double token_latency_ms = 0;
  // Limits per minute (0 = unlimited): requests, combined tokens, and Anthropic-style input
  // (ITPM) and output (OTPM) tokens. All are enforced on both APIs; itpm/otpm are announced only
  // in Anthropic's anthropic-ratelimit-input-tokens-* / -output-tokens-* headers.
  std::int64_t rpm = 0, tpm = 0, itpm = 0, otpm = 0;
  // How the limits are enforced: "sliding" (any window of limit_window_s holds at most
  // limit x limit_window_s / 60), "bucket" (a token bucket holding a minute, starting full,
  // refilling continuously) or "calendar" (fixed wall-clock minutes). See SimLimitModel.
  std::string limit_model = "sliding";
  // The sliding window in seconds. 60 (the default) is a plain per-minute window; 1 is
  // OpenAI's documented short-window enforcement. REQUIRES rpm x limit_window_s / 60 >= 1.
  double limit_window_s = 60;
  // What a request is charged at admission: "max_tokens" (prompt tokens + max_tokens x n,
  // as OpenAI documents; the produced completion when the request sets no max_tokens) or
  // "actual" (prompt + the completion it produces). Output tokens (otpm) are charged the same
  // way and corrected to what was produced once the response is (as Anthropic documents).
  std::string token_count = "max_tokens";
  // Per-request fault probabilities (sum <= 1): 5xx = 500 (OpenAI) / 529 (Anthropic) JSON
  // error; reset = connection dropped without a response; truncate = 200 whose body is cut
  // in half (Content-Length of the full body; streams stop halfway); malformed = 200 with a
  // non-JSON body; hang = nothing for hang_ms, then the connection is dropped.
  double fail_5xx = 0, fail_reset = 0, fail_truncate = 0, fail_malformed = 0, fail_hang = 0;
  double hang_ms = 30000;
  // Where OpenAI responses carry reasoning: "none", "reasoning" (message.reasoning),
  // "reasoning_content" (message.reasoning_content) or "think" (a "<think>R</think>\n\n"
  // prefix of content). Anthropic responses carry a thinking block iff the request enables it.
  std::string reasoning = "none";
  // Answer length range in words (inclusive).
  int min_words = 8, max_words = 40;
  // "words": answers are the words above. "boxed": each answer also ends with
  // " The answer is \\boxed{N}." where N is the last integer in the last user message (no sentence
  // when it has none) - answers for testing --verify math. "json": each untruncated answer is
  // {"answer":"<the words>","words":<their number>} (structured output, --verify json-schema).
  std::string answer_style = "words";
  // Send x-ratelimit-* (OpenAI) / anthropic-ratelimit-* headers on every chat response.
  bool limit_headers = true;
  // Server worker threads; each open connection occupies one (a new connection waits until a
  // thread is free, as on any fixed-pool thread-per-connection server).
  int threads = 64;
  // Close the connection after each SSE response although keep-alive was announced (what
  // llama.cpp's llama-server does).
  bool close_after_stream = false;
  // If set (an HTTP status "400".."599"), requests naming model "bad-model" get that status
  // with an invalid_request_error body (for non-retryable-error tests).
  std::string fail_status_for_model;
  // The same for requests whose messages contain the text "bad-prompt" (per-prompt refusals, such
  // as a prompt over the context length, among answered ones).
  std::string fail_status_for_prompt;
  // If set, requests must carry this key (`Authorization: Bearer KEY` for OpenAI, `x-api-key`
  // for Anthropic); others get 401. Never logged or reported.
  std::string api_key;
  // Time source of the rate-limit window and of the batch APIs; nullptr = SystemClock(). Not owned.
  Clock* clock = nullptr;

  // Batch APIs (OpenAI /v1/files + /v1/batches, Anthropic /v1/messages/batches; see SimBatches).
  // Seconds from creation until a batch has ended: its whole run time, compressed. > 0.
  double batch_complete_s = 2;
  // The 24 h completion window, compressed to this many seconds (expires_at = created + window).
  // A batch whose batch_complete_s exceeds it expires at the window with what is done by then. > 0.
  double batch_window_s = 60;
  // The first N batches created (both APIs counted together) expire when half their requests are
  // done, at batch_complete_s / 2: OpenAI `expired` (output file with the done half, error file
  // with batch_expired lines for the rest), Anthropic `ended` with `expired` results for the rest.
  std::int64_t batch_expire_first = 0;
  // Probability that a request of a batch fails with a retryable server error (OpenAI: an
  // error-file line with status_code 500 and a server_error body; Anthropic: errored, api_error).
  // Drawn from (seed, the batch's creation ordinal, custom_id): a resubmitted request gets a fresh
  // draw.
  double batch_line_error = 0;
  // The output file (OpenAI) / results (Anthropic) of the first N batches to end with a non-empty
  // output are cut in the middle of a line at about half their bytes (served with the cut length
  // as Content-Length). "First to end" is the order in which requests first see them ended.
  std::int64_t batch_truncate_first = 0;
  // The first N POST /v1/files and POST /v1/messages/batches (counted together) answer 503 with
  // an error body and store nothing.
  std::int64_t batch_upload_5xx = 0;

  // InvalidArgument naming the first bad field: a port outside 0..65535, a negative
  // latency/limit, an unknown limit_model or token_count, limit_window_s <= 0 or too short to
  // hold one request, a probability outside [0,1] or a sum above 1, an unknown reasoning mode,
  // min_words < 1 or > max_words, threads outside 1..4096, or a bad fail_status_for_model or
  // fail_status_for_prompt, a negative batch_expire_first / batch_truncate_first /
  // batch_upload_5xx, batch_line_error outside [0,1], or batch_complete_s / batch_window_s <= 0.
  Status Validate() const;
};

// Counters since Start(). A snapshot; fields are consistent individually, not jointly.
struct SimulatorStats {
  std::int64_t requests = 0;            // requests to a chat endpoint
  std::int64_t ok = 0;                  // complete successful responses written
  std::int64_t bad_requests = 0;        // 4xx for malformed requests and fail_status_for_model
  std::int64_t unauthorized = 0;        // 401s for a missing or wrong api_key
  std::int64_t rate_limited = 0;        // 429s sent
  std::int64_t over_limit_requests = 0; // requests that arrived when a limit was used up (each got a 429)
  std::int64_t fault_5xx = 0, fault_reset = 0, fault_truncate = 0, fault_malformed = 0,
               fault_hang = 0;
  std::int64_t prompt_tokens = 0;       // of admitted requests
  std::int64_t completion_tokens = 0;   // actually produced (incl. reasoning)
  // Most admitted requests / combined tokens held at once: in one sliding window, one calendar
  // minute, or drawn from the bucket.
  std::int64_t max_requests_in_any_window = 0;
  std::int64_t max_tokens_in_any_window = 0;
  // Most admitted requests / combined tokens (as charged) within any 1 s, whatever the model.
  std::int64_t max_requests_in_any_second = 0;
  std::int64_t max_tokens_in_any_second = 0;
  std::int64_t in_flight = 0;           // chat requests being handled now
  std::int64_t in_flight_max = 0;       // most chat requests handled at once
  std::int64_t batch_files_uploaded = 0;   // files stored by POST /v1/files
  std::int64_t batches_created = 0;        // batches created, both APIs (incl. ones failing validation)
  std::int64_t batch_requests = 0;         // requests in created, validated batches
  std::int64_t batches_cancelled = 0;      // batches a cancel was accepted for
  // Requests that succeeded in a batch although their custom_id had already succeeded in an
  // earlier batch of the same API (a paid duplicate), counted when the later batch's output is
  // generated. Exactly-once harvests keep it 0.
  std::int64_t batch_requests_repeated = 0;
};

// The stats as a JSON object with the field names above (what GET /sim/stats returns).
std::string SimulatorStatsJson(const SimulatorStats& s);

// An HTTP server speaking OpenAI Chat Completions (POST /v1/chat/completions and
// /chat/completions) and Anthropic Messages (POST /v1/messages), both providers' batch APIs
// (see sim_batch.h), plus GET /sim/stats and GET /health. Safe for concurrent use.
class Simulator {
 public:
  // Validates `opts`, binds, starts the listening thread and returns once it accepts
  // connections. InvalidArgument for bad options, IOError if the address cannot be bound.
  static Result<std::unique_ptr<Simulator>> Start(const SimulatorOptions& opts);

  ~Simulator();  // calls Stop()
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // The bound port.
  int port() const;
  // Stops listening, wakes hanging and sleeping handlers at once, drops open connections
  // and joins the server threads. Idempotent.
  void Stop();
  // A snapshot of the counters.
  SimulatorStats Stats() const;

 private:
  struct Impl;
  explicit Simulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace retort
