// HarvestOptionTable: every harvest option declared once (CLI flag, config key, JSON field).
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "retort/harvester.h"
#include "teacher/json_field.h"

namespace retort {

namespace {

using Kind = HarvestOptionSpec::Kind;

Status ParseInt(const std::string& name, const std::string& v, std::int64_t* out) {
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE)
    return Status::InvalidArgument("--" + name + ": expected an integer, got '" + v + "'");
  *out = x;
  return Status::OK();
}

Status ParseDouble(const std::string& name, const std::string& v, double* out) {
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x))
    return Status::InvalidArgument("--" + name + ": expected a number, got '" + v + "'");
  *out = x;
  return Status::OK();
}

Status ParseBool(const std::string& name, const std::string& v, bool* out) {
  if (v == "true" || v == "1" || v.empty()) { *out = true; return Status::OK(); }
  if (v == "false" || v == "0") { *out = false; return Status::OK(); }
  return Status::InvalidArgument("--" + name + ": expected true or false, got '" + v + "'");
}

std::string Num(double d) {
  nlohmann::json j = d;
  return j.dump();
}

template <typename F>
HarvestOptionSpec Str(const char* name, const char* help, F member) {
  return {name, help, Kind::kString,
          [member](HarvestOptions& o, const std::string& v) { o.*member = v; return Status::OK(); },
          [member](const HarvestOptions& o) { return o.*member; }};
}

template <typename T>
HarvestOptionSpec Int(const char* name, const char* help, T HarvestOptions::*member) {
  return {name, help, Kind::kInt,
          [name, member](HarvestOptions& o, const std::string& v) {
            std::int64_t x;
            RETORT_RETURN_IF_ERROR(ParseInt(name, v, &x));
            o.*member = static_cast<T>(x);
            return Status::OK();
          },
          [member](const HarvestOptions& o) { return std::to_string(o.*member); }};
}

HarvestOptionSpec Dbl(const char* name, const char* help, double HarvestOptions::*member) {
  return {name, help, Kind::kDouble,
          [name, member](HarvestOptions& o, const std::string& v) { return ParseDouble(name, v, &(o.*member)); },
          [member](const HarvestOptions& o) { return Num(o.*member); }};
}

HarvestOptionSpec Flag(const char* name, const char* help, bool HarvestOptions::*member) {
  return {name, help, Kind::kBool,
          [name, member](HarvestOptions& o, const std::string& v) { return ParseBool(name, v, &(o.*member)); },
          [](const HarvestOptions&) { return std::string(); }};
}

// A flag that turns a default-on behaviour off: --no-reuse sets reuse = false.
HarvestOptionSpec NoFlag(const char* name, const char* help, bool HarvestOptions::*member) {
  return {name, help, Kind::kBool,
          [name, member](HarvestOptions& o, const std::string& v) {
            bool off = false;
            RETORT_RETURN_IF_ERROR(ParseBool(name, v, &off));
            o.*member = !off;
            return Status::OK();
          },
          [](const HarvestOptions&) { return std::string(); }};
}

// Generation parameters live in o.params.
template <typename Set>
HarvestOptionSpec Param(const char* name, const char* help, Kind kind, Set set) {
  return {name, help, kind, set, [](const HarvestOptions&) { return std::string(); }};
}

}  // namespace

