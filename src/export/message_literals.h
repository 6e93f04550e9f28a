// MessageLiterals: a stored prompt's messages as JSON string literals, spliced into records as is.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "retort/corpus.h"
#include "retort/status.h"

namespace retort {

// One message as two quoted JSON string literals, each exactly what JsonWriter::String would
// write for the decoded text (so splicing them keeps records byte-identical).
struct MessageLiteral {
  std::string_view role;
  std::string_view content;
};

// Reusable across rows (keeps its buffers); not thread-safe. Views point into the text given
// to Parse() or into this object: valid until the next Parse()/Assign() or that text changes.
class MessageLiterals {
 public:
  // Reads stored messages JSON. The canonical form ([{"content":...,"role":...},...] whose
  // literals are already as JsonWriter writes them) is sliced without decoding; any other
  // valid shape is decoded (MessagesFromJson) and re-quoted. Corruption when `stored_json` is
  // not an array of {role, content} strings.
  Status Parse(std::string_view stored_json);
  // Quotes decoded messages (the ExportRow path).
  void Assign(const std::vector<Message>& messages);

  const std::vector<MessageLiteral>& messages() const { return lits_; }
  size_t size() const { return lits_.size(); }
  const MessageLiteral& operator[](size_t i) const { return lits_[i]; }

  // True when `literal` is the quoted form of `text` (an ASCII word such as "user").
  static bool Is(std::string_view literal, std::string_view text) {
    return literal.size() == text.size() + 2 && literal.substr(1, text.size()) == text;
  }
  // The decoded text of a literal (for messages; not on the hot path).
  static std::string Decode(std::string_view literal);

 private:
  bool SliceCanonical(std::string_view json);

  std::vector<MessageLiteral> lits_;
  std::string quoted_;                             // literals written by Assign()
  std::vector<std::pair<size_t, size_t>> offs_;    // Assign(): literal ends in quoted_
};

}  // namespace retort
