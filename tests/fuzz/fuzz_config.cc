// Fuzz target: `retort harvest --config FILE` parsing (ParseConfigText) and every option's value
// parser, applied through HarvestOptionTable exactly as src/cli/cmd_harvest.cc does.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_split.h"
#include "harvest/config_file.h"
#include "retort/harvester.h"

using retort::fuzz::Require;

namespace {

bool Documented(const retort::Status& st) { return st.ok() || st.code() == retort::StatusCode::kInvalidArgument; }

const retort::HarvestOptionSpec* Find(const std::string& key) {
  for (const retort::HarvestOptionSpec& s : retort::HarvestOptionTable())
    if (key == s.name) return &s;
  return nullptr;
}

void ApplyConfig(std::string_view text) {
  retort::Result<std::vector<retort::ConfigEntry>> entries = retort::ParseConfigText(text, "fuzz.toml");
  Require(Documented(entries.status()), "ParseConfigText returned a code other than InvalidArgument");
  if (!entries.ok()) return;
  retort::HarvestOptions opts;
  for (const retort::ConfigEntry& e : *entries) {
    Require(!e.key.empty() && e.line >= 1, "config entry without key or line");
    Require(e.key.find('_') == std::string::npos, "config key not normalised to the flag spelling");
    const retort::HarvestOptionSpec* spec = Find(e.key);
    if (spec == nullptr) return;  // cmd_harvest reports "unknown option"
    if (e.values.size() != 1 && spec->kind != retort::HarvestOptionSpec::Kind::kList) return;
    for (const std::string& v : e.values) {
      retort::Status st = spec->apply(opts, v);
      Require(Documented(st), "option apply returned a code other than InvalidArgument");
      if (!st.ok()) return;
    }
  }
  Require(Documented(opts.Validate()), "Validate returned a code other than InvalidArgument");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ApplyConfig(text);
  // Each option's parser directly on the raw text (what a flag value can hold).
  if (size <= 4096) {
    for (const retort::HarvestOptionSpec& spec : retort::HarvestOptionTable()) {
      retort::HarvestOptions opts;
      Require(Documented(spec.apply(opts, std::string(text))), "option apply returned a code other than InvalidArgument");
    }
  }
  return 0;
}
