-- 0006_batch_runs: batch harvests (`retort harvest --mode batch`, issue #14). A run is online or
-- batch; each provider batch of a batch run is recorded step by step, durably before the next
-- step, so that after a crash at any point the same command finds every batch it created.
ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'online';   -- frozen: online|batch
CREATE TABLE IF NOT EXISTS batches (
  id                 INTEGER PRIMARY KEY,
  run_id             INTEGER NOT NULL REFERENCES runs(id),
  round              INTEGER NOT NULL,      -- 1 = first submission; later rounds resubmit what is left
  part               INTEGER NOT NULL,      -- 1.. within the round (a round splits at the per-batch limits)
  provider           TEXT NOT NULL,         -- openai-chat | anthropic-messages
  -- frozen: written (input file on disk) | uploaded (file_id known) | creating (create sent, id
  -- not yet known) | created (batch_id known) | ended (provider terminal state) | ingested
  step               TEXT NOT NULL,
  input_path         TEXT NOT NULL,         -- the request file this batch sends
  requests           INTEGER NOT NULL,
  bytes              INTEGER NOT NULL,
  tag                TEXT NOT NULL,         -- metadata tag naming the run and part (crash recovery)
  file_id            TEXT,                  -- provider ids, NULL until known
  batch_id           TEXT,
  provider_status    TEXT,                  -- as last polled
  counts             TEXT,                  -- the provider's request counts as last polled (JSON)
  output_file_id     TEXT,
  error_file_id      TEXT,
  error              TEXT,                  -- why the batch failed or was not created, if it did
  create_started_at  INTEGER,               -- Unix ms the create call was first sent
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  UNIQUE (run_id, round, part)
);
-- The jobs each batch carries: a job in a batch that is not yet ingested is not written again.
CREATE TABLE IF NOT EXISTS batch_jobs (
  batch_id  INTEGER NOT NULL REFERENCES batches(id),
  job_id    INTEGER NOT NULL REFERENCES jobs(id),
  PRIMARY KEY (batch_id, job_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batch_jobs_by_job ON batch_jobs (job_id);
