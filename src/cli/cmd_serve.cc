// retort serve: the HTTP control API (prompt sets, runs, exports, metrics) over one database.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cli/cli_support.h"
#include "cli/commands.h"
#include "service/api_router.h"
#include "service/listen_address.h"
#include "service/service.h"

namespace retort::cli {

namespace {

struct ServeFlags {
  std::string db;
  std::string listen = "127.0.0.1:8377";
  std::string token_env;
  std::vector<std::string> allow_hosts;
  std::vector<std::string> allow_key_envs;
  std::vector<std::string> allow_base_urls;
  std::string export_root;  // "" = <folder of --db>/exports
  std::int64_t max_body_bytes = 64LL << 20;
  double header_timeout_s = 10;
  double body_timeout_s = 60;
  std::string log_level = "info";
};

// "host:port" (IPv6 as "[::1]:port"). InvalidArgument naming --listen.
Status ParseListen(const std::string& s, std::string* host, int* port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return Status::InvalidArgument("--listen: expected HOST:PORT, got '" + s + "'");
  std::string h = s.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = s.substr(colon + 1);
  char* end = nullptr;
  const long v = std::strtol(p.c_str(), &end, 10);
  if (*end != '\0' || v < 0 || v > 65535) return Status::InvalidArgument("--listen: bad port '" + p + "'");
  *host = h;
  *port = static_cast<int>(v);
  return Status::OK();
}

int RunServe(const ServeFlags& f) {
  std::string host;
  int port = 0;
  if (Status st = ParseListen(f.listen, &host, &port); !st.ok()) return ReportError(st);
  if (f.max_body_bytes < 1) return ReportError(Status::InvalidArgument("--max-body-bytes: expected >= 1"));
  if (!(f.header_timeout_s > 0 && f.header_timeout_s <= 3600))
    return ReportError(Status::InvalidArgument("--header-timeout: expected 0 < seconds <= 3600"));
  if (!(f.body_timeout_s > 0 && f.body_timeout_s <= 86400))
    return ReportError(Status::InvalidArgument("--body-timeout: expected 0 < seconds <= 86400"));
  std::string token;
  if (!f.token_env.empty()) {
    const char* t = std::getenv(f.token_env.c_str());
    if (!t || !*t)
      return ReportError(Status::InvalidArgument("--token-env: the environment variable " + f.token_env +
                                                 " is not set or empty"));
    token = t;
  }
  // The check and the bind use the same resolved address (a prefix test let
  // 127.attacker.example through).
  Result<ListenAddress> addr = ResolveListenHost(host);
  if (!addr.ok()) return ReportError(addr.status());
  if (!addr->loopback && token.empty())
    return ReportError(Status::InvalidArgument("--listen: listening on " + host +
                                               " (beyond loopback) requires a bearer token: pass --token-env VAR"));


  // Block the stop signals in every thread; one thread waits for them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  std::string export_root = f.export_root;
  if (export_root.empty()) {
    const std::filesystem::path db(f.db);
    export_root = (db.has_parent_path() ? db.parent_path() : std::filesystem::path(".")).string() + "/exports";
  }
  Result<ServicePolicy> policy = ServicePolicy::Create(f.allow_key_envs, f.allow_base_urls, export_root);
  if (!policy.ok()) return ReportError(policy.status());

  StderrLogSink log(ParseLogLevel(f.log_level));
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  };
  log.Write(LogLine{LogLevel::kInfo, "", 0, 0,
                    "runs may read keys from " + join(policy->key_envs()) + "; teacher URLs allowed: " +
                        join(policy->base_url_prefixes()) + "; exports go below " + policy->export_root()});
  if (token.empty())
    log.Write(LogLine{LogLevel::kWarn, "", 0, 0,
                      "no --token-env: every local user of this machine can use the API (and the keys it may "
                      "send); on a shared host pass --token-env"});
  ServiceOptions so;
  so.db = f.db;
  so.log = &log;
  so.policy = *policy;
  Result<std::unique_ptr<Service>> svc = Service::Open(so);
  if (!svc.ok()) return ReportError(svc.status());
  ApiServerOptions ao;
  ao.host = addr->numeric_host;
  ao.port = port;
  ao.token = token;
  ao.host_name = host;
  ao.allowed_hosts = f.allow_hosts;
  ao.max_body_bytes = f.max_body_bytes;
  ao.header_timeout_ms = static_cast<int>(f.header_timeout_s * 1000);
  ao.body_timeout_ms = static_cast<int>(f.body_timeout_s * 1000);
  ao.log = &log;
  ApiRouter router(svc->get(), ao);
  Result<int> bound = router.Bind();
  if (!bound.ok()) {
    (*svc)->Shutdown();
    return ReportError(bound.status());
  }
  std::printf("listening on %s:%d\n", addr->numeric_host.c_str(), *bound);
  std::fflush(stdout);

