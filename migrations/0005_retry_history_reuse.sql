-- 0005_retry_history_reuse: what `retort harvest --retry-failed` keeps of a failed job before it
-- returns to pending, and answers reused from another run's identical request (--reuse).
CREATE TABLE IF NOT EXISTS job_errors (
  id            INTEGER PRIMARY KEY,
  job_id        INTEGER NOT NULL REFERENCES jobs(id),
  run_id        INTEGER NOT NULL REFERENCES runs(id),
  attempts      INTEGER NOT NULL,         -- error attempts the job had used
  error         TEXT,
  error_status  INTEGER,                  -- HTTP status of the final error, if any
  error_body    TEXT,
  failed_at     INTEGER NOT NULL,         -- Unix ms the job failed
  retried_at    INTEGER NOT NULL          -- Unix ms --retry-failed returned it to pending
);
CREATE INDEX IF NOT EXISTS job_errors_by_job ON job_errors (job_id);
-- The job whose stored answer this response copies (NULL: answered by a request of this run).
ALTER TABLE responses ADD COLUMN reused_from INTEGER REFERENCES jobs(id);
-- Answered requests by canonical request, across runs (what --reuse looks up).
CREATE INDEX IF NOT EXISTS jobs_done_by_key ON jobs (job_key) WHERE state = 'done';
-- Jobs with an error, newest first per run: what status shows (Store::RecentFailures), without
-- a scan of every job of the run (2 s at 1M jobs).
CREATE INDEX IF NOT EXISTS jobs_with_error ON jobs (run_id, updated_at, id)
  WHERE state = 'failed' OR last_error IS NOT NULL;
