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

std::string EscapeLogField(std::string_view field) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(field[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else if (c == 0xC2 && i + 1 < field.size() && static_cast<unsigned char>(field[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(field[i + 1]) <= 0x9F) {
      const unsigned char cp = static_cast<unsigned char>(field[++i]);  // U+0080..U+009F
      out += "\\u00";
      out += kHex[cp >> 4];
      out += kHex[cp & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}
}  // namespace retort
