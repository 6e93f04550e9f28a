// Service: runs, prompt-set listing, metrics and the shutdown/resume cycle of `retort serve`.
#include "service/service.h"

#include "service/export_jobs.h"
#include "service/run_request.h"

namespace retort {

using nlohmann::json;

bool ValidResourceName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

namespace {

Status CheckResumable(const RunInfo& run) {
  if (run.state == RunState::kDone) return Status::FailedPrecondition("run '" + run.spec.name + "' is done");
  if (run.state == RunState::kCancelled)
    return Status::FailedPrecondition("run '" + run.spec.name + "' was cancelled");
  return Status::OK();
}

}  // namespace

Service::Service(const ServiceOptions& opts)
    : opts_(opts), log_(opts.log ? opts.log : NullLogSink()), exports_(std::make_unique<ExportJobs>()) {}

Service::~Service() { Shutdown(); }

Result<std::unique_ptr<Service>> Service::Open(const ServiceOptions& opts) {
  std::unique_ptr<Service> svc(new Service(opts));
  StoreOptions so;
  so.path = opts.db;
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok()) return store.status();
  svc->store_ = std::move(*store);
  svc->sampler_ = std::thread([s = svc.get()] { s->SampleLoop(); });
  Result<std::vector<RunInfo>> runs = svc->store_->ListRuns();
  if (!runs.ok()) return runs.status();
  for (const RunInfo& r : *runs) {
    const bool was_harvesting = r.state == RunState::kRunning ||
                                (r.state == RunState::kPaused && r.stop_reason == kServerShutdownReason);
    if (!was_harvesting) continue;
    Status st = svc->ResumeSaved(r);
    if (st.ok()) {
      svc->log_->Write(LogLine{LogLevel::kInfo, r.spec.name, 0, 0, "resuming: the run was harvesting when the server stopped"});
    } else {
      svc->log_->Write(LogLine{LogLevel::kWarn, r.spec.name, 0, 0, "not resumed: " + st.message()});
    }
  }
  return svc;
}

// The options to carry on a run started over the API with: those it was started with, less
// retry_failed (it returned the failed jobs to pending at the start; a resume, over the API or
// after a restart, leaves jobs that failed since then failed), if the allow-lists, which the
// operator may have narrowed since, still allow them. REQUIRES: mu_ not held.
Result<HarvestOptions> Service::SavedOptions(const RunInfo& run) {
  Result<std::string> saved = store_->LoadRunOptions(run.id);
  if (!saved.ok()) {
    if (saved.status().code() == StatusCode::kNotFound)
      return Status::FailedPrecondition("run '" + run.spec.name +
                                        "' was not started by retort serve; start it with POST /v1/runs");
    return saved.status();
  }
  Result<json> j = ParseJsonObjectBody(*saved);
  if (!j.ok()) return Status::Corruption("saved options of run '" + run.spec.name + "': " + j.status().message());
  Result<HarvestOptions> o = HarvestOptionsFromJson(*j);
  if (!o.ok()) return o.status().WithContext("saved options of run '" + run.spec.name + "'");
  o->retry_failed = false;
  RETORT_RETURN_IF_ERROR(opts_.policy.CheckRun(*o));
  return o;
}

// Creates (or reconfigures) the run's controller from its saved options and starts it.
// REQUIRES: mu_ not held.
Status Service::ResumeSaved(const RunInfo& run) {
  Result<HarvestOptions> o = SavedOptions(run);
  if (!o.ok()) return o.status();
  std::lock_guard lk(mu_);
  if (shut_down_) return Status::Unavailable("the server is shutting down");
  auto& ctrl = runs_[run.spec.name];
  if (!ctrl) {
    ctrl = std::make_unique<RunController>(store_.get(), *o, log_);
  } else {
    RETORT_RETURN_IF_ERROR(ctrl->Reconfigure(*o));
  }
  return ctrl->Start();
}

RunController* Service::FindController(const std::string& name) {
  std::lock_guard lk(mu_);
  auto it = runs_.find(name);
  return it == runs_.end() ? nullptr : it->second.get();
}

// ---- prompt sets -------------------------------------------------------------------------

namespace {
json SetJson(const PromptSetInfo& s) {
  return {{"name", s.name}, {"prompts", s.prompts}, {"created_at_ms", s.created_at_ms}};
}
}  // namespace

Result<json> Service::ListPromptSets() {
  Result<std::vector<PromptSetInfo>> sets = store_->ListPromptSets();
  if (!sets.ok()) return sets.status();
  json arr = json::array();
  for (const PromptSetInfo& s : *sets) arr.push_back(SetJson(s));
  return json{{"prompt_sets", arr}};
}

Result<json> Service::GetPromptSet(const std::string& name) {
  Result<PromptSetInfo> s = store_->GetPromptSet(name);
  if (!s.ok()) return s.status();
  return SetJson(*s);
}

