// CsvReader: RFC 4180 records (quoted fields, embedded commas, quotes and line breaks) in bounded memory.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "prompts/line_reader.h"
#include "retort/status.h"

namespace retort {

// Splits one complete CSV record (without its final line break; a trailing '\r' is dropped)
// into fields. Fields are separated by ','; a field that starts with '"' is quoted: it ends at
// the next lone '"', "" inside it is one '"', and it may hold ',' and line breaks. Returns false
// with *error set ("stray quote in unquoted field 2", "unterminated quoted field 1", "text after
// the closing quote of field 3"). Pure function.
bool SplitCsvRecord(std::string_view record, std::vector<std::string>* fields, std::string* error);

// One record as read: the line it starts on, its fields, or why it was rejected.
struct CsvRecord {
  std::int64_t lineno = 0;        // 1-based line of the record's first line
  bool blank = false;             // an empty line (no fields)
  bool too_long = false;          // longer than max_record_bytes (its bytes were skipped)
  std::string error;              // not RFC 4180 (see SplitCsvRecord); fields is then empty
  std::vector<std::string> fields;
};

// Reads records from a FILE* (does not own it). A UTF-8 BOM at the start is dropped. A quoted
// field may span lines; the record then continues until its quotes balance, and its line breaks
// are kept as they are in the file ("\n" or "\r\n"). Memory: one record, at most
// max_record_bytes (+ one line); a longer record is reported too_long. Not thread-safe.
class CsvReader {
 public:
  // REQUIRES: f open for reading; max_record_bytes > 0.
  CsvReader(std::FILE* f, size_t max_record_bytes);

  // Reads the next record. Returns false at end of input. IOError when the read fails.
  Result<bool> Next(CsvRecord* out);

 private:
  LineReader lines_;
  size_t max_;
  std::int64_t lineno_ = 0;
  std::string record_;
};

}  // namespace retort
