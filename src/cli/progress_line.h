// ProgressLine: the one-line progress display `retort harvest` redraws on a terminal.
#pragma once

#include <cstdint>
#include <string>

#include "retort/harvester.h"

namespace retort::cli {

// "1m05s", "2h03m", "42s"; "?" for a negative (unknown) duration.
std::string FormatDuration(double seconds);

// "950", "12.3k", "4.6M", "1.2G": a count in at most 6 characters (rounded to one decimal).
std::string FormatCount(std::int64_t n);

// The progress line for `p`, without a line end:
//   "120/400 done (30.0%)  3.1 req/s  410 tok/s  ETA 1m30s  cost 0.0123  retries 0  429s 0  errors 0  failed 0
//    in flight 4" (one line)
// The percentage is done / total jobs, rounded down (100.0% only when every job is done) and
// left out while the total is 0. `priced` (the run has --price-input or --price-output) shows
// `p.cost`, the run's cost so far; otherwise the tokens of this harvest are shown instead of
// the cost: "tokens 12.3k in / 45.6k out". Pure.
std::string ProgressLine(const HarvestProgress& p, bool priced);

}  // namespace retort::cli
