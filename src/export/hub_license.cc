// HubLicense implementation: the Hub's licence list (huggingface/hub-docs docs/hub/repositories-licenses.md).
#include "export/hub_license.h"

namespace retort {

namespace {

// Every licence id of the Hub's list (hub-docs @008d54d0), minus "unknown" and "other".
constexpr const char* kHubLicenses[] = {
    "apache-2.0",      "mit",                 "openrail",           "bigscience-openrail-m",
    "creativeml-openrail-m", "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0",
    "artistic-2.0",    "bsl-1.0",             "bsd",                "bsd-2-clause",
    "bsd-3-clause",    "bsd-3-clause-clear",  "c-uda",              "cc",
    "cc0-1.0",         "cc-by-2.0",           "cc-by-2.5",          "cc-by-3.0",
    "cc-by-4.0",       "cc-by-sa-3.0",        "cc-by-sa-4.0",       "cc-by-nc-2.0",
    "cc-by-nc-3.0",    "cc-by-nc-4.0",        "cc-by-nd-4.0",       "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0",     "cc-by-nc-sa-3.0",    "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl",
    "ecl-2.0",         "epl-1.0",             "epl-2.0",            "etalab-2.0",
    "eupl-1.1",        "agpl-3.0",            "gfdl",               "gpl",
    "gpl-2.0",         "gpl-3.0",             "lgpl",               "lgpl-2.1",
    "lgpl-3.0",        "isc",                 "lppl-1.3c",          "ms-pl",
    "mpl-2.0",         "odc-by",              "odbl",               "openrail++",
    "osl-3.0",         "postgresql",          "ofl-1.1",            "ncsa",
    "unlicense",       "zlib",                "pddl",               "lgpl-lr",
    "deepfloyd-if-license", "llama2",         "gemma",
};

}  // namespace

std::optional<std::string> HubLicenseId(std::string_view given) {
  if (given.size() > 64) return std::nullopt;
  std::string lower(given);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  for (const char* id : kHubLicenses)
    if (lower == id) return lower;
  return std::nullopt;
}

}  // namespace retort
