-- 0003_prompt_hashes: content dedup through a compact side index.
-- Until now UNIQUE (set_id, content_hash) on prompts kept one row per content: an index of
-- 64-character hex keys in random order (85 MB at 1M prompts), so every import insert touched an
-- uncached page. prompts is rebuilt without that constraint (same columns, ids and rows; the
-- content_hash column stays for queries), and prompt_hashes maps the first 8 bytes of each
-- prompt's content hash to its id. retort checks content there before it inserts a prompt (a
-- 64-bit match is confirmed against prompts.content_hash, so a collision never merges two
-- prompts) and adds each transaction's new entries in key order.
-- Applied with foreign keys off (the migration runner checks them before it commits).
-- Idempotent: re-running it on a migrated database changes nothing.

CREATE TABLE prompts_new (
  id            INTEGER PRIMARY KEY,
  set_id        INTEGER NOT NULL REFERENCES prompt_sets(id),
  prompt_key    TEXT NOT NULL,            -- user "id", or "h:" + 16 hex of content_hash
  content_hash  TEXT NOT NULL,            -- SHA-256 hex of the canonical messages JSON
  messages      TEXT NOT NULL,            -- JSON array of {"role","content"}
  metadata      TEXT,                     -- JSON object or NULL; carried through to export
  source        TEXT NOT NULL,            -- "file:line" of first import
  UNIQUE (set_id, prompt_key)
);
INSERT INTO prompts_new (id, set_id, prompt_key, content_hash, messages, metadata, source)
  SELECT id, set_id, prompt_key, content_hash, messages, metadata, source FROM prompts ORDER BY id;
DROP TABLE prompts;
ALTER TABLE prompts_new RENAME TO prompts;

CREATE TABLE IF NOT EXISTS prompt_hashes (
  set_id     INTEGER NOT NULL,            -- prompts.set_id
  hash64     INTEGER NOT NULL,            -- first 16 hex digits of prompts.content_hash as a signed 64-bit integer
  prompt_id  INTEGER NOT NULL,            -- prompts.id
  PRIMARY KEY (set_id, hash64, prompt_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO prompt_hashes (set_id, hash64, prompt_id)
  SELECT set_id,
         ((instr('0123456789abcdef', substr(content_hash, 1, 1)) - 1) << 60) |
         ((instr('0123456789abcdef', substr(content_hash, 2, 1)) - 1) << 56) |
         ((instr('0123456789abcdef', substr(content_hash, 3, 1)) - 1) << 52) |
         ((instr('0123456789abcdef', substr(content_hash, 4, 1)) - 1) << 48) |
         ((instr('0123456789abcdef', substr(content_hash, 5, 1)) - 1) << 44) |
         ((instr('0123456789abcdef', substr(content_hash, 6, 1)) - 1) << 40) |
         ((instr('0123456789abcdef', substr(content_hash, 7, 1)) - 1) << 36) |
         ((instr('0123456789abcdef', substr(content_hash, 8, 1)) - 1) << 32) |
         ((instr('0123456789abcdef', substr(content_hash, 9, 1)) - 1) << 28) |
         ((instr('0123456789abcdef', substr(content_hash, 10, 1)) - 1) << 24) |
         ((instr('0123456789abcdef', substr(content_hash, 11, 1)) - 1) << 20) |
         ((instr('0123456789abcdef', substr(content_hash, 12, 1)) - 1) << 16) |
         ((instr('0123456789abcdef', substr(content_hash, 13, 1)) - 1) << 12) |
         ((instr('0123456789abcdef', substr(content_hash, 14, 1)) - 1) << 8) |
         ((instr('0123456789abcdef', substr(content_hash, 15, 1)) - 1) << 4) |
         ((instr('0123456789abcdef', substr(content_hash, 16, 1)) - 1) << 0),
         id
  FROM prompts;
