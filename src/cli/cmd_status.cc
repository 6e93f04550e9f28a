// retort status: the state of every run (or one), readable while a harvest is running.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/cli_support.h"
#include "cli/commands.h"
#include "harvest/config_file.h"
#include "retort/harvester.h"
#include "retort/store.h"
#include "retort/verify.h"

namespace retort::cli {

namespace {

struct StatusFlags {
  std::string db;
  std::string run;
  bool json = false;
  std::string config;        // a harvest config file: its price-input / price-output are used
  double price_input = -1;   // per million tokens; -1 = not given
  double price_output = -1;
  ExportOptions verify;      // --verify METHOD (with --run): pass@1, pass@n and rejections; verify.verify "" = off
};

// Prices per million tokens from --price-* or the config file (flags win). No built-in list.
Status ResolvePrices(StatusFlags& f) {
  if (f.config.empty()) return Status::OK();
  Result<std::vector<ConfigEntry>> entries = ParseConfigFile(f.config);
  if (!entries.ok()) return entries.status();
  for (const ConfigEntry& e : *entries) {
    double* target = e.key == "price-input" ? &f.price_input : e.key == "price-output" ? &f.price_output : nullptr;
    if (!target || *target >= 0) continue;
    HarvestOptions o;
    for (const HarvestOptionSpec& spec : HarvestOptionTable())
      if (e.key == spec.name && e.values.size() == 1) RETORT_RETURN_IF_ERROR(spec.apply(o, e.values[0]));
    *target = e.key == "price-input" ? o.price_input : o.price_output;
  }
  return Status::OK();
}

// Cost so far and the projected total (cost per finished job x all jobs), when prices are known.
nlohmann::json CostJson(const RunTotals& t, const StatusFlags& f) {
  if (f.price_input < 0 && f.price_output < 0) return nullptr;
  const double pin = std::max(0.0, f.price_input), pout = std::max(0.0, f.price_output);
  const double so_far = (static_cast<double>(t.prompt_tokens) * pin + static_cast<double>(t.completion_tokens) * pout) / 1e6;
  nlohmann::json projected = nullptr;
  const std::int64_t paid = t.jobs.done - t.reused;  // reused answers cost nothing
  if (paid > 0)
    projected = so_far / static_cast<double>(paid) * static_cast<double>(t.jobs.total() - t.jobs.failed - t.reused);
  return {{"so_far", so_far}, {"projected_total", projected}, {"price_input_per_mtok", pin},
          {"price_output_per_mtok", pout}};
}

Result<nlohmann::json> RunJson(Store& store, const RunInfo& r, const StatusFlags& f) {
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
  // Batch runs: each provider batch (id, the provider's state, its counts, age).
  nlohmann::json batches = nlohmann::json::array();
  if (r.spec.mode == "batch") {
    Result<std::vector<BatchRecord>> bs = store.ListBatches(r.id);
    if (!bs.ok()) return bs.status();
    const Millis now = SystemClock()->WallMs();
    for (const BatchRecord& b : *bs) {
      nlohmann::json counts = nlohmann::json::parse(b.counts_json.empty() ? "null" : b.counts_json, nullptr, false);
      batches.push_back({{"round", b.round},
                         {"part", b.part},
                         {"id", b.batch_id.empty() ? nlohmann::json() : nlohmann::json(b.batch_id)},
                         {"step", b.step},
                         {"provider_state", b.provider_status},
                         {"requests", b.requests},
                         {"counts", counts.is_discarded() ? nlohmann::json() : counts},
                         {"age_s", (now - b.created_at_ms) / 1000},
                         {"error", b.error}});
    }
  }
  nlohmann::json urls = nlohmann::json::array();
  return nlohmann::json{
      {"mode", r.spec.mode},
      {"batches", batches},
      {"run", r.spec.name},
      {"set", r.spec.set},
      {"state", RunStateName(r.state)},
      {"harvesting_now", live},
      {"stop_reason", r.stop_reason},
      {"tls_insecure", r.tls_insecure},
      {"provider", r.spec.provider},
      {"model", r.spec.model},
      {"jobs",
       {{"total", t->jobs.total()},
        {"pending", t->jobs.pending},
        {"leased", t->jobs.leased},
        {"done", t->jobs.done},
        {"failed", t->jobs.failed},
        {"reused", t->reused}}},
      {"tokens",
       {{"prompt", t->prompt_tokens}, {"completion", t->completion_tokens}, {"reasoning", t->reasoning_tokens}}},
      {"response_bytes", t->response_bytes},
      {"cost", CostJson(*t, f)},
      {"recent_errors", errors}};
}

// The verify report of run `r` (--verify), as JSON.
Result<nlohmann::json> VerifyJson(Store& store, const RunInfo& r, const StatusFlags& f) {
  ExportOptions o = f.verify;
  o.run = r.spec.name;
  StderrLogSink log(LogLevel::kWarn);
  Result<VerifyReport> rep = VerifyRun(store, o, &log);
  if (!rep.ok()) return rep.status();
  return nlohmann::json::parse(rep->ToJson());
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
    Result<nlohmann::json> j = RunJson(**store, r, f);
    if (!j.ok()) return ReportError(j.status());
    if (!f.verify.verify.empty()) {
      Result<nlohmann::json> v = VerifyJson(**store, r, f);
      if (!v.ok()) return ReportError(v.status());
      (*j)["verify"] = *v;
    }
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
    if (jobs["reused"].get<long long>() > 0)
      std::printf("  reused: %lld answers copied from identical requests of other runs (%lld requests saved)\n",
                  jobs["reused"].get<long long>(), jobs["reused"].get<long long>());
    std::printf("  tokens: %lld prompt, %lld completion (%lld reasoning)\n",
                j["tokens"]["prompt"].get<long long>(), j["tokens"]["completion"].get<long long>(),
                j["tokens"]["reasoning"].get<long long>());
    if (!j["cost"].is_null()) {
      const auto& c = j["cost"];
      std::printf("  cost: %.4f so far", c["so_far"].get<double>());
      if (!c["projected_total"].is_null()) std::printf(", %.4f projected for the whole run", c["projected_total"].get<double>());
      std::printf("\n");
    }
    if (j["mode"] == "batch") std::printf("  mode: batch (%zu batches)\n", j["batches"].size());
    for (const nlohmann::json& b : j["batches"]) {
      const std::string id = b["id"].is_null() ? "(no provider id yet)" : b["id"].get<std::string>();
      const std::string state = b["provider_state"].get<std::string>();
      const std::string counts = b["counts"].is_null() ? "no counts yet" : b["counts"].dump();
      const std::string error = b["error"].get<std::string>();
      std::printf("  batch %d.%d %s: %s%s, %lld requests, %s, age %llds%s%s\n", b["round"].get<int>(),
                  b["part"].get<int>(), id.c_str(), b["step"].get<std::string>().c_str(),
                  state.empty() ? "" : (" (" + state + ")").c_str(), b["requests"].get<long long>(), counts.c_str(),
                  b["age_s"].get<long long>(), error.empty() ? "" : ": ", error.c_str());
    }
    if (!j["stop_reason"].get<std::string>().empty())
      std::printf("  stopped: %s\n", j["stop_reason"].get<std::string>().c_str());
    if (j["tls_insecure"].get<bool>())
      std::printf("  tls: certificate verification was skipped (--insecure) in a harvest of this run\n");
    if (j.contains("verify")) {
      const auto& v = j["verify"];
      std::printf("  verify %s: %lld records of %lld prompts, %lld verified, pass@1 %.4g, pass@n %.4g\n",
                  v["method"].get<std::string>().c_str(), v["records"].get<long long>(), v["prompts"].get<long long>(),
                  v["verified"].get<long long>(), v["pass@1"].get<double>(), v["pass@n"].get<double>());
      std::string rej;
      for (const auto& [reason, n] : v["rejected"].items())
        if (n.get<long long>() > 0) rej += (rej.empty() ? "" : ", ") + std::to_string(n.get<long long>()) + " " + reason;
      if (!rej.empty()) std::printf("  rejected: %s\n", rej.c_str());
    }
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
  sub->add_option("--config", f->config, "Harvest config file to read price-input/price-output from");
  sub->add_option("--price-input", f->price_input, "Price per million input tokens (cost so far and projected)");
  sub->add_option("--price-output", f->price_output, "Price per million output tokens");
  sub->add_option("--verify", f->verify.verify,
                  "With --run: verify every stored answer and report pass@1, pass@n and rejections by reason "
                  "(math | exact | exec:CMD | json-schema[:FILE], as retort export --verify)");
  sub->add_option("--answer-field", f->verify.answer_field, "Metadata key of the reference answer (with --verify)")
      ->capture_default_str();
  sub->add_option("--verify-timeout", f->verify.verify_timeout, "exec: seconds per record before it is killed")
      ->capture_default_str()
      ->type_name("SECONDS");
  sub->add_option("--verify-jobs", f->verify.verify_jobs, "exec: commands run at once (0 = number of CPUs)")
      ->capture_default_str();
  sub->callback([f, &rc] {
    if (!f->verify.verify.empty()) {
      ExportOptions probe = f->verify;
      probe.run = f->run.empty() ? std::string("-") : f->run;
      probe.out_dir = "-";
      Status v = f->run.empty() ? Status::InvalidArgument("--verify: needs --run RUN") : probe.Validate();
      if (!v.ok()) {
        std::fprintf(stderr, "retort: error: %s\n", v.message().c_str());
        rc = 2;
        return;
      }
    }
    if (Status st = ResolvePrices(*f); !st.ok()) {
      rc = ReportError(st);
      return;
    }
    rc = RunStatus(*f);
  });
}

}  // namespace retort::cli
