// SimBatches: the simulator's OpenAI Batch API and Anthropic Message Batches (wire-formats.md §C),
// in compressed time and with batch-level faults.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "retort/clock.h"
#include "sim/sim_answer.h"
#include "sim/simulator.h"

namespace retort {

enum class SimBatchApi { kOpenAI, kAnthropic };

// What the online endpoint would answer for one parsed request.
struct SimBatchAnswer {
  std::string body;  // the non-streaming response body (a JSON object)
  std::int64_t input_tokens = 0, output_tokens = 0, reasoning_tokens = 0;
};

// The batch engine. State is computed lazily from the clock on each request (no background
// thread): a batch created at t0 with C = batch_complete_s
//   OpenAI:    validating [t0, t0+0.1C), in_progress [0.1C, 0.9C) with completed+failed growing
//              linearly from 0 to the total, finalizing [0.9C, C), completed at t0+C;
//   Anthropic: in_progress [t0, t0+C) with requests done linearly, ended at t0+C;
// cut short by expiry (batch_expire_first: at C/2, when half is done; or at batch_window_s if
// that comes first) or by a cancel (cancelling/canceling, then cancelled/ended
// min(0.3 s, C/4) later, with what was done at the cancel). A batch's output is generated once,
// when a request first sees it terminal, and kept. Safe for concurrent use.
class SimBatches {
 public:
  // Checks the API key; on failure it has written the 401 into `res` and returns false.
  using AuthFn = std::function<bool(SimBatchApi, const httplib::Request&, httplib::Response&)>;
  // The online endpoint's answer to `req` (what SimGenerate + the response body builders give).
  using AnswerFn = std::function<SimBatchAnswer(SimBatchApi, const SimRequest&)>;

  // `opts` must have passed Validate(); `clock` is not owned and must outlive this object.
  SimBatches(const SimulatorOptions& opts, Clock* clock, AuthFn auth, AnswerFn answer);
  ~SimBatches();
  SimBatches(const SimBatches&) = delete;
  SimBatches& operator=(const SimBatches&) = delete;

  // The largest request body a batch route accepts (256 MiB); the server's payload limit must
  // be at least this plus room for multipart framing.
  static constexpr std::size_t kMaxBody = std::size_t{256} << 20;

  // Adds the OpenAI routes (/v1/files, /v1/files/{id}, /v1/files/{id}/content, /v1/batches,
  // /v1/batches/{id}, /v1/batches/{id}/cancel) and the Anthropic ones (/v1/messages/batches,
  // /v1/messages/batches/{id}, .../cancel, .../results) to `svr`. Call before the server starts;
  // this object must outlive the server's handlers.
  void Register(httplib::Server& svr);

  // Fills the batch_* counters of `s`.
  void FillStats(SimulatorStats* s) const;

  struct Batch;
  struct File;

 private:
  // Route handlers (each after the auth check).
  void UploadFile(const httplib::Request& req, httplib::Response& res);
  void GetFile(const httplib::Request& req, httplib::Response& res, bool content);
  void CreateOpenAI(const httplib::Request& req, httplib::Response& res);
  void CreateAnthropic(const httplib::Request& req, httplib::Response& res);
  void GetBatch(SimBatchApi api, const httplib::Request& req, httplib::Response& res);
  void ListBatches(SimBatchApi api, const httplib::Request& req, httplib::Response& res);
  void CancelBatch(SimBatchApi api, const httplib::Request& req, httplib::Response& res);
  void Results(const httplib::Request& req, httplib::Response& res);

  std::shared_ptr<Batch> Find(SimBatchApi api, const std::string& id);
  // The batch as JSON at `now`; generates the output when it has just turned terminal.
  // REQUIRES: b.mu held.
  std::string Render(Batch& b, Millis now, const httplib::Request& req);
  // Generates the output of a terminal batch once. REQUIRES: b.mu held (takes mu_ inside).
  void Materialize(Batch& b);
  // Registers a new batch (assigns its id and creation ordinal). Takes mu_.
  void Add(const std::shared_ptr<Batch>& b);
  // True for the first batch_upload_5xx uploads/creates: writes the 503.
  bool UploadFault(SimBatchApi api, httplib::Response& res);
  std::string NextHex();

  const SimulatorOptions opts_;
  Clock* const clock_;
  const AuthFn auth_;
  const AnswerFn answer_;

  mutable std::mutex mu_;  // lock order: a Batch's mu before mu_
  std::map<std::string, std::shared_ptr<const File>> files_;     // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<Batch>> batches_;        // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<Batch>> order_[2];                 // GUARDED_BY(mu_): per API, oldest first
  std::unordered_set<std::string> succeeded_[2];                 // GUARDED_BY(mu_): custom_ids per API
  std::int64_t next_ordinal_ = 0;                                // GUARDED_BY(mu_): batches created, both APIs
  std::int64_t uploads_seen_ = 0;                                // GUARDED_BY(mu_)
  std::int64_t truncated_ = 0;                                   // GUARDED_BY(mu_)

  std::atomic<std::uint64_t> next_hex_{1};
  std::atomic<std::int64_t> files_uploaded_{0}, batches_created_{0}, batch_requests_{0},
      batches_cancelled_{0}, requests_repeated_{0};
};

}  // namespace retort
