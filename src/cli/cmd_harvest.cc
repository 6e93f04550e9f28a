// retort harvest: send a prompt set's jobs to a teacher and store every response exactly once.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli_support.h"
#include "cli/commands.h"
#include "cli/progress_line.h"
#include "harvest/config_file.h"
#include "retort/harvester.h"
#include "retort/store.h"

namespace retort::cli {

namespace {

struct HarvestFlags {
  std::string db;
  std::string config;
  std::string durability = "normal";
  std::string progress = "auto";
  double progress_interval = 2.0;
  std::string log_level = "info";
  // Raw values per table option, applied in table order after parsing.
  std::map<std::string, std::string> scalars;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, bool> flags;
};

nlohmann::json ProgressJson(const HarvestProgress& p, const std::string& run) {
  return {{"run", run},
          {"state", p.state},
          {"done", p.done},
          {"failed", p.failed},
          {"reused", p.reused},
          {"pending", p.pending},
          {"total", p.total_jobs},
          {"requests", p.requests},
          {"retries", p.retries},
          {"rate_limited", p.rate_limited},
          {"errors", p.errors},
          {"in_flight", p.in_flight},
          {"concurrency_limit", p.concurrency_limit},
          {"requests_per_s", p.requests_per_s},
          {"tokens_per_s", p.tokens_per_s},
          {"prompt_tokens", p.prompt_tokens},
          {"completion_tokens", p.completion_tokens},
          {"cost", p.cost},
          {"elapsed_s", p.elapsed_s},
          {"eta_s", p.eta_s}};
}

int RunHarvest(const HarvestFlags& f) {
  HarvestOptions opts;
  // The config file first; flags given on the command line override its values.
  if (!f.config.empty()) {
    Result<std::vector<ConfigEntry>> entries = ParseConfigFile(f.config);
    if (!entries.ok()) return ReportError(entries.status());
    for (const ConfigEntry& e : *entries) {
      const HarvestOptionSpec* spec = nullptr;
      for (const HarvestOptionSpec& s : HarvestOptionTable())
        if (e.key == s.name) spec = &s;
      if (!spec)
        return ReportError(Status::InvalidArgument(f.config + ":" + std::to_string(e.line) + ": unknown option '" +
                                                   e.key + "'"));
      const bool overridden = (f.scalars.count(spec->name) && !f.scalars.at(spec->name).empty()) ||
                              (f.lists.count(spec->name) && !f.lists.at(spec->name).empty()) ||
                              (f.flags.count(spec->name) && f.flags.at(spec->name));
      if (overridden) continue;
      if (e.values.size() != 1 && spec->kind != HarvestOptionSpec::Kind::kList)
        return ReportError(Status::InvalidArgument(f.config + ":" + std::to_string(e.line) + ": " + e.key +
                                                   ": expected a single value"));
      for (const std::string& v : e.values)
        if (Status st = spec->apply(opts, v); !st.ok())
          return ReportError(st.WithContext(f.config + ":" + std::to_string(e.line)));
    }
  }
  for (const HarvestOptionSpec& spec : HarvestOptionTable()) {
    Status st;
    if (auto it = f.scalars.find(spec.name); it != f.scalars.end() && !it->second.empty())
      st = spec.apply(opts, it->second);
    if (auto it = f.lists.find(spec.name); it != f.lists.end())
      for (const std::string& v : it->second)
        if (st.ok()) st = spec.apply(opts, v);
    if (auto it = f.flags.find(spec.name); it != f.flags.end() && it->second) st = spec.apply(opts, "true");
    if (!st.ok()) return ReportError(st);
  }
  if (opts.base_urls.empty()) {
    const char* env = std::getenv(opts.provider == "anthropic-messages" ? "ANTHROPIC_BASE_URL" : "OPENAI_BASE_URL");
    if (env && *env) opts.base_urls.push_back(env);
  }
  if (Status v = opts.Validate(); !v.ok()) return ReportError(v);
  if (f.durability != "normal" && f.durability != "full")
    return ReportError(Status::InvalidArgument("--durability: expected normal or full, got '" + f.durability + "'"));

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  StoreOptions so;
  so.path = f.db;
  so.durability = f.durability == "full" ? Durability::kFull : Durability::kNormal;
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  if (!store.ok()) return ReportError(store.status());

  StderrLogSink log(ParseLogLevel(f.log_level));
  Harvester harvester(store->get(), opts, &log);

  std::atomic<bool> finished{false};
  std::thread signals([&] {
    int n = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&sigs, &sig) != 0) continue;
      if (finished.load()) return;
      if (++n == 1) {
        std::fprintf(stderr, "\nretort: %s received: finishing requests in flight (again to exit at once)\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        harvester.Stop(sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
      } else {
        // Every commit is atomic: jobs in flight are leased and return to pending on the next start.
        std::_Exit(130);
      }
    }
  });

