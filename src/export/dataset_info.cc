// DatasetInfo implementation: LLaMA-Factory dataset_info.json entries (columns/tags) for each split's shards.
#include "export/dataset_info.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace retort {

using ojson = nlohmann::ordered_json;

namespace {

// "data/train-00000-of-00001.jsonl.gz" -> "data/train-00000-of-00001.jsonl".
std::string Decompressed(const std::string& file) {
  for (const char* ext : {".gz", ".zst"}) {
    const std::string e = ext;
    if (file.size() > e.size() && file.compare(file.size() - e.size(), e.size(), e) == 0)
      return file.substr(0, file.size() - e.size());
  }
  return file;
}

// formatting, columns and tags of `format`; false for a format LLaMA-Factory cannot read.
bool Mapping(ExportFormat format, ojson* entry) {
  switch (format) {
    case ExportFormat::kShareGpt:
      (*entry)["formatting"] = "sharegpt";
      (*entry)["columns"] = {{"messages", "conversations"}};
      (*entry)["tags"] = {{"role_tag", "from"},   {"content_tag", "value"}, {"user_tag", "human"},
                          {"assistant_tag", "gpt"}, {"system_tag", "system"}};
      return true;
    case ExportFormat::kMessages:
      (*entry)["formatting"] = "sharegpt";
      (*entry)["columns"] = {{"messages", "messages"}};
      (*entry)["tags"] = {{"role_tag", "role"},           {"content_tag", "content"}, {"user_tag", "user"},
                          {"assistant_tag", "assistant"}, {"system_tag", "system"}};
      return true;
    case ExportFormat::kAlpaca:
      (*entry)["formatting"] = "alpaca";
      (*entry)["columns"] = {{"prompt", "instruction"}, {"query", "input"},    {"response", "output"},
                             {"system", "system"},      {"history", "history"}};
      return true;
    case ExportFormat::kPromptCompletion:
      return false;
  }
  return false;
}

}  // namespace

std::string BuildLlamaFactoryDatasetInfo(const ManifestInput& in) {
  ojson mapping;
  if (!Mapping(in.opts.format, &mapping)) return "";
  const bool compressed = in.opts.compress != Compression::kNone;
  ojson info = ojson::object();
  for (const SplitSummary& sp : in.summary->splits) {
    for (size_t i = 0; i < sp.shards.size(); ++i) {
      std::string name = in.run.spec.name + "_" + sp.name;
      if (sp.shards.size() > 1) {
        char idx[32];
        std::snprintf(idx, sizeof idx, "_%05zu", i);
        name += idx;
      }
      ojson e;
      e["file_name"] = Decompressed(sp.shards[i].file);
      for (const auto& [k, v] : mapping.items()) e[k] = v;
      if (compressed)
        e["retort_note"] = std::string("LLaMA-Factory's file loader reads .jsonl but not compressed shards: run `") +
                           (in.opts.compress == Compression::kGzip ? "gunzip -k data/*.jsonl.gz"
                                                                   : "zstd -d data/*.jsonl.zst") +
                           "` in this folder first; file_name names the decompressed file";
      info[name] = std::move(e);
    }
  }
  return info.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

}  // namespace retort
