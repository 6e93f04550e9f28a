-- 0001_init: the corpus database. Every table is plain SQL so users can query it with sqlite3.
-- Enum-like TEXT columns are frozen: their values are never renamed (see docs/data-model.md).

CREATE TABLE prompt_sets (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL            -- Unix ms
);

CREATE TABLE prompts (
  id            INTEGER PRIMARY KEY,
  set_id        INTEGER NOT NULL REFERENCES prompt_sets(id),
  prompt_key    TEXT NOT NULL,            -- user "id", or "h:" + 16 hex of content_hash
  content_hash  TEXT NOT NULL,            -- SHA-256 hex of the canonical messages JSON
  messages      TEXT NOT NULL,            -- JSON array of {"role","content"}
  metadata      TEXT,                     -- JSON object or NULL; carried through to export
  source        TEXT NOT NULL,            -- "file:line" of first import
  UNIQUE (set_id, prompt_key),
  UNIQUE (set_id, content_hash)
);

CREATE TABLE runs (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  set_id      INTEGER NOT NULL REFERENCES prompt_sets(id),
  provider    TEXT NOT NULL,              -- "openai-chat", "anthropic-messages"
  base_urls   TEXT NOT NULL,              -- JSON array of base URLs (no credentials)
  model       TEXT NOT NULL,
  params      TEXT NOT NULL,              -- canonical JSON of the generation parameters
  state       TEXT NOT NULL,              -- frozen: created|running|paused|stopped|cancelled|done
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  lock_owner  TEXT,                       -- "host:pid:nonce" of the harvester holding the run
  lock_heartbeat INTEGER,                 -- Unix ms of the holder's last heartbeat
  stop_reason TEXT                        -- why the last harvest stopped (budget, auth, signal, ...)
);

CREATE TABLE jobs (
  id              INTEGER PRIMARY KEY,
  run_id          INTEGER NOT NULL REFERENCES runs(id),
  prompt_id       INTEGER NOT NULL REFERENCES prompts(id),
  sample          INTEGER NOT NULL,       -- 0-based sample index
  job_key         TEXT NOT NULL,          -- SHA-256 hex of canonical {model, messages, params, sample}
  state           TEXT NOT NULL,          -- frozen: pending|leased|done|failed
  attempts        INTEGER NOT NULL DEFAULT 0,   -- error attempts used (429s do not count)
  next_attempt_at INTEGER NOT NULL DEFAULT 0,   -- Unix ms
  last_error      TEXT,
  error_status    INTEGER,                -- HTTP status of the final error, if any
  error_body      TEXT,                   -- body of the final non-retryable error
  updated_at      INTEGER NOT NULL,
  UNIQUE (run_id, job_key),
  UNIQUE (run_id, prompt_id, sample)
);
CREATE INDEX jobs_by_state ON jobs (run_id, state, id);

CREATE TABLE responses (
  job_id             INTEGER PRIMARY KEY REFERENCES jobs(id),
  run_id             INTEGER NOT NULL REFERENCES runs(id),
  body               TEXT NOT NULL,       -- raw body as received (streams: assembled JSON)
  content            TEXT NOT NULL,
  reasoning          TEXT,
  reasoning_source   TEXT,
  finish_reason      TEXT NOT NULL,
  prompt_tokens      INTEGER,
  completion_tokens  INTEGER,
  reasoning_tokens   INTEGER,
  latency_ms         REAL NOT NULL,
  first_token_ms     REAL,
  http_status        INTEGER NOT NULL,
  request_id         TEXT,
  replica            TEXT,
  received_at        INTEGER NOT NULL,    -- Unix ms
  logprobs           BLOB                 -- compact JSON of per-token logprobs, or NULL
);
CREATE INDEX responses_by_run ON responses (run_id, job_id);

CREATE TABLE exports (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES runs(id),
  out_dir     TEXT NOT NULL,
  options     TEXT NOT NULL,              -- canonical JSON of the export options
  state       TEXT NOT NULL,              -- frozen: running|done|failed
  manifest    TEXT,                       -- manifest.json as written
  error       TEXT,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER
);
