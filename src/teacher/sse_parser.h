// SseParser: an incremental WHATWG server-sent-events decoder (text/event-stream).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace retort {

// One dispatched event.
struct SseEvent {
  std::string event;  // the last `event:` value of the event; "" when none was sent
  std::string data;   // `data:` lines joined with "\n" (no trailing newline)
  std::string id;     // the last event id seen in the stream so far (persists across events)
};

// Decodes a byte stream into events following the WHATWG rules: lines end at CR, LF or
// CRLF (a CRLF split across two Feed calls is one line break), a UTF-8 BOM at stream start
// is skipped, `:` lines are comments, one leading space is dropped from a value, `data`
// lines are joined with "\n", a blank line dispatches, events without data are skipped,
// an `id` containing NUL is ignored, `retry` and unknown fields are ignored. No size limit.
// Not thread-safe; one parser per stream.
class SseParser {
 public:
  using EventFn = std::function<void(const SseEvent&)>;
  // Consumes `bytes` (any split) and calls `on_event` for every completed event, in order.
  void Feed(std::string_view bytes, const EventFn& on_event);
  // Ends the stream. Per WHATWG an unterminated event is discarded, so this dispatches
  // nothing; it resets the parser for a new stream.
  void Finish(const EventFn& on_event);

 private:
  void ProcessLine(std::string_view line, const EventFn& on_event);

  std::string line_;        // the incomplete current line
  std::string data_;        // data buffer of the pending event
  std::string event_;       // event type of the pending event
  std::string last_id_;     // last event id
  bool has_data_ = false;   // a data line was seen for the pending event
  bool skip_lf_ = false;    // the previous byte was CR: a leading LF is part of that break
  std::size_t bom_seen_ = 0;  // bytes of the BOM matched so far at stream start
  bool started_ = false;      // past the BOM check
};

}  // namespace retort
