// Test helper: llama.cpp's llama-server (the real third-party teacher that
// ../shared/real-teacher/setup.sh builds) as a child process on a free 127.0.0.1 port.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_support/temp_dir.h"

extern char** environ;

namespace retort::test {

// Where setup.sh put the server and the model: $REAL_TEACHER_DIR (default
// /var/cache/retort-real-teacher, where scripts/test.sh's `real` phase builds it) and
// $REAL_TEACHER_MODEL (default: the stand-in model setup.sh writes), as start.sh reads them.
struct RealTeacherPaths {
  std::string dir, binary, model;
};

inline RealTeacherPaths RealTeacher() {
  const char* d = std::getenv("REAL_TEACHER_DIR");
  RealTeacherPaths p;
  p.dir = d && *d ? d : "/var/cache/retort-real-teacher";
  p.binary = p.dir + "/llama.cpp/build/bin/llama-server";
  const char* m = std::getenv("REAL_TEACHER_MODEL");
  p.model = m && *m ? m : p.dir + "/models/standin-random-15M-f32.gguf";
  return p;
}

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed); the
// caller must cope with it being taken before it binds it. 0 on failure.
inline int ProbeFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// One llama-server process, started with start.sh's flags (4 slots, 4096 tokens of context,
// 2 threads, model alias "tiny", no web UI, offline). Its output goes to a log file, never to a
// pipe (a pipe nobody reads would block the server once 64 KiB of request logs filled it).
// Stopped by the destructor: SIGTERM, then SIGKILL if it has not exited within 15 s.
// Not thread-safe; one test thread owns it.
class LlamaServer {
 public:
  // Starts a fresh server logging to `log_dir`/llama-server-PORT.log and returns once it is
  // listening on its own port and GET /health answers 200 (model loaded), at most 120 s. A port
  // taken between the probe and llama-server's bind is retried on another one (5 attempts).
  // Fails the test (never skips it) when the binary or the model is missing or the server
  // does not come up; the failure message holds the end of the server's log.
  static std::unique_ptr<LlamaServer> Start(const std::string& log_dir) {
    const RealTeacherPaths paths = RealTeacher();
    const std::string hint = " (build it with: REAL_TEACHER_DIR=" + paths.dir +
                             " bash ../shared/real-teacher/setup.sh, as scripts/test.sh's `real` phase does)";
    if (access(paths.binary.c_str(), X_OK) != 0) FAIL("no llama-server at " << paths.binary << hint);
    if (!std::filesystem::is_regular_file(paths.model)) FAIL("no model at " << paths.model << hint);
    std::string last_log;
    for (int attempt = 0; attempt < 5; ++attempt) {
      const int port = ProbeFreePort();
      REQUIRE(port > 0);
      std::unique_ptr<LlamaServer> s(new LlamaServer(paths, port, log_dir));
      REQUIRE(s->pid_ > 0);
      const Readiness r = s->WaitReady(std::chrono::seconds(120));
      if (r == Readiness::kReady) return s;
      last_log = s->LogTail(3000);
      if (r == Readiness::kPortTaken) continue;  // someone took the port after the probe: another one
      FAIL("llama-server did not become ready on port " << port << "; end of its log:\n" << last_log);
    }
    FAIL("llama-server could not bind a free port in 5 attempts; end of the last log:\n" << last_log);
    return nullptr;
  }

  ~LlamaServer() { Stop(); }
  LlamaServer(const LlamaServer&) = delete;
  LlamaServer& operator=(const LlamaServer&) = delete;

  int port() const { return port_; }
  // The OpenAI-compatible base URL for `retort harvest --base-url`.
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  const std::string& log_path() const { return log_path_; }

  // True while the process runs (reaps it when it has exited).
  bool Alive() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  // SIGTERM (llama-server finishes its tasks and exits), SIGKILL after 15 s; always reaps.
  void Stop() {
    if (!Alive()) return;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Alive()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
  }

  // The last `bytes` of the server's log.
  std::string LogTail(size_t bytes) const {
    std::string log = ReadFile(log_path_);
    return log.size() > bytes ? log.substr(log.size() - bytes) : log;
  }

 private:
  enum class Readiness { kReady, kPortTaken, kFailed };

  LlamaServer(const RealTeacherPaths& paths, int port, const std::string& log_dir)
      : port_(port), log_path_(log_dir + "/llama-server-" + std::to_string(port) + ".log") {
    const std::vector<std::string> argv = {paths.binary, "--host", "127.0.0.1", "--port", std::to_string(port),
                                           "-m", paths.model, "-a", "tiny", "-c", "4096", "-np", "4", "-t", "2",
                                           "--no-webui", "--offline"};
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid_, paths.binary.c_str(), &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }

  // Ready = our process logged that it listens on our port (so the answer to /health is
  // ours, not another server's that took the port) and /health says 200 (503 while loading).
  Readiness WaitReady(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    const std::string listening = "listening on http://127.0.0.1:" + std::to_string(port_);
    httplib::Client cli("127.0.0.1", port_);
    cli.set_connection_timeout(1, 0);
    cli.set_read_timeout(5, 0);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!Alive()) {
        return ReadFile(log_path_).find("couldn't bind HTTP server socket") != std::string::npos
                   ? Readiness::kPortTaken
                   : Readiness::kFailed;
      }
      if (ReadFile(log_path_).find(listening) != std::string::npos) {
        httplib::Result r = cli.Get("/health");
        if (r && r->status == 200) return Readiness::kReady;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Readiness::kFailed;
  }

  pid_t pid_ = -1;
  int port_;
  std::string log_path_;
};

}  // namespace retort::test
