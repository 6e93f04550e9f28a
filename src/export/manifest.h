// Manifest: DIR/manifest.json (shards, checksums, counts, teacher, options) and DIR/README.md (HF card).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "retort/exporter.h"
#include "retort/store.h"

namespace retort {

class TextFilters;

// Everything the manifest and the card say. Contains no wall-clock time of the export itself.
struct ManifestInput {
  ExportOptions opts;
  RunInfo run;
  RunTotals totals;  // jobs and the time range of the harvested responses
  const ExportSummary* summary = nullptr;  // splits, counts
  std::vector<std::pair<std::string, std::int64_t>> pattern_counts;
  std::int64_t reasoning_records = 0;  // exported records that had reasoning text
  std::int64_t reasoning_dropped = 0;  // ... whose reasoning was dropped (--reasoning drop / minimal)
  std::int64_t reused_records = 0;     // exported records copied from another run's identical request
  const TextFilters* text_filters = nullptr;  // --decontaminate / --near-dup, when on (may be nullptr)
  std::string verify_json;             // VerifyReport::ToJson() with --verify, else ""
};

// "host[:port]" of a base URL: scheme, userinfo, path, query and fragment removed.
std::string EndpointHost(const std::string& url);

// manifest.json text (pretty, deliberate key order, trailing newline). Deterministic.
std::string BuildManifestJson(const ManifestInput& in);

// README.md text: YAML front matter (license, pretty_name, size_categories, configs -> data/)
// then prose: what, how made, teacher, counts, licence/terms. Deterministic.
std::string BuildDatasetCard(const ManifestInput& in);

}  // namespace retort
