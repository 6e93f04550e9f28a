// Service: the dashboard's reads — the response browser (keyset pages) and the rate samples.
#include <chrono>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>

#include "service/service.h"

namespace retort {

using nlohmann::json;

namespace {

constexpr int kMaxPageRows = 200;

// A non-negative decimal integer parameter, or InvalidArgument naming it.
Result<std::int64_t> IntParam(const std::string& name, const std::string& v, std::int64_t min, std::int64_t max) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || v[0] == '-' || v[0] == '+' || v[0] == ' ' || n < min || n > max)
    return Status::InvalidArgument(name + ": expected an integer in " + std::to_string(min) + ".." +
                                   std::to_string(max) + ", got '" + v.substr(0, 32) + "'");
  return static_cast<std::int64_t>(n);
}

json Messages(const std::string& stored) {
  json m = json::parse(stored, nullptr, false);
  return m.is_discarded() ? json(stored) : m;
}

json OptInt(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); }

json RowJson(const BrowseRow& r, bool failed) {
  json j = {{"job_id", r.job_id}, {"sample", r.sample}, {"prompt_key", r.prompt_key},
            {"messages", Messages(r.messages_json)}};
  if (failed) {
    j["state"] = "failed";
    j["error"] = r.error;
    j["http_status"] = r.error_status;
    j["attempts"] = r.attempts;
    return j;
  }
  j["state"] = "done";
  j["content"] = r.content;
  j["reasoning"] = r.reasoning ? json(*r.reasoning) : json(nullptr);
  j["finish_reason"] = r.finish_reason;
  j["tokens"] = {{"prompt", OptInt(r.prompt_tokens)},
                 {"completion", OptInt(r.completion_tokens)},
                 {"reasoning", OptInt(r.reasoning_tokens)}};
  j["latency_ms"] = r.latency_ms;
  j["http_status"] = r.http_status;
  j["received_at_ms"] = r.received_at_ms;
  return j;
}

json SampleJson(const RunSample& s) {
  return {{"t_ms", s.t_ms},
          {"requests_per_s", s.requests_per_s},
          {"tokens_per_s", s.tokens_per_s},
          {"rate_limited", s.rate_limited},
          {"failed", s.failed},
          {"retried", s.retried},
          {"done", s.done},
          {"in_flight", s.in_flight},
          {"concurrency_limit", s.concurrency_limit},
          {"governor_rpm", s.governor_rpm},
          {"governor_tpm", s.governor_tpm}};
}

}  // namespace

Result<json> Service::ListResponses(const std::string& name, const QueryParams& params) {
  BrowseQuery q;
  for (const auto& [k, v] : params) {
    if (k == "status") {
      if (v != "done" && v != "failed") return Status::InvalidArgument("status: expected done or failed");
      q.failed = v == "failed";
    } else if (k == "after") {
      Result<std::int64_t> n = IntParam(k, v, 0, INT64_MAX);
      if (!n.ok()) return n.status();
      q.after_job_id = *n;
    } else if (k == "limit") {
      Result<std::int64_t> n = IntParam(k, v, 1, kMaxPageRows);
      if (!n.ok()) return n.status();
      q.limit = static_cast<int>(*n);
    } else if (k == "finish_reason") {
      if (v.size() > 64) return Status::InvalidArgument("finish_reason: at most 64 characters");
      q.finish_reason = v;
    } else if (k == "q") {
      if (v.size() > 1000) return Status::InvalidArgument("q: at most 1000 characters");
      q.text = v;
    } else {
      return Status::InvalidArgument(k.substr(0, 64) + ": unknown query parameter");
    }
  }
  Result<RunInfo> run = store_->GetRun(name);
  if (!run.ok()) return run.status();
  Result<BrowsePage> page = store_->BrowseResponses(run->id, q);
  if (!page.ok()) return page.status();
  json rows = json::array();
  for (const BrowseRow& r : page->rows) rows.push_back(RowJson(r, q.failed));
  return json{{"responses", rows},
              {"next_after", page->next_after > 0 ? json(page->next_after) : json(nullptr)},
              {"scanned", page->scanned}};
}

Result<json> Service::GetResponse(const std::string& name, const std::string& job_id) {
  Result<std::int64_t> id = IntParam("job_id", job_id, 1, INT64_MAX);
  if (!id.ok()) return Status::NotFound("no response with job id '" + job_id.substr(0, 32) + "'");
  Result<RunInfo> run = store_->GetRun(name);
  if (!run.ok()) return run.status();
  std::string raw;
  Result<BrowseRow> r = store_->GetResponse(run->id, *id, &raw);
  if (!r.ok()) return r.status();
  json j = RowJson(*r, false);
  j["raw_body"] = raw;
  return j;
}

Result<json> Service::GetRunSamples(const std::string& name, const QueryParams& params) {
  Millis since = 0;
  for (const auto& [k, v] : params) {
    if (k != "since") return Status::InvalidArgument(k.substr(0, 64) + ": unknown query parameter");
    Result<std::int64_t> n = IntParam(k, v, 0, INT64_MAX);
    if (!n.ok()) return n.status();
    since = *n;
  }
  if (Result<RunInfo> run = store_->GetRun(name); !run.ok()) return run.status();
  json samples = json::array();
  if (RunController* ctrl = FindController(name))
    for (const RunSample& s : ctrl->samples().Since(since)) samples.push_back(SampleJson(s));
  return json{{"interval_ms", opts_.sample_interval_ms}, {"samples", samples}};
}

void Service::SampleLoop() {
  const auto interval = std::chrono::milliseconds(std::max(10, opts_.sample_interval_ms));
  std::unique_lock lk(sampler_mu_);
  while (!sampler_stop_) {
    sampler_cv_.wait_for(lk, interval, [this] { return sampler_stop_; });
    if (sampler_stop_) break;
    lk.unlock();
    std::vector<RunController*> ctrls;
    {
      std::lock_guard runs_lk(mu_);
      for (auto& [n, c] : runs_) ctrls.push_back(c.get());
    }
    const Millis now = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    for (RunController* c : ctrls) {
      if (!c->active()) continue;
      const HarvestProgress p = c->Progress();
      RunSample s;
      s.t_ms = now;
      s.requests_per_s = p.requests_per_s;
      s.tokens_per_s = p.tokens_per_s;
      s.rate_limited = c->metrics().requests("rate_limited");
      s.failed = c->metrics().requests("failed");
      s.retried = c->metrics().requests("retried");
      s.done = p.done;
      s.in_flight = p.in_flight;
      s.concurrency_limit = p.concurrency_limit;
      s.governor_rpm = p.rpm_effective;
      s.governor_tpm = p.tpm_effective;
      c->samples().Add(s);
    }
    lk.lock();
  }
}

}  // namespace retort
