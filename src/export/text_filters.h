// TextFilters: the export's optional text-level filters (--decontaminate, then --near-dup) and what the manifest says of them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "export/decontaminate.h"
#include "export/near_dup_filter.h"
#include "retort/exporter.h"
#include "retort/store.h"

namespace retort {

// Applied to rows that passed ExportFilter and could be formatted, in (prompt key, sample)
// order. Not thread-safe.
class TextFilters {
 public:
  // Loads the --decontaminate sets from `store` (InvalidArgument naming the flag for an unknown
  // set) and creates the --near-dup index with its temporary file in `spill_dir`, sized for
  // `expected_rows`. Call before reading the responses (the store must not be busy).
  static Result<std::unique_ptr<TextFilters>> Create(Store& store, const ExportOptions& opts,
                                                     const std::string& spill_dir, std::int64_t expected_rows);

  bool empty() const { return !decon_ && !near_dup_; }
  // "" = keep; else the filter name (kFilterDecontaminated, kFilterNearDuplicate), counted.
  Result<const char*> Check(const ExportRowView& row);
  // Adds this export's filter counts (only of the filters that are on) to `filtered`.
  void AddCounts(std::map<std::string, std::int64_t>* filtered) const;
  // Adds "near_dup" {threshold, on, shingles, permutations, bands, rows, dropped} and
  // "decontamination" {ngram, sets:[{name, prompts, removed}], removed} to the manifest (only
  // those that are on).
  void AddToManifest(nlohmann::ordered_json* m) const;
  // A paragraph for the dataset card ("" when no filter is on).
  std::string CardText() const;

 private:
  TextFilters() = default;

  std::unique_ptr<Decontaminator> decon_;
  std::unique_ptr<NearDupFilter> near_dup_;
  std::vector<std::int64_t> removed_per_set_;
  std::int64_t decontaminated_ = 0;
};

}  // namespace retort