  // The signal thread: the first SIGTERM/SIGINT stops the server (runs are paused), a second one
  // exits at once. It lives until the shutdown is complete.
  std::atomic<bool> served{false}, stopping{false}, finished{false};
  std::thread signals([&] {
    int n = 0;
    for (;;) {
      int sig = 0;
      if (sigwait(&sigs, &sig) != 0) continue;
      if (finished.load()) return;  // woken by the main thread after the shutdown
      if (++n == 1) {
        std::fprintf(stderr, "retort: %s received: pausing runs (again to exit at once)\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        stopping = true;
        // Serve() may not be listening yet: repeat (bounded) until it has returned.
        for (int i = 0; i < 600 && !served.load(); ++i) {
          router.Stop();
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        continue;
      }
      std::_Exit(130);  // every commit is atomic: leased jobs return to pending on the next start
    }
  });
  router.Serve();
  served = true;
  (*svc)->Shutdown();
  finished = true;
  kill(getpid(), SIGTERM);  // wake the signal thread (the signal is blocked: sigwait takes it)
  signals.join();
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, int& rc) {
  auto* sub = app.add_subcommand(
      "serve", "HTTP control API: prompt sets, runs, exports, Prometheus metrics; described by GET /v1/openapi.json");
  auto f = std::make_shared<ServeFlags>();
  sub->add_option("--db", f->db, "Corpus database (created on first use)")->required();
  sub->add_option("--listen", f->listen, "HOST:PORT to listen on (port 0 = any free port)")->capture_default_str();
  sub->add_option("--token-env", f->token_env,
                  "Environment variable holding the bearer token every request must carry (required beyond loopback)");
  sub->add_option("--allow-host", f->allow_hosts,
                  "Host name (NAME or NAME:PORT, repeatable) the server answers to besides its listen address, "
                  "e.g. behind a reverse proxy; any other Host header gets 421 (DNS rebinding protection)");
  sub->add_option("--allow-key-env", f->allow_key_envs,
                  "Environment variable (repeatable) a run may name as api_key_env besides OPENAI_API_KEY and "
                  "ANTHROPIC_API_KEY; any other name is refused (400)");
  sub->add_option("--allow-base-url", f->allow_base_urls,
                  "Teacher URL prefix (repeatable) runs may use, e.g. https://api.openai.com/v1 or "
                  "http://10.0.0.5:8000/; replaces the default: loopback URLs, https://api.openai.com/ and "
                  "https://api.anthropic.com/ (a run elsewhere is 400: SSRF protection)");
  sub->add_option("--export-root", f->export_root,
                  "Folder exports are written below; a request's \"out\" is a relative path inside it "
                  "(default: the folder 'exports' next to --db)");
  sub->add_option("--max-body-bytes", f->max_body_bytes,
                  "Largest request body accepted, with Content-Length or chunked (413 beyond)")
      ->capture_default_str();
  sub->add_option("--header-timeout", f->header_timeout_s,
                  "Seconds from a request's first byte to the end of its headers (408 after); slow heads "
                  "are read by one thread and hold no worker")
      ->capture_default_str()
      ->type_name("SECONDS");
  sub->add_option("--body-timeout", f->body_timeout_s,
                  "Seconds a worker waits for a request body to arrive in full (the connection is closed after)")
      ->capture_default_str()
      ->type_name("SECONDS");
  sub->add_option("--log-level", f->log_level, "debug, info, warn or error")->capture_default_str();
  sub->callback([f, &rc] { rc = RunServe(*f); });
}

}  // namespace retort::cli
