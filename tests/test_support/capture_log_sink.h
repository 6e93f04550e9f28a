// Test helper: a LogSink that keeps every line for assertions.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "retort/log.h"

namespace retort::test {

class CaptureLogSink : public LogSink {
 public:
  void Write(const LogLine& line) override {
    std::lock_guard lk(mu_);
    lines_.push_back(line);
  }
  std::vector<LogLine> lines() {
    std::lock_guard lk(mu_);
    return lines_;
  }
  // All messages joined with '\n'.
  std::string Text() {
    std::lock_guard lk(mu_);
    std::string s;
    for (const LogLine& l : lines_) s += l.message + "\n";
    return s;
  }

 private:
  std::mutex mu_;
  std::vector<LogLine> lines_;
};

}  // namespace retort::test