// ---- runs --------------------------------------------------------------------------------

Result<RunTotals> Service::PollTotals(const RunInfo& run) {
  Result<JobCounts> counts = job_counts_.Get(run, [&] { return store_->CountJobs(run.id); });
  if (!counts.ok()) return counts.status();
  Result<RunTotals> t = store_->ResponseTotals(run.id);
  if (t.ok()) t->jobs = *counts;
  return t;
}

json Service::RunJson(const RunInfo& run, RunController* ctrl) {
  json j;
  j["name"] = run.spec.name;
  j["set"] = run.spec.set;
  j["provider"] = run.spec.provider;
  j["model"] = run.spec.model;
  j["base_urls"] = run.spec.base_urls;
  const std::string activity = ctrl ? ctrl->activity() : "";
  j["state"] = activity.empty() ? RunStateName(run.state) : activity;
  j["stored_state"] = RunStateName(run.state);
  j["stop_reason"] = run.stop_reason;
  j["harvesting"] = !activity.empty();
  j["created_at_ms"] = run.created_at_ms;
  j["updated_at_ms"] = run.updated_at_ms;
  Result<RunTotals> t = PollTotals(run);
  if (t.ok()) {
    j["jobs"] = {{"pending", t->jobs.pending}, {"leased", t->jobs.leased}, {"done", t->jobs.done},
                 {"failed", t->jobs.failed},   {"total", t->jobs.total()}};
    j["tokens"] = {{"prompt", t->prompt_tokens}, {"completion", t->completion_tokens}, {"reasoning", t->reasoning_tokens}};
    j["bytes_stored"] = t->response_bytes;
  }
  json errors = json::array();
  if (ctrl) {
    HarvestProgress p = ctrl->Progress();
    j["requests"] = {{"total", p.requests},
                     {"ok", ctrl->metrics().requests("ok")},
                     {"retried", ctrl->metrics().requests("retried")},
                     {"rate_limited", ctrl->metrics().requests("rate_limited")},
                     {"failed", ctrl->metrics().requests("failed")}};
    j["rates"] = {{"requests_per_s", p.requests_per_s}, {"tokens_per_s", p.tokens_per_s},
                  {"governor_rpm", p.rpm_effective},    {"governor_tpm", p.tpm_effective}};
    j["in_flight"] = p.in_flight;
    j["concurrency_limit"] = p.concurrency_limit;
    j["elapsed_s"] = p.elapsed_s;
    j["cost"] = p.cost;
    const double max_cost = ctrl->max_cost();
    if (max_cost > 0) j["max_cost"] = max_cost;
    else j["max_cost"] = nullptr;
    if (p.eta_s >= 0) j["eta_s"] = p.eta_s;
    else j["eta_s"] = nullptr;
    Status last = ctrl->last_status();
    if (!last.ok()) errors.push_back({{"code", StatusCodeName(last.code())}, {"message", last.message()}});
    if (!p.last_error.empty()) errors.push_back({{"code", "teacher_error"}, {"message", p.last_error}});
  } else {
    j["eta_s"] = nullptr;
    j["max_cost"] = nullptr;
  }
  Result<std::vector<FailedJobInfo>> failures = store_->RecentFailures(run.id, 5);
  if (failures.ok())
    for (const FailedJobInfo& f : *failures)
      errors.push_back({{"code", "job_failed"},
                        {"job_id", f.job_id},
                        {"prompt_key", f.prompt_key},
                        {"sample", f.sample},
                        {"http_status", f.error_status},
                        {"message", f.error}});
  j["last_errors"] = errors;
  return j;
}

Result<json> Service::StartRun(const std::string& body) {
  Result<RunRequest> req = ParseRunRequest(body);
  if (!req.ok()) return req.status();
  const HarvestOptions* o = &req->options;
  RETORT_RETURN_IF_ERROR(opts_.policy.CheckRun(*o));
  if (Result<PromptSetInfo> set = store_->GetPromptSet(o->set); !set.ok()) {
    if (set.status().code() == StatusCode::kNotFound)
      return Status::NotFound("set: no prompt set named '" + o->set + "'");
    return set.status();
  }
  std::lock_guard lk(mu_);
  if (shut_down_) return Status::Unavailable("the server is shutting down");
  auto it = runs_.find(o->run);
  if (it != runs_.end() && it->second->active())
    return Status::FailedPrecondition("run '" + o->run + "' is already harvesting");
  if (Result<RunInfo> existing = store_->GetRun(o->run); existing.ok()) {
    // A done run with failed jobs starts again only to retry them (as `retort harvest
    // --retry-failed` does). Its jobs are counted only then.
    bool retry_done = false;
    if (existing->state == RunState::kDone && o->retry_failed) {
      Result<JobCounts> counts = store_->CountJobs(existing->id);
      retry_done = counts.ok() && counts->failed > 0;
    }
    if (!retry_done) RETORT_RETURN_IF_ERROR(CheckResumable(*existing));
  }
  // Creates the run and its jobs now, so conflicts are answered synchronously.
  Result<RunInfo> run = store_->CreateOrResumeRun(o->Spec());
  if (!run.ok()) return run.status();
  RETORT_RETURN_IF_ERROR(store_->SaveRunOptions(run->id, req->body.dump()));
  if (it == runs_.end()) {
    it = runs_.emplace(o->run, std::make_unique<RunController>(store_.get(), *o, log_)).first;
  } else {
    RETORT_RETURN_IF_ERROR(it->second->Reconfigure(*o));
  }
  RETORT_RETURN_IF_ERROR(it->second->Start());
  log_->Write(LogLine{LogLevel::kInfo, o->run, 0, 0, "run started over the API"});
  Result<RunInfo> fresh = store_->GetRun(o->run);
  return RunJson(fresh.ok() ? *fresh : *run, it->second.get());
}

