// CsvReader implementation: lines joined while a quoted field is open, then one strict split.
#include "prompts/csv_reader.h"

#include <algorithm>

namespace retort {

bool SplitCsvRecord(std::string_view rec, std::vector<std::string>* fields, std::string* error) {
  fields->clear();
  if (!rec.empty() && rec.back() == '\r') rec.remove_suffix(1);
  size_t i = 0;
  for (;;) {
    std::string& f = fields->emplace_back();
    const std::string n = std::to_string(fields->size());
    if (i < rec.size() && rec[i] == '"') {
      ++i;
      for (;;) {
        if (i >= rec.size()) {
          *error = "unterminated quoted field " + n;
          return false;
        }
        if (rec[i] == '"') {
          if (i + 1 < rec.size() && rec[i + 1] == '"') {
            f.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        f.push_back(rec[i++]);
      }
      if (i < rec.size() && rec[i] != ',') {
        *error = "text after the closing quote of field " + n;
        return false;
      }
    } else {
      const size_t end = std::min(rec.find(',', i), rec.size());
      const std::string_view raw = rec.substr(i, end - i);
      if (raw.find('"') != std::string_view::npos) {
        *error = "stray quote in unquoted field " + n + " (quote the field and double its quotes)";
        return false;
      }
      f.assign(raw);
      i = end;
    }
    if (i >= rec.size()) return true;
    ++i;  // the comma
  }
}

namespace {

// True while an odd number of quotes was seen: a quoted field is still open ("" counts twice).
bool QuotesOpen(std::string_view s) { return std::count(s.begin(), s.end(), '"') % 2 == 1; }

}  // namespace

CsvReader::CsvReader(std::FILE* f, size_t max_record_bytes) : lines_(f, max_record_bytes), max_(max_record_bytes) {}

Result<bool> CsvReader::Next(CsvRecord* out) {
  *out = CsvRecord{};
  record_.clear();
  bool too_long = false;
  bool any = false;
  bool open = false;  // inside a quoted field
  for (;;) {
    std::string_view line;
    bool line_too_long = false;
    Result<bool> more = lines_.Next(&line, &line_too_long);
    if (!more.ok()) return more.status();
    if (!*more) {
      if (!any) return false;
      if (!too_long) out->error = "unterminated quoted field (the file ends inside it)";
      break;
    }
    ++lineno_;
    if (!any) {
      out->lineno = lineno_;
      if (lineno_ == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    } else if (!too_long) {
      record_.push_back('\n');
    }
    any = true;
    if (line_too_long) {  // its bytes were skipped: its quotes cannot be counted, the record ends here
      too_long = true;
      break;
    }
    open ^= QuotesOpen(line);
    if (!too_long && record_.size() + line.size() > max_) {
      too_long = true;
      record_.clear();
    }
    if (!too_long) record_.append(line);
    if (!open) break;
  }
  if (too_long) {
    out->too_long = true;
    return true;
  }
  if (!out->error.empty()) return true;
  std::string_view rec = record_;
  if (!rec.empty() && rec.back() == '\r') rec.remove_suffix(1);
  if (rec.empty()) {
    out->blank = true;
    return true;
  }
  if (!SplitCsvRecord(record_, &out->fields, &out->error)) out->fields.clear();
  return true;
}

}  // namespace retort
