// BatchHarvester: a harvest through the provider's batch API (`retort harvest --mode batch`):
// write the run's pending jobs as batch request files, upload, create, poll, download, store
// every result exactly once; resubmit only what is still without an answer, for a few rounds.
// Each step is recorded in the database before the next one starts, so a crash at any point
// (kill -9 included) is resumed by the same command without losing a batch that was created or
// creating a second one for the same jobs.
#pragma once

#include <memory>
#include <string>

#include "retort/clock.h"
#include "retort/harvester.h"
#include "retort/log.h"
#include "retort/status.h"
#include "retort/store.h"

namespace retort {

class BatchHarvester {
 public:
  // `store` and `log` must outlive it. `clock` nullptr = SystemClock().
  BatchHarvester(Store* store, HarvestOptions opts, LogSink* log, Clock* clock = nullptr);
  ~BatchHarvester();

  // Submits and collects until every job is done or failed, --batch-max-rounds are used up,
  // Stop() is called or the provider cannot be reached. Open batches stay open at the provider
  // on a stop: the next run collects them.
  Result<HarvestSummary> Run();
  // No new calls; Run() returns after recording what it has (batches stay open).
  void Stop(const std::string& reason);
  HarvestProgress Progress() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace retort
