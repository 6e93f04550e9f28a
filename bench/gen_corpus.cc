// retort_bench_gen: synthetic inputs for bench/import_export.sh (prompt JSONL, a DB of responses).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "retort/store.h"
#include "store/corpus_json.h"

using namespace retort;

namespace {

// Deterministic filler text of about `n` bytes, varied by `seed`.
std::string Text(std::uint64_t seed, size_t n) {
  static const char* kWords[] = {"the", "model", "answers", "question", "with", "a", "short", "explanation",
                                 "of", "why", "gradient", "descent", "converges", "when", "step", "small"};
  std::string s;
  std::uint64_t x = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  while (s.size() < n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    s += kWords[(x >> 33) % 16];
    s += (x >> 40) % 13 == 0 ? ".\n" : " ";
  }
  return s + std::to_string(seed);
}

int Prompts(long n, const char* path) {
  std::FILE* f = std::fopen(path, "wb");
  if (!f) return 1;
  for (long i = 0; i < n; ++i) {
    std::string line = "{\"id\":\"q" + std::to_string(i) + "\",\"messages\":[{\"role\":\"system\",\"content\":\"Be helpful.\"},"
                       "{\"role\":\"user\",\"content\":\"" + Text(i, 150) + "\"}],\"metadata\":{\"n\":" +
                       std::to_string(i) + "}}\n";
    // Text() never produces quotes or backslashes; newlines must be escaped.
    for (size_t p = 0; (p = line.find('\n', p)) != std::string::npos && p + 1 < line.size(); p += 2) line.replace(p, 1, "\\n");
    std::fputs(line.c_str(), f);
  }
  return std::fclose(f) == 0 ? 0 : 1;
}

// `near_dup_every` > 0: every that many-th answer is the previous job's answer with one word
// appended (a planted near-duplicate for bench/near_dup.sh).
int Responses(const char* db, long n, long near_dup_every = 0) {
  auto store = Store::Open(StoreOptions{db});
  if (!store.ok()) return std::fprintf(stderr, "%s\n", store.status().ToString().c_str()), 1;
  Store& s = **store;
  auto set = s.CreatePromptSet("bench");
  if (!set.ok()) return 1;
  for (long start = 0; start < n; start += 10000) {
    std::vector<Prompt> ps;
    for (long i = start; i < std::min(n, start + 10000); ++i) {
      Prompt p;
      p.messages = {{"system", "Be helpful."}, {"user", Text(i, 150)}};
      p.content_hash = ContentHash(p.messages);
      p.key = "q" + std::to_string(i);
      p.metadata_json = "{\"n\":" + std::to_string(i) + "}";
      ps.push_back(std::move(p));
    }
    std::vector<ImportOutcome> out;
    if (!s.InsertPrompts(*set, ps, {}, &out).ok()) return 1;
  }
  RunSpec spec{"bench", "bench", "openai-chat", {"http://127.0.0.1:9/v1"}, "bench-teacher", {}};
  auto run = s.CreateOrResumeRun(spec);
  if (!run.ok()) return std::fprintf(stderr, "%s\n", run.status().ToString().c_str()), 1;
  for (int guard = 0; guard < 100000; ++guard) {
    auto jobs = s.LeaseJobs(run->id, 5000, 0);
    if (!jobs.ok()) return 1;
    if (jobs->empty()) break;
    std::vector<JobUpdate> ups;
    for (const LeasedJob& j : *jobs) {
      JobUpdate u;
      u.job_id = j.id;
      const bool dup = near_dup_every > 0 && j.id > 1 && j.id % near_dup_every == 0;
      u.response.content = dup ? Text((j.id - 1) * 7919, 900) + " indeed" : Text(j.id * 7919, 900);
      u.response.raw_body = "{}";
      u.response.finish_reason = "stop";
      u.response.received_at_ms = 1767225600000 + j.id;
      ups.push_back(std::move(u));
    }
    if (!s.ApplyJobUpdates(run->id, ups).ok()) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "prompts") return Prompts(std::atol(argv[2]), argv[3]);
  if (argc == 4 && std::string(argv[1]) == "responses") return Responses(argv[2], std::atol(argv[3]));
  if (argc == 5 && std::string(argv[1]) == "responses")
    return Responses(argv[2], std::atol(argv[3]), std::atol(argv[4]));
  std::fprintf(stderr, "usage: retort_bench_gen prompts N FILE | responses DB N [NEAR_DUP_EVERY]\n");
  return 2;
}