  Result<HarvestSummary> result = Status::Internal("not run");
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::thread worker([&] {
    result = harvester.Run();
    {
      std::lock_guard lk(done_mu);
      finished = true;
    }
    done_cv.notify_all();
  });
  const bool json = f.progress == "json" || (f.progress == "auto" && !StderrIsTty());
  const bool line = f.progress == "tty" || (f.progress == "auto" && StderrIsTty());
  const auto interval = std::chrono::milliseconds(static_cast<long>((json ? std::max(0.2, f.progress_interval) : 0.5) * 1000));
  auto next = std::chrono::steady_clock::now() + interval;
  for (;;) {
    {
      std::unique_lock lk(done_mu);
      if (done_cv.wait_until(lk, next, [&] { return finished.load(); })) break;
    }
    next += interval;
    HarvestProgress p = harvester.Progress();
    if (f.progress == "off") continue;
    if (json) std::fprintf(stderr, "%s\n", ProgressJson(p, opts.run).dump().c_str());
    else if (line)
      std::fprintf(stderr, "\r\033[K%s", ProgressLine(p, opts.price_input > 0 || opts.price_output > 0).c_str());
  }
  worker.join();
  finished = true;
  kill(getpid(), SIGTERM);  // wake the signal thread so it can exit (signal is blocked: sigwait takes it)
  signals.join();
  if (line) std::fprintf(stderr, "\r\033[K");
  if (!result.ok()) {
    (void)ReportError(result.status());
    return HarvestExitCode(result.status(), HarvestSummary{});
  }
  const HarvestSummary& s = *result;
  if (json) std::fprintf(stderr, "%s\n", ProgressJson(s.progress, opts.run).dump().c_str());
  std::printf("run %s: %s%s%s; %lld done, %lld failed, %lld pending; %lld requests, %lld retries, %lld rate-limited; "
              "%lld prompt + %lld completion tokens\n",
              opts.run.c_str(), RunStateName(s.final_state), s.stop_reason.empty() ? "" : " (",
              s.stop_reason.empty() ? "" : (s.stop_reason + ")").c_str(), static_cast<long long>(s.progress.done),
              static_cast<long long>(s.progress.failed), static_cast<long long>(s.progress.pending),
              static_cast<long long>(s.progress.requests), static_cast<long long>(s.progress.retries),
              static_cast<long long>(s.progress.rate_limited), static_cast<long long>(s.progress.prompt_tokens),
              static_cast<long long>(s.progress.completion_tokens));
  if (s.progress.reused > 0)
    std::printf("run %s: %lld jobs were filled from identical requests of other runs (no request sent)\n",
                opts.run.c_str(), static_cast<long long>(s.progress.reused));
  if (s.final_state == RunState::kDone && s.progress.failed > 0)
    std::printf("run %s: %lld jobs failed; `retort status --db %s --run %s` shows why, and the same harvest command "
                "with --retry-failed retries them\n",
                opts.run.c_str(), static_cast<long long>(s.progress.failed), f.db.c_str(), opts.run.c_str());
  return HarvestExitCode(Status::OK(), s);
}

}  // namespace

void AddHarvestCommand(CLI::App& app, int& rc) {
  auto* sub = app.add_subcommand("harvest", "Send a prompt set to a teacher and store every response exactly once");
  sub->footer(
      "Exit status: 0 every job done; 1 error (database, run lock, run parameters differ); 2 usage error (flags, "
      "options, unknown prompt set); 3 finished but some jobs failed (--retry-failed retries them); 4 stopped early "
      "with jobs pending (budget, signal, teacher unreachable, key or quota refused, systematic error such as a "
      "mistyped --model); 130 a second SIGINT.\n"
      "A run's identity is its set, provider, model and generation parameters (they decide its answers); "
      "--base-url, --api-key-env, --concurrency, limits, timeouts and budgets may change when it resumes, the model "
      "only with --allow-model-change before any job is done.");
  auto f = std::make_shared<HarvestFlags>();
  sub->add_option("--config", f->config, "TOML file holding any option below as key = value (flags override it)");
  sub->add_option("--db", f->db, "Corpus database (created on first use)")->required();
  sub->add_option("--durability", f->durability, "SQLite synchronous level: normal or full")->capture_default_str();
  sub->add_option("--progress", f->progress,
                  "Progress output: auto (tty on a terminal, else json), tty (one line: done, percent, rates, "
                  "ETA, cost with prices, else tokens), json or off")
      ->capture_default_str();
  sub->add_option("--progress-interval", f->progress_interval, "Seconds between JSON progress lines")
      ->capture_default_str()
      ->type_name("SECONDS");
  sub->add_option("--log-level", f->log_level, "debug, info, warn or error")->capture_default_str();
  HarvestOptions defaults;
  for (const HarvestOptionSpec& spec : HarvestOptionTable()) {
    std::string flag = std::string("--") + spec.name;
    std::string def = spec.default_text(defaults);
    std::string help = spec.help;
    if (!def.empty()) help += " [default: " + def + "]";
    switch (spec.kind) {
      case HarvestOptionSpec::Kind::kList:
        sub->add_option(flag, f->lists[spec.name], help);
        break;
      case HarvestOptionSpec::Kind::kBool:
        sub->add_flag(flag, f->flags[spec.name], help);
        break;
      default:
        sub->add_option(flag, f->scalars[spec.name], help)->type_name(HarvestTypeName(spec));
    }
  }
  sub->callback([f, &rc] { rc = RunHarvest(*f); });
}

}  // namespace retort::cli
