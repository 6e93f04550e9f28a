// Test helper: spawn the real retort binary (or any program), read its output, signal it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace retort::test {

// A child process with stdout and stderr captured through pipes. Killed (SIGKILL) on destruction.
class Process {
 public:
  // `env` entries "K=V" are added to (or override) the current environment.
  explicit Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      bool overridden = false;
      for (const std::string& o : env)
        if (kv.substr(0, kv.find('=') + 1) == o.substr(0, o.find('=') + 1)) overridden = true;
      if (!overridden) envs.push_back(kv);
    }
    for (const std::string& o : env) envs.push_back(o);
    std::vector<char*> envp;
    for (std::string& e : envs) envp.push_back(e.data());
    envp.push_back(nullptr);
    spawn_error_ = posix_spawn(&pid_, argv[0].c_str(), &fa, nullptr, args.data(), envp.data());
    if (spawn_error_ != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    // Never block in read(): a write end inherited elsewhere must not hang the test.
    fcntl(out_fd_, F_SETFL, O_NONBLOCK);
    fcntl(err_fd_, F_SETFL, O_NONBLOCK);
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      int st;
      waitpid(pid_, &st, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void Signal(int sig) {
    if (pid_ > 0 && !exited_) kill(pid_, sig);
  }

  // Reads one stdout line, waiting at most `timeout`. nullopt on EOF or timeout.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      size_t nl = out_buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = out_buf_.substr(0, nl);
        out_buf_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n < 0 && errno == EAGAIN) continue;
      if (n <= 0) return std::nullopt;
      out_buf_.append(buf, static_cast<size_t>(n));
    }
  }

  // Waits for exit (at most `timeout`, then SIGKILL) and collects all remaining output.
  // Returns the exit code, or 128+signal when killed by a signal.
  int Wait(std::chrono::milliseconds timeout = std::chrono::minutes(5)) {
    if (pid_ <= 0) return -1000 - spawn_error_;  // never waitpid(-1) / kill(-1)
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      Drain(20);
      int st = 0;
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r < 0 && errno != EINTR) {  // reaped elsewhere (should not happen): report, never spin
        exited_ = true;
        return -2000 - errno;
      }
      if (r == pid_) {
        exited_ = true;
        Drain(0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      }
    }
  }

  const std::string& out() const { return out_all_; }
  const std::string& err() const { return err_all_; }

 private:
  void Drain(int timeout_ms) {
    pollfd p[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    if (poll(p, 2, timeout_ms) <= 0) return;
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(p[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (i == 0) {
          out_buf_.append(buf, static_cast<size_t>(n));
          out_all_.append(buf, static_cast<size_t>(n));
        } else {
          err_all_.append(buf, static_cast<size_t>(n));
        }
      }
    }
  }

  pid_t pid_ = -1;
  int spawn_error_ = 0;
  bool exited_ = false;
  int out_fd_ = -1, err_fd_ = -1;
  std::string out_buf_, out_all_, err_all_;
};

}  // namespace retort::test
