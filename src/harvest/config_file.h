// ConfigFile: parses `retort harvest --config FILE` (a TOML subset) into option values.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "retort/status.h"

namespace retort {

// One `key = value` line. `values` holds one element for scalars and every element of an array.
// Keys are normalised to the flag spelling (`max_tokens` -> `max-tokens`).
struct ConfigEntry {
  std::string key;
  std::vector<std::string> values;
  int line = 0;
};

// Parses the TOML subset used by retort config files: `key = value` lines where value is a
// "double-quoted string" (with \" \\ \n \t escapes), a 'literal string', an integer or float,
// true/false, or an array [ ... ] of those on one line; `#` comments and blank lines; an optional
// [harvest] table header. Anything else is InvalidArgument "FILE:LINE: ...". Duplicate keys are errors.
Result<std::vector<ConfigEntry>> ParseConfigText(std::string_view text, const std::string& filename);

// Reads and parses `path`. IOError if it cannot be read.
Result<std::vector<ConfigEntry>> ParseConfigFile(const std::string& path);

}  // namespace retort
