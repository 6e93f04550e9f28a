-- 0002_run_options: the operational options a run was started with by `retort serve`
-- (base URLs, api_key_env, concurrency, rates, budgets, ...), so that a restarted server can
-- resume it. Never holds a secret: an API key is named by its environment variable only.
CREATE TABLE IF NOT EXISTS run_options (
  run_id      INTEGER PRIMARY KEY REFERENCES runs(id),
  options     TEXT NOT NULL,              -- JSON object: option name (flag without dashes) -> value(s)
  updated_at  INTEGER NOT NULL            -- Unix ms
);
