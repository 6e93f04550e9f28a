// ExecVerifier implementation: posix_spawnp, a socketpair for stdin, pidfd + poll for exits and deadlines.
#include "export/exec_verifier.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace retort {

Result<std::vector<std::string>> SplitCommand(std::string_view cmd) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < cmd.size(); ++i) {
    const char c = cmd[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '\'') {
      const size_t end = cmd.find('\'', i + 1);
      if (end == std::string_view::npos) return Status::InvalidArgument("--verify exec: unclosed ' in the command");
      cur.append(cmd.substr(i + 1, end - i - 1));
      i = end;
      in_word = true;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < cmd.size() && cmd[j] != '"'; ++j) {
        if (cmd[j] == '\\' && j + 1 < cmd.size() && std::strchr("\"\\$`", cmd[j + 1])) ++j;
        cur += cmd[j];
      }
      if (j >= cmd.size()) return Status::InvalidArgument("--verify exec: unclosed \" in the command");
      i = j;
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= cmd.size()) return Status::InvalidArgument("--verify exec: trailing \\ in the command");
      cur += cmd[++i];
      in_word = true;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(cur));
  if (out.empty()) return Status::InvalidArgument("--verify exec:CMD: the command is empty");
  return out;
}

struct ExecVerifier::Child {
  std::uint64_t tag = 0;
  pid_t pid = -1;
  int pidfd = -1;
  int in = -1;  // our end of the child's stdin; -1 once everything is written (or it stopped reading)
  std::string record;
  size_t written = 0;
  std::chrono::steady_clock::time_point deadline;
};

ExecVerifier::ExecVerifier(std::vector<std::string> argv, int jobs, std::chrono::milliseconds timeout, Done done)
    : argv_(std::move(argv)), jobs_(static_cast<size_t>(std::max(1, jobs))), timeout_(timeout), done_(std::move(done)) {}

ExecVerifier::~ExecVerifier() {
  for (size_t i = running_.size(); i-- > 0;) {
    kill(-running_[i]->pid, SIGKILL);
    Finish(i, Verdict::kTimedOut);
  }
}

void ExecVerifier::Submit(std::uint64_t tag, std::string record) {
  while (running_.size() >= jobs_) Step();
  auto c = std::make_unique<Child>();
  c->tag = tag;
  c->record = std::move(record);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    if (spawn_error_.empty()) spawn_error_ = std::string("socketpair: ") + std::strerror(errno);
    done_(tag, Verdict::kCommandFailed);
    return;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  posix_spawnattr_setpgroup(&at, 0);  // own group: a timeout kills the command's children too
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv;
  for (const std::string& a : argv_) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    if (spawn_error_.empty()) spawn_error_ = "cannot start '" + argv_[0] + "': " + std::strerror(rc);
    done_(tag, Verdict::kCommandFailed);
    return;
  }
  c->pid = pid;
  c->pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  c->in = sv[0];
  fcntl(c->in, F_SETFL, fcntl(c->in, F_GETFL) | O_NONBLOCK);
  c->deadline = std::chrono::steady_clock::now() + timeout_;
  running_.push_back(std::move(c));
}

void ExecVerifier::Drain() {
  while (!running_.empty()) Step();
}

void ExecVerifier::Finish(size_t i, Verdict v) {
  Child& c = *running_[i];
  if (c.in >= 0) close(c.in);
  kill(-c.pid, SIGKILL);  // whatever the command left running in its group (the leader has exited or is killed)
  int st = 0;
  pid_t r;
  do r = waitpid(c.pid, &st, 0);
  while (r < 0 && errno == EINTR);
  if (c.pidfd >= 0) close(c.pidfd);
  if (v == Verdict::kVerified) v = r == c.pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? Verdict::kVerified
                                                                                        : Verdict::kCommandFailed;
  const std::uint64_t tag = c.tag;
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
  done_(tag, v);
}

void ExecVerifier::Step() {
  const auto now = std::chrono::steady_clock::now();
  // Deadlines first.
  for (size_t i = running_.size(); i-- > 0;) {
    if (running_[i]->deadline <= now) {
      kill(-running_[i]->pid, SIGKILL);
      Finish(i, Verdict::kTimedOut);
      return;
    }
  }
  auto next = running_.front()->deadline;
  std::vector<pollfd> fds;
  std::vector<std::pair<size_t, bool>> who;  // (child, is stdin)
  for (size_t i = 0; i < running_.size(); ++i) {
    Child& c = *running_[i];
    next = std::min(next, c.deadline);
    if (c.pidfd >= 0) {
      fds.push_back({c.pidfd, POLLIN, 0});
      who.push_back({i, false});
    }
    if (c.in >= 0) {
      fds.push_back({c.in, POLLOUT, 0});
      who.push_back({i, true});
    }
  }
  const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
  // Without a pidfd (kernel < 5.3) exits are noticed at least every 10 ms.
  const bool have_all_pidfds =
      std::all_of(running_.begin(), running_.end(), [](const std::unique_ptr<Child>& c) { return c->pidfd >= 0; });
  const int n = poll(fds.data(), fds.size(), static_cast<int>(have_all_pidfds ? wait_ms : std::min<long>(wait_ms, 10)));
  if (n < 0) return;  // EINTR: look again
  for (size_t k = 0; k < fds.size(); ++k) {
    if (!fds[k].revents) continue;
    Child& c = *running_[who[k].first];
    if (who[k].second) {
      if (c.in < 0) continue;
      while (c.written < c.record.size()) {
        const ssize_t w = send(c.in, c.record.data() + c.written, c.record.size() - c.written,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          c.written += static_cast<size_t>(w);
          continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
        c.written = c.record.size();  // EPIPE etc.: the command stopped reading; its exit decides
      }
      if (c.written >= c.record.size()) {
        close(c.in);
        c.in = -1;
        std::string().swap(c.record);
      }
    }
  }
  // Reap whoever exited.
  for (size_t i = running_.size(); i-- > 0;) {
    Child& c = *running_[i];
    siginfo_t si{};
    si.si_pid = 0;
    if (waitid(P_PID, static_cast<id_t>(c.pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c.pid)
      Finish(i, Verdict::kVerified);  // Finish turns a non-zero exit into kCommandFailed
  }
}

}  // namespace retort
