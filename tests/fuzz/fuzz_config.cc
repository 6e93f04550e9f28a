// Fuzz target: `retort harvest --config FILE` parsing (CLI11 TOML/INI reader + the option table).
// The App is set up as in src/cli/cmd_harvest.cc: every HarvestOptionTable entry is a flag and
// a config key; after parsing, the values are applied in table order and Validate() runs.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_split.h"
#include "retort/harvester.h"

using retort::fuzz::Require;

namespace {

bool Documented(const retort::Status& st) {
  return st.ok() || st.code() == retort::StatusCode::kInvalidArgument;
}

// A scratch file for the config text, unique to this process, reused by every input.
const std::string& ConfigPath() {
  static const std::string path = [] {
    char tmpl[] = "/tmp/retort_fuzz_config_XXXXXX";
    int fd = mkstemp(tmpl);
    Require(fd >= 0, "mkstemp failed");
    close(fd);
    return std::string(tmpl);
  }();
  return path;
}

void ParseConfig(std::string_view text) {
  {
    std::FILE* f = std::fopen(ConfigPath().c_str(), "wb");
    Require(f != nullptr, "cannot write the config file");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  std::string db;
  std::map<std::string, std::string> scalars;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, bool> flags;
  CLI::App app{"fuzz"};
  auto* sub = app.add_subcommand("harvest", "");
  sub->set_config("--config", "", "config");
  sub->add_option("--db", db, "db")->required();
  for (const retort::HarvestOptionSpec& spec : retort::HarvestOptionTable()) {
    std::string flag = std::string("--") + spec.name;
    switch (spec.kind) {
      case retort::HarvestOptionSpec::Kind::kList: sub->add_option(flag, lists[spec.name], spec.help); break;
      case retort::HarvestOptionSpec::Kind::kBool: sub->add_flag(flag, flags[spec.name], spec.help); break;
      default: sub->add_option(flag, scalars[spec.name], spec.help);
    }
  }
  std::vector<std::string> args = {"retort", "harvest", "--config", ConfigPath()};
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return;  // what CLI11_PARSE in main() catches and reports
  }
  retort::HarvestOptions opts;
  for (const retort::HarvestOptionSpec& spec : retort::HarvestOptionTable()) {
    retort::Status st;
    if (auto it = scalars.find(spec.name); it != scalars.end() && !it->second.empty()) st = spec.apply(opts, it->second);
    if (auto it = lists.find(spec.name); it != lists.end())
      for (const std::string& v : it->second)
        if (st.ok()) st = spec.apply(opts, v);
    if (auto it = flags.find(spec.name); it != flags.end() && it->second) st = spec.apply(opts, "true");
    Require(Documented(st), "option apply returned a code other than InvalidArgument");
    if (!st.ok()) return;
  }
  Require(Documented(opts.Validate()), "Validate returned a code other than InvalidArgument");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseConfig(text);
  // Each option's parser directly on the raw text (what a flag value or config value can hold).
  if (size <= 4096) {
    for (const retort::HarvestOptionSpec& spec : retort::HarvestOptionTable()) {
      retort::HarvestOptions opts;
      Require(Documented(spec.apply(opts, std::string(text))), "option apply returned a code other than InvalidArgument");
    }
  }
  return 0;
}
