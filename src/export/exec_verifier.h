// ExecVerifier: runs a user command per record (--verify exec:CMD), several at once, each with a time limit.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "export/answer_check.h"
#include "retort/status.h"

namespace retort {

// Splits CMD into argv like a POSIX shell splits words, without any expansion: whitespace
// separates words, '...' quotes literally, "..." quotes with \" \\ \$ \` escapes, a backslash
// outside quotes escapes the next character. InvalidArgument (naming --verify) on an unclosed
// quote, a trailing backslash or an empty command.
Result<std::vector<std::string>> SplitCommand(std::string_view cmd);

// Runs `argv` once per submitted record: the record bytes on stdin (then EOF), stdout and stderr
// discarded, exit status 0 = kVerified, any other exit, a signal or a failure to start =
// kCommandFailed; still running `timeout` after its start = kTimedOut (its process group is
// killed with SIGKILL). The command is started with posix_spawnp in its own process group; the
// record never reaches a shell or the argv. At most `jobs` commands run at once. Not thread-safe:
// one thread calls Submit/Drain.
class ExecVerifier {
 public:
  // Called once per finished record with the tag given to Submit.
  using Done = std::function<void(std::uint64_t tag, Verdict v)>;
  // REQUIRES: !argv.empty(), jobs >= 1, timeout > 0.
  ExecVerifier(std::vector<std::string> argv, int jobs, std::chrono::milliseconds timeout, Done done);
  ~ExecVerifier();  // kills and reaps whatever still runs
  ExecVerifier(const ExecVerifier&) = delete;
  ExecVerifier& operator=(const ExecVerifier&) = delete;

  // Starts the command for `record`; first waits (running the others) while `jobs` are running.
  void Submit(std::uint64_t tag, std::string record);
  // Waits until every submitted record is done.
  void Drain();

  // The first failure to start the command ("" when none): errno text, for the log.
  const std::string& spawn_error() const { return spawn_error_; }

 private:
  struct Child;
  void Step();  // waits for one event (a child's exit, stdin space, a deadline) and handles it
  void Finish(size_t i, Verdict v);

  const std::vector<std::string> argv_;
  const size_t jobs_;
  const std::chrono::milliseconds timeout_;
  Done done_;
  std::vector<std::unique_ptr<Child>> running_;
  std::string spawn_error_;
};

}  // namespace retort
