// DatasetInfo: DIR/dataset_info.json, the registration LLaMA-Factory reads to load the shards.
#pragma once

#include <string>

#include "export/manifest.h"

namespace retort {

// dataset_info.json text (pretty, trailing newline), or "" when the record format has no
// LLaMA-Factory mapping (prompt-completion). One entry per split with records, named
// "<run>_<split>", whose file_name is the split's shard relative to DIR (LLaMA-Factory joins it
// to its dataset_dir, so set dataset_dir to DIR). LLaMA-Factory's file_name is one file or one
// folder and data/ holds every split, so a split written in several shards gets one entry per
// shard, "<run>_<split>_NNNNN" (list them all in `dataset:`). `formatting`, `columns` and `tags`
// map exactly the keys our records have: sharegpt -> conversations/from/value; messages ->
// sharegpt with role/content tags; alpaca -> instruction/input/output/system/history.
// LLaMA-Factory's file loader reads .json/.jsonl but not .jsonl.gz/.jsonl.zst: for a
// compressed export the entries name the decompressed files and say so in "retort_note".
// Deterministic.
std::string BuildLlamaFactoryDatasetInfo(const ManifestInput& in);

}  // namespace retort
