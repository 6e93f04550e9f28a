// The null log sink.
#include "retort/log.h"

namespace retort {
namespace {
class NullSink : public LogSink {
 public:
  void Write(const LogLine&) override {}
};
}  // namespace

LogSink* NullLogSink() {
  static NullSink sink;
  return &sink;
}
}  // namespace retort
