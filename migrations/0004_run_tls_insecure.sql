-- 0004_run_tls_insecure: the runs any of whose harvests skipped TLS certificate verification
-- (--insecure), for good: status shows it and exports record it as provenance.
CREATE TABLE IF NOT EXISTS run_tls_insecure (
  run_id     INTEGER PRIMARY KEY REFERENCES runs(id),
  first_at   INTEGER NOT NULL           -- Unix ms of the first such harvest
);
