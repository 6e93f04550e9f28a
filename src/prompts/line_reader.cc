// LineReader implementation: 1 MiB chunks; the fast path returns views into the chunk.
#include "prompts/line_reader.h"

#include <cerrno>
#include <cstring>

namespace retort {

LineReader::LineReader(std::FILE* f, size_t max_line) : f_(f), max_line_(max_line), chunk_(new char[kChunkBytes]) {}  // uninitialised: fread fills it

Status LineReader::Fill() {
  pos_ = 0;
  end_ = std::fread(chunk_.get(), 1, kChunkBytes, f_);
  if (end_ < kChunkBytes) {
    if (std::ferror(f_)) return Status::IOError(std::string("read failed: ") + std::strerror(errno));
    if (end_ == 0) eof_ = true;
  }
  return Status::OK();
}

Result<bool> LineReader::Next(std::string_view* line, bool* too_long) {
  *too_long = false;
  pending_.clear();
  bool overflow = false;
  bool any = false;  // saw at least one byte of this line
  for (;;) {
    if (pos_ == end_) {
      if (eof_) break;
      RETORT_RETURN_IF_ERROR(Fill());
      if (eof_) break;
    }
    const char* start = chunk_.get() + pos_;
    const size_t avail = end_ - pos_;
    const void* nl = std::memchr(start, '\n', avail);
    const size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) : avail;
    any = true;
    if (!overflow) {
      if (pending_.size() + take > max_line_) {
        overflow = true;
        pending_.clear();
        pending_.shrink_to_fit();
      } else if (nl && pending_.empty()) {
        *line = std::string_view(start, take);  // fast path: whole line inside the chunk
        pos_ += take + 1;
        return true;
      } else {
        pending_.append(start, take);
      }
    }
    pos_ += take;
    if (nl) {
      ++pos_;
      break;
    }
  }
  if (!any) return false;
  *too_long = overflow;
  *line = overflow ? std::string_view() : std::string_view(pending_);
  return true;
}

}  // namespace retort
