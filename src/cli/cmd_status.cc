// retort status: the state of every run (or one), readable while a harvest is running.
#include <nlohmann/json.hpp>

#include "cli/cli_support.h"
#include "cli/commands.h"
#include "retort/store.h"

namespace retort::cli {

namespace {

struct StatusFlags {
  std::string db;
  std::string run;
  bool json = false;
};

Result<nlohmann::json> RunJson(Store& store, const RunInfo& r) {
  Result<RunTotals> t = store.Totals(r.id);
  if (!t.ok()) return t.status();
  Result<std::vector<FailedJobInfo>> fails = store.RecentFailures(r.id, 5);
  if (!fails.ok()) return fails.status();
  const bool live = !r.lock_owner.empty() && SystemClock()->WallMs() - r.lock_heartbeat_ms < 30'000 &&
                    RunLockHolderAlive(r.lock_owner);
  nlohmann::json errors = nlohmann::json::array();
  for (const FailedJobInfo& f : *fails)
    errors.push_back({{"job", f.job_id}, {"prompt", f.prompt_key}, {"sample", f.sample}, {"error", f.error},
                      {"http_status", f.error_status}});
  nlohmann::json urls = nlohmann::json::array();
  return nlohmann::json{
      {"run", r.spec.name},
      {"set", r.spec.set},
      {"state", RunStateName(r.state)},
      {"harvesting_now", live},
      {"stop_reason", r.stop_reason},
      {"provider", r.spec.provider},
      {"model", r.spec.model},
      {"jobs",
       {{"total", t->jobs.total()},
        {"pending", t->jobs.pending},
        {"leased", t->jobs.leased},
        {"done", t->jobs.done},
        {"failed", t->jobs.failed}}},
      {"tokens",
       {{"prompt", t->prompt_tokens}, {"completion", t->completion_tokens}, {"reasoning", t->reasoning_tokens}}},
      {"response_bytes", t->response_bytes},
      {"recent_errors", errors}};
}

int RunStatus(const StatusFlags& f) {
  StoreOptions so;
  so.path = f.db;
  so.read_only = true;
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok()) return ReportError(store.status());
  std::vector<RunInfo> runs;
  if (!f.run.empty()) {
    Result<RunInfo> r = (*store)->GetRun(f.run);
    if (!r.ok()) return ReportError(r.status());
    runs.push_back(*r);
  } else {
    Result<std::vector<RunInfo>> all = (*store)->ListRuns();
    if (!all.ok()) return ReportError(all.status());
    runs = *all;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const RunInfo& r : runs) {
    Result<nlohmann::json> j = RunJson(**store, r);
    if (!j.ok()) return ReportError(j.status());
    out.push_back(*j);
  }
  if (f.json) {
    std::printf("%s\n", (f.run.empty() ? out : out[0]).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  if (runs.empty()) std::printf("no runs in %s\n", f.db.c_str());
  for (const auto& j : out) {
    const auto& jobs = j["jobs"];
    std::printf("%s  [%s%s]  set=%s model=%s\n", j["run"].get<std::string>().c_str(),
                j["state"].get<std::string>().c_str(), j["harvesting_now"].get<bool>() ? ", harvesting now" : "",
                j["set"].get<std::string>().c_str(), j["model"].get<std::string>().c_str());
    std::printf("  jobs: %lld done, %lld failed, %lld pending, %lld in flight, %lld total\n",
                jobs["done"].get<long long>(), jobs["failed"].get<long long>(), jobs["pending"].get<long long>(),
                jobs["leased"].get<long long>(), jobs["total"].get<long long>());
    std::printf("  tokens: %lld prompt, %lld completion (%lld reasoning)\n",
                j["tokens"]["prompt"].get<long long>(), j["tokens"]["completion"].get<long long>(),
                j["tokens"]["reasoning"].get<long long>());
    if (!j["stop_reason"].get<std::string>().empty())
      std::printf("  stopped: %s\n", j["stop_reason"].get<std::string>().c_str());
    for (const auto& e : j["recent_errors"])
      std::printf("  error: job %lld (prompt %s): %s\n", e["job"].get<long long>(),
                  e["prompt"].get<std::string>().c_str(), e["error"].get<std::string>().c_str());
  }
  return 0;
}

}  // namespace

void AddStatusCommand(CLI::App& app, int& rc) {
  auto* sub = app.add_subcommand("status", "Report the state of runs (also while a harvest is running)");
  auto f = std::make_shared<StatusFlags>();
  sub->add_option("--db", f->db, "Corpus database")->required();
  sub->add_option("--run", f->run, "Only this run");
  sub->add_flag("--json", f->json, "Print JSON");
  sub->callback([f, &rc] { rc = RunStatus(*f); });
}

}  // namespace retort::cli
