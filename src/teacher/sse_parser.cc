// SseParser implementation (WHATWG HTML "Interpreting an event stream").
#include "teacher/sse_parser.h"

namespace retort {
namespace {
constexpr std::string_view kBom = "\xEF\xBB\xBF";
}  // namespace

void SseParser::Feed(std::string_view bytes, const EventFn& on_event) {
  if (!started_) {
    // Match the BOM byte by byte: it may be split across Feed calls.
    while (!bytes.empty() && bom_seen_ < kBom.size() && bytes.front() == kBom[bom_seen_]) {
      ++bom_seen_;
      bytes.remove_prefix(1);
    }
    if (bom_seen_ == kBom.size()) {
      started_ = true;
    } else if (!bytes.empty()) {
      // Not a BOM: the partially matched bytes are ordinary content.
      started_ = true;
      line_.append(kBom.substr(0, bom_seen_));
    } else {
      return;  // still undecided
    }
  }
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (bytes[pos] == '\n') {
        ++pos;
        continue;
      }
    }
    std::size_t end = bytes.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(pos));
      break;
    }
    if (line_.empty()) {
      ProcessLine(bytes.substr(pos, end - pos), on_event);
    } else {
      line_.append(bytes.substr(pos, end - pos));
      std::string line = std::move(line_);
      line_.clear();
      ProcessLine(line, on_event);
    }
    skip_lf_ = bytes[end] == '\r';
    pos = end + 1;
  }
}

void SseParser::Finish(const EventFn& /*on_event*/) {
  line_.clear();
  data_.clear();
  event_.clear();
  last_id_.clear();
  has_data_ = false;
  skip_lf_ = false;
  bom_seen_ = 0;
  started_ = false;
}

void SseParser::ProcessLine(std::string_view line, const EventFn& on_event) {
  if (line.empty()) {
    if (has_data_) {
      SseEvent ev;
      ev.event = std::move(event_);
      ev.data = std::move(data_);
      ev.id = last_id_;
      on_event(ev);
    }
    data_.clear();
    event_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment
  std::string_view field = line, value;
  std::size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  }
  // "retry" and unknown fields are ignored.
}

}  // namespace retort