Result<json> Service::ListRuns() {
  Result<std::vector<RunInfo>> runs = store_->ListRuns();
  if (!runs.ok()) return runs.status();
  json arr = json::array();
  for (const RunInfo& r : *runs) arr.push_back(RunJson(r, FindController(r.spec.name)));
  return json{{"runs", arr}};
}

Result<json> Service::GetRun(const std::string& name) {
  Result<RunInfo> r = store_->GetRun(name);
  if (!r.ok()) return r.status();
  return RunJson(*r, FindController(name));
}

Result<json> Service::PauseRun(const std::string& name) {
  Result<RunInfo> r = store_->GetRun(name);
  if (!r.ok()) return r.status();
  RunController* ctrl = FindController(name);
  if (!ctrl) return Status::FailedPrecondition("run '" + name + "' is not harvesting (state " + RunStateName(r->state) + ")");
  RETORT_RETURN_IF_ERROR(ctrl->Pause(opts_.settle_wait_ms));
  log_->Write(LogLine{LogLevel::kInfo, name, 0, 0, "paused over the API"});
  return GetRun(name);
}

Result<json> Service::ResumeRun(const std::string& name) {
  Result<RunInfo> r = store_->GetRun(name);
  if (!r.ok()) return r.status();
  RETORT_RETURN_IF_ERROR(CheckResumable(*r));
  if (RunController* ctrl = FindController(name); ctrl && ctrl->active())
    return Status::FailedPrecondition("run '" + name + "' is already harvesting");
  RETORT_RETURN_IF_ERROR(ResumeSaved(*r));
  log_->Write(LogLine{LogLevel::kInfo, name, 0, 0, "resumed over the API"});
  return GetRun(name);
}

Result<json> Service::CancelRun(const std::string& name) {
  Result<RunInfo> r = store_->GetRun(name);
  if (!r.ok()) return r.status();
  RETORT_RETURN_IF_ERROR(CheckResumable(*r));
  RunController* ctrl = FindController(name);
  if (!ctrl && r->spec.mode == "batch") {
    // A batch run this process has not harvested (paused before a restart): its saved options
    // reach the provider to cancel its open batches (when the allow-lists no longer allow
    // them, it is only marked cancelled).
    if (Result<HarvestOptions> o = SavedOptions(*r); o.ok()) {
      std::lock_guard lk(mu_);
      auto& c = runs_[name];
      if (!c) c = std::make_unique<RunController>(store_.get(), *o, log_);
      ctrl = c.get();
    }
  }
  if (ctrl && !ctrl->active() && r->spec.mode == "batch" && ctrl->StartCancelBatches().ok()) {
    // A paused batch run: its open batches are cancelled at the provider, what they finished is
    // stored, then the run is cancelled (by the harvest thread).
    ctrl->WaitIdle(opts_.settle_wait_ms);
    log_->Write(LogLine{LogLevel::kInfo, name, 0, 0, "cancelling over the API: its open batches first"});
    return GetRun(name);
  }
  Status st = ctrl ? ctrl->Cancel(opts_.settle_wait_ms) : Status::FailedPrecondition("idle");
  if (!st.ok()) {
    if (ctrl && ctrl->active()) return st;  // already cancelling
    RETORT_RETURN_IF_ERROR(store_->SetRunState(r->id, RunState::kCancelled, "cancelled by request"));
  }
  log_->Write(LogLine{LogLevel::kInfo, name, 0, 0, "cancelled over the API"});
  return GetRun(name);
}

// ---- metrics -----------------------------------------------------------------------------

