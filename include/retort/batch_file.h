// Batch files: a run's pending jobs as an OpenAI batch input file (what `vllm run-batch`, the
// OpenAI cookbook's processor and the OpenAI Batch API read), and that file's output stored
// exactly once. The offline path of a harvest: same run, same jobs, same store, same export.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "retort/log.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

struct BatchFileWriteSummary {
  std::int64_t written = 0;  // lines (= pending jobs) written
  std::int64_t bytes = 0;
};

// Writes every pending job of `run` (an openai-chat run) to `out_path` as one line
// {"custom_id": <job key>, "method": "POST", "url": "/v1/chat/completions", "body": <the request
// an online harvest would send, without streaming>}. Streams: memory does not grow with the
// run. The file appears complete or not at all (written beside it, then renamed).
Result<BatchFileWriteSummary> WriteBatchFile(Store& store, const std::string& run, const std::string& out_path);

struct BatchIngestSummary {
  std::int64_t lines = 0;         // non-blank lines read
  std::int64_t stored = 0;        // answers stored (their jobs are done now)
  std::int64_t already_done = 0;  // lines for jobs done before this file: ignored
  std::int64_t duplicate = 0;     // a second line for a job in this file: ignored
  std::int64_t unknown = 0;       // custom_id of no job of the run
  std::int64_t failed = 0;        // non-retryable HTTP errors (4xx): the job failed, error kept
  std::int64_t left_pending = 0;  // retryable errors, expired or cancelled requests: still pending
  std::int64_t malformed = 0;     // lines that are not batch output lines
  std::vector<std::string> problems;  // the first 20 "file:line: what" reports
};

// Stores the answers of a batch output file (OpenAI BatchRequestOutput lines, as `vllm
// run-batch` and the OpenAI Batch API write them) against the jobs of `run`, exactly once: a
// line for a job that is done is ignored, never overwrites. Commits every 256 lines; takes the
// run lock, so no harvester writes the run meanwhile. A line succeeded iff error is null and
// response.status_code is 200; other 4xx lines fail their job (as online), the rest leave it
// pending. The run becomes done when no job is pending any more.
Result<BatchIngestSummary> IngestBatchFile(Store& store, const std::string& run, const std::string& path,
                                           LogSink* log = nullptr);

}  // namespace retort
