// Manifest implementation: ordered JSON for manifest.json and a Markdown dataset card.
#include "export/manifest.h"

#include <ctime>
#include <optional>
#include <nlohmann/json.hpp>

#include "export/hub_license.h"
#include "export/text_filters.h"
#include "store/corpus_json.h"

namespace retort {

using ojson = nlohmann::ordered_json;

std::string EndpointHost(const std::string& url) {
  std::string s = url;
  if (size_t p = s.find("://"); p != std::string::npos) s = s.substr(p + 3);
  if (size_t p = s.find_first_of("/?#"); p != std::string::npos) s = s.substr(0, p);
  if (size_t p = s.rfind('@'); p != std::string::npos) s = s.substr(p + 1);
  return s;
}

static std::string IsoUtc(Millis ms) {
  if (ms <= 0) return "";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

static std::string Dump(const ojson& j, int indent) {
  return j.dump(indent, ' ', false, ojson::error_handler_t::replace);
}

static ojson TeacherJson(const ManifestInput& in) {
  ojson t;
  t["provider"] = in.run.spec.provider;
  t["model"] = in.run.spec.model;
  ojson hosts = ojson::array();
  for (const std::string& u : in.run.spec.base_urls) hosts.push_back(EndpointHost(u));
  t["endpoints"] = hosts;
  ojson params = ojson::parse(ParamsToJson(in.run.spec.params), nullptr, false);
  t["params"] = params.is_discarded() ? ojson::object() : params;
  if (in.run.tls_insecure) t["tls_insecure"] = true;  // provenance: some answers came over unverified TLS
  return t;
}

std::string BuildManifestJson(const ManifestInput& in) {
  const ExportSummary& s = *in.summary;
  ojson m;
  m["retort_version"] = RETORT_VERSION;
  m["run"] = in.run.spec.name;
  m["prompt_set"] = in.run.spec.set;
  m["format"] = ExportFormatName(in.opts.format);
  m["fields"] = in.opts.fields == ExportFields::kMinimal ? "minimal" : "full";
  m["reasoning"] = ReasoningModeName(in.opts.EffectiveReasoning());
  m["compression"] = CompressionName(in.opts.compress);
  m["teacher"] = TeacherJson(in);
  m["responses_received"] = {{"first", IsoUtc(in.totals.first_received_ms)},
                             {"last", IsoUtc(in.totals.last_received_ms)}};
  ojson counts;
  counts["jobs"] = {{"total", in.totals.jobs.total()},   {"done", in.totals.jobs.done},
                    {"failed", in.totals.jobs.failed},   {"pending", in.totals.jobs.pending},
                    {"leased", in.totals.jobs.leased}};
  counts["responses"] = s.responses;
  counts["exported"] = s.exported;
  ojson filtered = ojson::object();
  for (const auto& [k, v] : s.filtered) filtered[k] = v;
  counts["filtered"] = filtered;
  ojson pats = ojson::array();
  for (const auto& [p, n] : in.pattern_counts) pats.push_back({{"pattern", p}, {"dropped", n}});
  counts["drop_patterns"] = pats;
  counts["records_with_reasoning"] = in.reasoning_records;
  counts["reasoning_dropped"] = in.reasoning_dropped;
  counts["reused"] = in.reused_records;
  m["counts"] = counts;
  if (in.text_filters) in.text_filters->AddToManifest(&m);
  if (!in.verify_json.empty()) m["verify"] = ojson::parse(in.verify_json, nullptr, false);
  ojson splits = ojson::array();
  const std::vector<SplitSpec> specs =
      in.opts.splits.empty() ? std::vector<SplitSpec>{{"train", 1.0}} : in.opts.splits;
  for (size_t i = 0; i < s.splits.size(); ++i) {
    const SplitSummary& sp = s.splits[i];
    ojson shards = ojson::array();
    std::int64_t bytes = 0, ubytes = 0;
    for (const ShardInfo& sh : sp.shards) {
      shards.push_back({{"file", sh.file},
                        {"records", sh.records},
                        {"bytes", sh.bytes},
                        {"uncompressed_bytes", sh.uncompressed_bytes},
                        {"sha256", sh.sha256}});
      bytes += sh.bytes;
      ubytes += sh.uncompressed_bytes;
    }
    splits.push_back({{"name", sp.name},
                      {"fraction", i < specs.size() ? specs[i].fraction : 0.0},
                      {"records", sp.records},
                      {"bytes", bytes},
                      {"uncompressed_bytes", ubytes},
                      {"shards", shards}});
  }
  m["splits"] = splits;
  ojson opts = ojson::parse(in.opts.ToJson(), nullptr, false);
  m["options"] = opts.is_discarded() ? ojson::object() : opts;
  return Dump(m, 2) + "\n";
}

static std::string SizeCategory(std::int64_t n) {
  if (n < 1000) return "n<1K";
  if (n < 10000) return "1K<n<10K";
  if (n < 100000) return "10K<n<100K";
  if (n < 1000000) return "100K<n<1M";
  if (n < 10000000) return "1M<n<10M";
  if (n < 100000000) return "10M<n<100M";
  if (n < 1000000000) return "100M<n<1B";
  return "1B<n<10B";
}

// A YAML double-quoted scalar (JSON string syntax is valid YAML).
static std::string Q(const std::string& s) { return Dump(ojson(s), -1); }

std::string BuildDatasetCard(const ManifestInput& in) {
  const ExportSummary& s = *in.summary;
  const RunSpec& spec = in.run.spec;
  const std::optional<std::string> hub_id = HubLicenseId(in.opts.license);
  const bool named = !in.opts.license_name.empty() || !in.opts.license_link.empty();
  const std::string lic = hub_id ? *hub_id : in.opts.license.empty() && !named ? "unknown" : "other";
  std::string c = "---\n";
  c += "license: " + lic + "\n";
  if (!in.opts.license_name.empty()) c += "license_name: " + Q(in.opts.license_name) + "\n";
  if (!in.opts.license_link.empty()) c += "license_link: " + Q(in.opts.license_link) + "\n";
  c += "pretty_name: " + Q(spec.name) + "\n";
  c += "task_categories:\n- text-generation\n";
  c += "annotations_creators:\n- machine-generated\n";
  c += "size_categories:\n- " + SizeCategory(s.exported) + "\n";
  c += "tags:\n- synthetic\n- distillation\n- retort\n";
  c += "configs:\n- config_name: default\n  data_files:\n";
  for (const SplitSummary& sp : s.splits) {
    if (sp.records == 0) continue;  // no files for an empty split
    c += "  - split: " + sp.name + "\n    path: \"data/" + sp.name + "-*\"\n";
  }
  c += "---\n\n";
  c += "# " + spec.name + "\n\n";
  c += "Responses of the teacher model `" + spec.model + "` to the prompt set `" + spec.set +
       "`, exported by retort " + RETORT_VERSION + " in the `" + ExportFormatName(in.opts.format) + "` format (" +
       (in.opts.fields == ExportFields::kMinimal ? "minimal" : "full") + " fields).\n\n";
  c += "## How it was made\n\n";
  c += "Each prompt was sent to the teacher with the generation parameters below; every stored response "
       "that passed the filters became one record. Prompts are assigned to splits by a hash of the prompt id "
       "(seed " + std::to_string(in.opts.seed) + "), so all samples of a prompt share a split. ";
  c += "Reasoning text: " + std::string(ReasoningModeName(in.opts.EffectiveReasoning())) + ".";
  if (in.totals.first_received_ms > 0)
    c += " Responses were received between " + IsoUtc(in.totals.first_received_ms) + " and " +
         IsoUtc(in.totals.last_received_ms) + ".";
  c += "\n\nLoad with `datasets.load_dataset(\"json\", data_dir=\"data\")` or point your trainer at `data/`.\n\n";
  if (in.text_filters) c += in.text_filters->CardText();
  c += "## Teacher\n\n";
  c += "- provider: `" + spec.provider + "`\n- model: `" + spec.model + "`\n- parameters: `" +
       ParamsToJson(spec.params) + "`\n";
  std::string hosts;
  for (const std::string& u : spec.base_urls) hosts += (hosts.empty() ? "`" : ", `") + EndpointHost(u) + "`";
  if (!hosts.empty()) c += "- endpoints: " + hosts + "\n";
  c += "\n## Counts\n\n| split | records | shards |\n|---|---:|---:|\n";
  for (const SplitSummary& sp : s.splits)
    c += "| " + sp.name + " | " + std::to_string(sp.records) + " | " + std::to_string(sp.shards.size()) + " |\n";
  c += "\nResponses read: " + std::to_string(s.responses) + "; records exported: " + std::to_string(s.exported) +
       ". Dropped by filter:";
  for (const auto& [k, v] : s.filtered) c += " " + k + " " + std::to_string(v) + ";";
  c += " (see `manifest.json`).\n\n";
  c += "## Licence and terms\n\n";
  if (in.opts.license.empty() && !named)
    c += "No licence was given at export (`--license`).";
  else if (hub_id)
    c += "Licence: " + *hub_id + ".";
  else {
    c += "Licence: " + (in.opts.license.empty() ? in.opts.license_name : in.opts.license);
    if (!in.opts.license_link.empty()) c += " (" + in.opts.license_link + ")";
    c += ".";
  }
  c += " The records are outputs of `" + spec.model +
       "`; check the teacher provider's terms of use before training or redistributing.\n";
  return c;
}

}  // namespace retort
