// JsonWriter: appends compact JSON to a string, fast enough for export (no DOM, deliberate key order).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace retort {

// Appends tokens to `*out`; commas are inserted automatically. The caller nests Begin/End
// correctly (at most 32 levels). Invalid UTF-8 in strings is replaced by U+FFFD so the
// output is always valid JSON. Not thread-safe; cheap to construct per record.
class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}
  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  void Key(std::string_view k);  // REQUIRES: inside an object
  void String(std::string_view s);
  void Int(std::int64_t v);
  // Shortest round-trip form; a non-finite value is written as -9999 (OpenAI's "-inf" logprob).
  void Double(double v);
  // Inserts already-valid JSON text as one value.
  void Raw(std::string_view json);

  // Appends `s` as a quoted, escaped JSON string to `*out` (no comma handling).
  static void AppendQuoted(std::string* out, std::string_view s);
  // The index of the first byte of p[i..n) that is < 0x20, '"', '\\' or >= 0x80 (a byte that
  // may need escaping or UTF-8 checking), or n when there is none. 16 bytes at a time.
  static size_t SkipPlain(const unsigned char* p, size_t i, size_t n);

 private:
  void Sep();
  void Open(char c);
  void Close(char c);

  std::string* out_;
  int depth_ = 0;
  bool first_[33] = {true};
  bool after_key_ = false;
};

}  // namespace retort
