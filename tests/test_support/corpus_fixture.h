// Test helper: builds a prompt set and a run whose jobs are answered by a callback (no teacher).
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "retort/store.h"
#include "store/corpus_json.h"

namespace retort::test {

// A prompt with its key and content hash filled in ("" key = derived from the hash).
inline Prompt MakePrompt(const std::string& key, std::vector<Message> messages, std::string metadata = "") {
  Prompt p;
  p.messages = std::move(messages);
  p.content_hash = ContentHash(p.messages);
  p.key = key.empty() ? "h:" + p.content_hash.substr(0, 16) : key;
  p.metadata_json = std::move(metadata);
  return p;
}

// Answers a job: a response, or nullopt to fail the job permanently.
using Answerer = std::function<std::optional<ResponseRecord>(const Prompt& prompt, int sample)>;

// Inserts `prompts` into set "s", creates run `run` (model "teacher-1", base URL with
// credentials and a query string to check that they never leak) with `samples` samples,
// and applies one kDone/kFailed update per job. `logprobs`: the run's --logprobs K (nullopt:
// harvested without logprobs). Returns the run id.
inline std::int64_t PopulateRun(Store& store, const std::vector<Prompt>& prompts, int samples, const Answerer& answer,
                                const std::string& run = "r", std::optional<int> logprobs = std::nullopt) {
  auto set = store.CreatePromptSet("s");
  REQUIRE(set.ok());
  std::vector<ImportOutcome> out;
  REQUIRE(store.InsertPrompts(*set, prompts, {}, &out).ok());
  RunSpec spec{run, "s", "openai-chat", {"https://user:sekrit@api.example.com:8443/v1?key=sekrit"}, "teacher-1", {}};
  spec.params.samples = samples;
  spec.params.temperature = 0.7;
  spec.params.logprobs = logprobs;
  auto r = store.CreateOrResumeRun(spec);
  REQUIRE(r.ok());
  std::map<std::string, const Prompt*> by_hash;
  for (const Prompt& p : prompts) by_hash[p.content_hash] = &p;
  for (int guard = 0; guard < 100000; ++guard) {
    auto jobs = store.LeaseJobs(r->id, 1000, 0);
    REQUIRE(jobs.ok());
    if (jobs->empty()) break;
    std::vector<JobUpdate> ups;
    for (const LeasedJob& j : *jobs) {
      const Prompt* p = by_hash.at(ContentHash(j.messages));
      std::optional<ResponseRecord> resp = answer(*p, j.sample);
      JobUpdate u;
      u.job_id = j.id;
      if (resp) {
        u.kind = JobUpdate::Kind::kDone;
        u.response = std::move(*resp);
        if (u.response.raw_body.empty()) u.response.raw_body = "{}";
        if (u.response.finish_reason.empty()) u.response.finish_reason = "stop";
        if (u.response.received_at_ms == 0) u.response.received_at_ms = 1767225600000 + j.id * 1000;
      } else {
        u.kind = JobUpdate::Kind::kFailed;
        u.attempts = 1;
        u.error = "HTTP 400";
        u.error_status = 400;
      }
      ups.push_back(std::move(u));
    }
    REQUIRE(store.ApplyJobUpdates(r->id, ups).ok());
  }
  return r->id;
}

inline ResponseRecord Answer(std::string content, std::optional<std::string> reasoning = std::nullopt,
                             std::string finish = "stop") {
  ResponseRecord r;
  r.content = std::move(content);
  r.reasoning = std::move(reasoning);
  r.finish_reason = std::move(finish);
  return r;
}

// Creates `n` prompts "prompt i: tell me about topic i" in set `set`, keys "p00000".., through the Store API.
inline void AddPrompts(Store& store, const std::string& set, int n, int first = 0) {
  auto set_id = store.CreatePromptSet(set);
  REQUIRE(set_id.ok());
  std::vector<Prompt> ps;
  std::vector<std::string> src;
  for (int i = first; i < first + n; ++i) {
    Prompt p;
    p.messages = {Message{"system", "You are terse."}, Message{"user", "prompt " + std::to_string(i) +
                                                                     ": tell me about topic " + std::to_string(i)}};
    p.content_hash = ContentHash(p.messages);
    char key[16];
    std::snprintf(key, sizeof key, "p%05d", i);
    p.key = key;
    ps.push_back(std::move(p));
    src.push_back("test:" + std::to_string(i + 1));
  }
  std::vector<ImportOutcome> out;
  REQUIRE(store.InsertPrompts(*set_id, ps, src, &out).ok());
}

inline std::unique_ptr<Store> OpenStoreAt(const std::string& path) {
  auto s = Store::Open(StoreOptions{path});
  REQUIRE(s.ok());
  return std::move(*s);
}

}  // namespace retort::test