const std::vector<HarvestOptionSpec>& HarvestOptionTable() {
  static const std::vector<HarvestOptionSpec> kTable = {
      Str("set", "Prompt set to harvest (as imported with retort import)", &HarvestOptions::set),
      Str("run", "Run name; re-using it resumes the run with its stored parameters", &HarvestOptions::run),
      Str("provider", "Teacher API: openai-chat or anthropic-messages", &HarvestOptions::provider),
      {"base-url",
       "Teacher base URL, repeatable for replicas (openai-chat: http://host:port/v1; anthropic-messages: host root). "
       "Default: $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL",
       Kind::kList,
       [](HarvestOptions& o, const std::string& v) {
         o.base_urls.push_back(v);
         return Status::OK();
       },
       [](const HarvestOptions&) { return std::string(); }},
      Str("model", "Teacher model name", &HarvestOptions::model),
      Str("api-key-env",
          "Environment variable holding the API key (default: OPENAI_API_KEY or ANTHROPIC_API_KEY); never logged",
          &HarvestOptions::api_key_env),
      Param("max-tokens", "Maximum tokens to generate per answer", Kind::kInt,
            [](HarvestOptions& o, const std::string& v) {
              std::int64_t x;
              RETORT_RETURN_IF_ERROR(ParseInt("max-tokens", v, &x));
              o.params.max_tokens = x;
              return Status::OK();
            }),
      Param("temperature", "Sampling temperature", Kind::kDouble,
            [](HarvestOptions& o, const std::string& v) {
              double x;
              RETORT_RETURN_IF_ERROR(ParseDouble("temperature", v, &x));
              o.params.temperature = x;
              return Status::OK();
            }),
      Param("top-p", "Nucleus sampling top_p", Kind::kDouble,
            [](HarvestOptions& o, const std::string& v) {
              double x;
              RETORT_RETURN_IF_ERROR(ParseDouble("top-p", v, &x));
              o.params.top_p = x;
              return Status::OK();
            }),
      Param("seed", "Sampling seed (sample k of a prompt is sent seed+k)", Kind::kInt,
            [](HarvestOptions& o, const std::string& v) {
              std::int64_t x;
              RETORT_RETURN_IF_ERROR(ParseInt("seed", v, &x));
              o.params.seed = x;
              return Status::OK();
            }),
      Param("stop", "Stop sequence (repeatable)", Kind::kList,
            [](HarvestOptions& o, const std::string& v) {
              o.params.stop.push_back(v);
              return Status::OK();
            }),
      Param("samples", "Samples (jobs) per prompt", Kind::kInt,
            [](HarvestOptions& o, const std::string& v) {
              std::int64_t x;
              RETORT_RETURN_IF_ERROR(ParseInt("samples", v, &x));
              o.params.samples = static_cast<int>(x);
              return Status::OK();
            }),
      Param("n-per-request", "Ask for all samples of a prompt in one request (API n) when the provider supports it",
            Kind::kBool,
            [](HarvestOptions& o, const std::string& v) { return ParseBool("n-per-request", v, &o.params.n_per_request); }),
      Param("extra-body", "JSON object merged into every request body (provider-specific fields)", Kind::kString,
            [](HarvestOptions& o, const std::string& v) {
              nlohmann::json j;
              if (!ParseJson(v, &j).ok() || !j.is_object())
                return Status::InvalidArgument("--extra-body: expected a JSON object, got '" + ShortText(v, 80) + "'");
              o.params.extra_body_json = j.dump();
              return Status::OK();
            }),
      Param("logprobs", "Request the top-K logprobs of every generated token and store them", Kind::kInt,
            [](HarvestOptions& o, const std::string& v) {
              std::int64_t x;
              RETORT_RETURN_IF_ERROR(ParseInt("logprobs", v, &x));
              o.params.logprobs = static_cast<int>(x);
              return Status::OK();
            }),
      Param("response-schema",
            "JSON Schema file (or an inline JSON object) sent as the structured-output request (openai-chat: "
            "response_format json_schema, strict); part of the run's parameters",
            Kind::kString,
            [](HarvestOptions& o, const std::string& v) {
              std::string text = v;
              const size_t first = v.find_first_not_of(" \t\r\n");
              if (first == std::string::npos || v[first] != '{') {
                std::ifstream in(v, std::ios::binary);
                if (!in) return Status::InvalidArgument("--response-schema: cannot read '" + v + "'");
                std::ostringstream ss;
                ss << in.rdbuf();
                text = ss.str();
              }
              nlohmann::json j;
              if (!ParseJson(text, &j).ok() || !j.is_object())
                return Status::InvalidArgument("--response-schema: expected a JSON Schema object in '" +
                                               ShortText(v, 80) + "'");
              o.params.response_schema = j.dump();
              return Status::OK();
            }),
      Param("stream", "Use SSE streaming (records first-token latency)", Kind::kBool,
            [](HarvestOptions& o, const std::string& v) { return ParseBool("stream", v, &o.params.stream); }),
      Param("split-think", "Split a leading <think>...</think> out of the answer into the reasoning field",
            Kind::kBool,
            [](HarvestOptions& o, const std::string& v) { return ParseBool("split-think", v, &o.params.split_think); }),
      Int("concurrency", "Maximum requests in flight (adaptive limiter stays at or below)", &HarvestOptions::concurrency),
      Dbl("timeout", "Total time one request may take (connect to last byte), seconds", &HarvestOptions::timeout_s),
      Dbl("idle-timeout", "Longest silence while a request waits for its next byte, seconds (0 = --timeout)",
          &HarvestOptions::idle_timeout_s),
      Str("ca-file", "PEM CA bundle for HTTPS certificate verification", &HarvestOptions::ca_file),
      Flag("insecure", "Skip HTTPS certificate verification (explicit opt-in)", &HarvestOptions::insecure),
      Dbl("rpm", "Requests-per-minute limit (0 = learn from the provider's rate-limit headers)", &HarvestOptions::rpm),
      Dbl("tpm", "Tokens-per-minute limit (0 = learn from the provider's rate-limit headers)", &HarvestOptions::tpm),
      Dbl("itpm", "Input-tokens-per-minute limit, Anthropic ITPM (0 = learn from the headers)", &HarvestOptions::itpm),
      Dbl("otpm", "Output-tokens-per-minute limit, Anthropic OTPM (0 = learn from the headers)", &HarvestOptions::otpm),
      Int("max-attempts", "Error attempts per job before it fails (429s do not count)", &HarvestOptions::max_attempts),
      Int("max-requests", "Stop cleanly after this many requests (0 = no limit)", &HarvestOptions::max_requests),
      Int("max-total-tokens", "Stop cleanly before total tokens would exceed this (0 = no limit)",
          &HarvestOptions::max_total_tokens),
      Dbl("max-cost", "Stop cleanly before the cost would exceed this (needs prices; 0 = no limit)",
          &HarvestOptions::max_cost),
      Dbl("price-input", "Price per million input tokens (cost accounting, --max-cost, the progress line's cost)",
          &HarvestOptions::price_input),
      Dbl("price-output", "Price per million output tokens (cost accounting, --max-cost, the progress line's cost)",
          &HarvestOptions::price_output),
      Dbl("unreachable-timeout", "Seconds an unreachable teacher is retried before the run stops (jobs stay pending)",
          &HarvestOptions::unreachable_timeout_s),
      Dbl("shutdown-timeout", "Seconds to wait for in-flight requests on a graceful stop",
          &HarvestOptions::shutdown_timeout_s),
      NoFlag("no-fail-fast",
             "Do not stop early when the first answers are all the same refusal (404, 400, 422) or the teacher "
             "refuses connections before ever answering",
             &HarvestOptions::fail_fast),
      Flag("reuse",
           "Fill a job from the answer to an identical request (model, messages, parameters, sample) of another "
           "run of this database, without a request (the default; --no-reuse turns it off)",
           &HarvestOptions::reuse),
      NoFlag("no-reuse",
             "Send every request, even when an identical request (model, messages, parameters, sample) was "
             "answered in another run of this database",
             &HarvestOptions::reuse),
      Flag("retry-failed",
           "Return the run's failed jobs to pending (attempts reset, errors kept in history) and harvest them",
           &HarvestOptions::retry_failed),
      Flag("allow-model-change", "Let a resumed run take a new --model, as long as none of its jobs is done yet",
           &HarvestOptions::allow_model_change),
      Str("mode",
          "online (a request per job) or batch (the provider's batch API at batch prices: OpenAI Batch API with "
          "openai-chat, Message Batches with anthropic-messages; give batch prices to --price-input/--price-output). "
          "Stored with the run",
          &HarvestOptions::mode),
      Int("batch-max-rounds", "Batch mode: submission rounds; each resubmits only the jobs still without an answer",
          &HarvestOptions::batch_max_rounds),
      Int("batch-max-requests", "Batch mode: requests per batch at most (0 = the provider's limit: 50000 / 100000)",
          &HarvestOptions::batch_max_requests),
      Int("batch-max-bytes", "Batch mode: bytes per batch input at most (0 = the provider's limit: 200 MB / 256 MB)",
          &HarvestOptions::batch_max_bytes),
      Dbl("batch-poll", "Batch mode: longest wait between two polls of a batch, seconds (polls start at 1 s)",
          &HarvestOptions::batch_poll_s),
      Flag("cancel-batches",
           "Batch mode: ask the provider to cancel the run's open batches, store what they finished, submit nothing "
           "new",
           &HarvestOptions::cancel_batches),
  };
  return kTable;
}

