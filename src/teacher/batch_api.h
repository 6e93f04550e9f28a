// BatchApi: the adapter between a batch harvest and one provider's batch endpoints (OpenAI
// Batch API, Anthropic Message Batches; wire-formats.md §C): the request file, upload, create,
// poll, list, cancel, results, and what one result line means. Every call is one HTTP request
// bounded in size and time; retries are the caller's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "retort/clock.h"
#include "retort/status.h"
#include "teacher/http_transport.h"

namespace retort {

// A provider batch as last reported.
struct BatchState {
  std::string id;
  std::string status;      // the provider's own word: validating, in_progress, ended, expired, ...
  bool ended = false;      // terminal: results (if any) can be fetched
  bool failed = false;     // rejected as a whole (OpenAI validation failure): no results
  std::string output_file_id, error_file_id;  // OpenAI; "" = none
  std::string counts_json;  // request_counts as sent
  std::string tag;          // the metadata tag retort set at creation ("" = none / not reported)
  std::int64_t total_requests = -1;  // -1 = not reported
  Millis created_at_ms = 0;
  std::string errors;       // validation errors, as text
};

// One line of a result file, classified.
struct BatchResultLine {
  enum class Outcome {
    kSucceeded,  // `body` holds the answer (a chat completion / a message object) as JSON text
    kFailed,     // a permanent refusal of this request (e.g. 400 invalid request): the job fails
    kRetry,      // expired, cancelled, server error, rate limited: the job stays pending
    kMalformed,  // not a result line of this provider
  };
  Outcome outcome = Outcome::kMalformed;
  std::string custom_id;
  std::string body;
  std::string request_id;
  std::string error;  // kFailed / kRetry / kMalformed: why, short
  int status = 0;     // HTTP status of a failed request, 0 = not HTTP
};

// How an API call failed, for the caller's retry decision.
struct BatchCallError {
  Status status;           // OK = the call succeeded
  bool retryable = false;  // 429, 5xx, connection trouble
  double retry_after_s = 0;
};

class BatchApi {
 public:
  virtual ~BatchApi() = default;
  // "openai-chat" or "anthropic-messages".
  virtual std::string_view Provider() const = 0;
  // Documented per-batch limits.
  virtual std::int64_t MaxRequests() const = 0;
  virtual std::int64_t MaxBytes() const = 0;
  // The request file: head, one entry per job (separated by Separator()), tail. OpenAI: JSONL
  // of {"custom_id","method","url","body"}; Anthropic: the create body {"requests":[...]}.
  virtual std::string FileHead() const = 0;
  virtual std::string Entry(const std::string& custom_id, const std::string& request_body) const = 0;
  virtual std::string Separator() const = 0;
  virtual std::string FileTail() const = 0;
  // True when the file is uploaded before the batch is created (OpenAI).
  virtual bool NeedsUpload() const = 0;
  // Uploads the request file; the provider's file id.
  virtual Result<std::string> Upload(const std::string& path, BatchCallError* err) = 0;
  // Creates a batch from the uploaded file (OpenAI) or the file as the body (Anthropic), tagged
  // with `tag` where the provider keeps metadata.
  virtual Result<BatchState> Create(const std::string& file_id, const std::string& path, const std::string& tag,
                                    BatchCallError* err) = 0;
  virtual Result<BatchState> Get(const std::string& batch_id, BatchCallError* err) = 0;
  // Calls `fn` for the provider's batches, newest first, until it returns false or the list ends.
  virtual Status List(const std::function<bool(const BatchState&)>& fn, BatchCallError* err) = 0;
  virtual Result<BatchState> Cancel(const std::string& batch_id, BatchCallError* err) = 0;
  // Writes every result line of an ended batch to `out_path` (OpenAI: the output file, then the
  // error file), streaming. The number of bytes written.
  virtual Result<std::int64_t> Download(const BatchState& b, const std::string& out_path, BatchCallError* err) = 0;
  // What one result line says.
  virtual BatchResultLine Classify(std::string_view line) const = 0;
};

// What one line of an OpenAI batch output or error file says (BatchRequestOutput: succeeded iff
// error is null and response.status_code is 200; other 4xx but 408/409/429 fail the job; the
// rest, expiry and cancellation included, leave it pending).
BatchResultLine ClassifyOpenAIBatchLine(std::string_view line);
// What one line of Message Batches results says (succeeded; errored with invalid_request_error
// fails the job; other errors, canceled and expired leave it pending).
BatchResultLine ClassifyAnthropicBatchLine(std::string_view line);

struct BatchApiOptions {
  std::string provider;  // "openai-chat" | "anthropic-messages"
  TransportOptions transport;  // base_url as the harvest's --base-url
  HeaderList auth_headers;     // the provider's authentication and version headers
};

// InvalidArgument for an unknown provider or a bad URL.
Result<std::unique_ptr<BatchApi>> MakeBatchApi(const BatchApiOptions& opts);

}  // namespace retort
