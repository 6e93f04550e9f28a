-- 0007_run_totals: each run's response totals kept as responses are stored, so that reading
-- them (status, GET /v1/runs, /metrics, the dashboard's poll every second) costs one row, not
-- a scan of every response and its body (about 1-2 s at 1M responses, issue #16). The Store
-- keeps them in the transaction that stores the responses (Store::ApplyJobUpdates adds each
-- commit's sums in one statement; Store::ReuseAnswers recounts its run); responses are never
-- updated or deleted. Not a trigger: an upsert per response made inserting one 1.5-1.9x as costly.
CREATE TABLE IF NOT EXISTS run_totals (
  run_id             INTEGER PRIMARY KEY REFERENCES runs(id),
  responses          INTEGER NOT NULL,
  reused             INTEGER NOT NULL,      -- copied from another run's answer (--reuse)
  prompt_tokens      INTEGER NOT NULL,      -- token sums: answers of this run's own requests only
  completion_tokens  INTEGER NOT NULL,
  reasoning_tokens   INTEGER NOT NULL,
  body_bytes         INTEGER NOT NULL,      -- raw bodies stored, reused ones included
  first_received_at  INTEGER NOT NULL,      -- Unix ms
  last_received_at   INTEGER NOT NULL
);
INSERT INTO run_totals(run_id, responses, reused, prompt_tokens, completion_tokens, reasoning_tokens, body_bytes,
                       first_received_at, last_received_at)
  SELECT run_id, COUNT(*), COUNT(reused_from),
         COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(prompt_tokens, 0) END), 0),
         COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(completion_tokens, 0) END), 0),
         COALESCE(SUM(CASE WHEN reused_from IS NULL THEN MAX(reasoning_tokens, 0) END), 0),
         COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0), MIN(received_at), MAX(received_at)
  FROM responses GROUP BY run_id;
