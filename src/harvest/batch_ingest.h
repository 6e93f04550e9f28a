// Storing a batch result file exactly once: shared by `retort batch-file ingest` (vLLM
// run-batch output) and batch harvests (OpenAI Batch API, Anthropic Message Batches).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "retort/batch_file.h"
#include "retort/log.h"
#include "retort/status.h"
#include "retort/store.h"
#include "teacher/batch_api.h"
#include "teacher/provider.h"

namespace retort {

// Stores the lines of `path`, each read by `classify`, against the jobs of `run`: a success
// makes its job done (never overwriting one that is done), a permanent refusal fails it, the
// rest leave it pending. Commits every 256 lines; calls `heartbeat` (may be empty) every 2 s.
// The caller holds the run lock. `replica` labels the stored responses.
Result<BatchIngestSummary> IngestResultFile(Store& store, const RunInfo& run, const Provider& provider,
                                            const std::string& path,
                                            const std::function<BatchResultLine(std::string_view line)>& classify,
                                            const std::string& replica, LogSink* log,
                                            const std::function<Status()>& heartbeat);

// The request body an online harvest would send for `job` of `run` (never streamed, one choice;
// with --seed and several samples, sample i sends seed + i): what a batch line carries.
Result<std::string> BatchRequestBody(const Provider& provider, const RunInfo& run, const LeasedJob& job);

}  // namespace retort