RunSpec HarvestOptions::Spec() const {
  RunSpec spec;
  spec.name = run;
  spec.set = set;
  spec.provider = provider;
  spec.base_urls = base_urls;
  spec.model = model;
  spec.params = params;
  spec.mode = mode;
  return spec;
}

Status HarvestOptions::Validate() const {
  if (set.empty()) return Status::InvalidArgument("--set: a prompt set name is required");
  if (run.empty()) return Status::InvalidArgument("--run: a run name is required");
  if (model.empty()) return Status::InvalidArgument("--model: a teacher model name is required");
  if (base_urls.empty())
    return Status::InvalidArgument("--base-url: a teacher base URL is required (or set OPENAI_BASE_URL)");
  for (const std::string& u : base_urls)
    if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
      return Status::InvalidArgument("--base-url: expected an http:// or https:// URL, got '" + u + "'");
  if (concurrency < 1 || concurrency > 16384) return Status::InvalidArgument("--concurrency: expected 1..16384");
  if (!(timeout_s > 0)) return Status::InvalidArgument("--timeout: expected a positive number of seconds");
  if (!(idle_timeout_s >= 0)) return Status::InvalidArgument("--idle-timeout: expected >= 0 seconds (0 = --timeout)");
  if (rpm < 0) return Status::InvalidArgument("--rpm: expected >= 0");
  if (tpm < 0) return Status::InvalidArgument("--tpm: expected >= 0");
  if (itpm < 0) return Status::InvalidArgument("--itpm: expected >= 0");
  if (otpm < 0) return Status::InvalidArgument("--otpm: expected >= 0");
  if (max_attempts < 1) return Status::InvalidArgument("--max-attempts: expected >= 1");
  if (params.samples < 1 || params.samples > 1000) return Status::InvalidArgument("--samples: expected 1..1000");
  if (params.max_tokens && *params.max_tokens < 1) return Status::InvalidArgument("--max-tokens: expected >= 1");
  if (params.logprobs && (*params.logprobs < 0 || *params.logprobs > 20))
    return Status::InvalidArgument("--logprobs: expected 0..20");
  if (!params.response_schema.empty() && provider == "anthropic-messages")
    return Status::InvalidArgument(
        "--response-schema: not supported with --provider anthropic-messages (its structured-output request, "
        "output_config, is not described in the wire-format reference retort follows); use openai-chat");
  if (max_requests < 0 || max_total_tokens < 0 || max_cost < 0)
    return Status::InvalidArgument("--max-requests/--max-total-tokens/--max-cost: expected >= 0");
  if (max_cost > 0 && price_input <= 0 && price_output <= 0)
    return Status::InvalidArgument("--max-cost: needs --price-input and/or --price-output");
  if (mode != "online" && mode != "batch")
    return Status::InvalidArgument("--mode: expected online or batch, got '" + mode + "'");
  if (mode == "batch") {
    if (batch_max_rounds < 1 || batch_max_rounds > 100) return Status::InvalidArgument("--batch-max-rounds: expected 1..100");
    if (batch_max_requests < 0) return Status::InvalidArgument("--batch-max-requests: expected >= 0 (0 = the provider's limit)");
    if (batch_max_bytes < 0) return Status::InvalidArgument("--batch-max-bytes: expected >= 0 (0 = the provider's limit)");
    if (!(batch_poll_s > 0) || batch_poll_s > 86400)
      return Status::InvalidArgument("--batch-poll: expected seconds in (0, 86400]");
    if (params.stream)
      return Status::InvalidArgument("--stream: batch APIs do not stream (drop --stream with --mode batch)");
    if (base_urls.size() > 1)
      return Status::InvalidArgument("--base-url: batch mode sends to one endpoint (give --base-url once)");
    if (max_cost > 0 || max_total_tokens > 0)
      return Status::InvalidArgument(
          "--max-cost/--max-total-tokens: not enforced with --mode batch (a batch is answered and billed as a "
          "whole); bound what is submitted with --max-requests or --batch-max-requests");
  } else if (cancel_batches) {
    return Status::InvalidArgument("--cancel-batches: only with --mode batch");
  }
  return Status::OK();
}

}  // namespace retort