std::string Service::MetricsText() {
  Result<std::vector<RunInfo>> runs = store_->ListRuns();
  std::vector<RunInfo> all = runs.ok() ? *runs : std::vector<RunInfo>{};
  struct Row {
    const RunInfo* run;
    RunController* ctrl;
    RunTotals totals;
    HarvestProgress progress;
  };
  std::vector<Row> rows;
  for (const RunInfo& r : all) {
    Row row{&r, FindController(r.spec.name), {}, {}};
    Result<RunTotals> t = PollTotals(r);
    if (t.ok()) row.totals = *t;
    if (row.ctrl) row.progress = row.ctrl->Progress();
    rows.push_back(std::move(row));
  }
  using T = retort::MetricsText::Type;
  retort::MetricsText m;
  m.Family("retort_requests_total", T::kCounter, "Teacher requests by outcome (ok, retried, rate_limited, failed).");
  for (const Row& r : rows)
    if (r.ctrl)
      for (const char* o : RunMetrics::Outcomes())
        m.Sample({{"run", r.run->spec.name}, {"outcome", o}}, static_cast<double>(r.ctrl->metrics().requests(o)));
  m.Family("retort_jobs", T::kGauge, "Jobs of the run by state (pending, leased, done, failed).");
  for (const Row& r : rows) {
    const JobCounts& c = r.totals.jobs;
    for (auto [state, n] : {std::pair{"pending", c.pending}, {"leased", c.leased}, {"done", c.done}, {"failed", c.failed}})
      m.Sample({{"run", r.run->spec.name}, {"state", state}}, static_cast<double>(n));
  }
  m.Family("retort_run_state", T::kGauge, "1 for the run's current state.");
  for (const Row& r : rows) {
    std::string activity = r.ctrl ? r.ctrl->activity() : "";
    m.Sample({{"run", r.run->spec.name}, {"state", activity.empty() ? RunStateName(r.run->state) : activity}}, 1);
  }
  m.Family("retort_prompt_tokens_total", T::kCounter, "Prompt tokens of the run's stored responses.");
  for (const Row& r : rows) m.Sample({{"run", r.run->spec.name}}, static_cast<double>(r.totals.prompt_tokens));
  m.Family("retort_completion_tokens_total", T::kCounter, "Completion tokens of the run's stored responses.");
  for (const Row& r : rows) m.Sample({{"run", r.run->spec.name}}, static_cast<double>(r.totals.completion_tokens));
  m.Family("retort_stored_response_bytes", T::kGauge, "Bytes of the run's stored raw response bodies.");
  for (const Row& r : rows) m.Sample({{"run", r.run->spec.name}}, static_cast<double>(r.totals.response_bytes));
  m.Family("retort_request_duration_seconds", T::kHistogram, "Latency of teacher requests, seconds.");
  for (const Row& r : rows)
    if (r.ctrl) m.HistogramSample({{"run", r.run->spec.name}}, r.ctrl->metrics().latency());
  m.Family("retort_requests_in_flight", T::kGauge, "Teacher requests in flight now.");
  for (const Row& r : rows)
    if (r.ctrl) m.Sample({{"run", r.run->spec.name}}, static_cast<double>(r.progress.in_flight));
  m.Family("retort_concurrency_limit", T::kGauge, "Current adaptive concurrency limit (sum over replicas).");
  for (const Row& r : rows)
    if (r.ctrl) m.Sample({{"run", r.run->spec.name}}, r.progress.concurrency_limit);
  m.Family("retort_governor_requests_per_minute", T::kGauge, "Current governor request rate limit (0 = unlimited).");
  for (const Row& r : rows)
    if (r.ctrl) m.Sample({{"run", r.run->spec.name}}, r.progress.rpm_effective);
  m.Family("retort_governor_tokens_per_minute", T::kGauge, "Current governor token rate limit (0 = unlimited).");
  for (const Row& r : rows)
    if (r.ctrl) m.Sample({{"run", r.run->spec.name}}, r.progress.tpm_effective);
  return m.text();
}

// ---- shutdown ----------------------------------------------------------------------------

void Service::Shutdown() {
  std::vector<RunController*> ctrls;
  {
    std::lock_guard lk(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    for (auto& [name, c] : runs_) ctrls.push_back(c.get());
  }
  {
    std::lock_guard lk(sampler_mu_);
    sampler_stop_ = true;
  }
  sampler_cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
  for (RunController* c : ctrls) c->RequestShutdown();  // all stop at once
  for (RunController* c : ctrls)
    for (int i = 0; i < 600 && !c->WaitIdle(1000); ++i)  // bounded by the harvest's shutdown timeout
      log_->Write(LogLine{LogLevel::kInfo, "", 0, 0, "waiting for runs to pause"});
  exports_->Shutdown();
  log_->Write(LogLine{LogLevel::kInfo, "", 0, 0, "every harvesting run is paused; it resumes when the server starts"});
}

}  // namespace retort
