-- 0004: the persistent job queue (pruning, fine-tuning and other long work).
-- Times are Unix epoch milliseconds (BIGINT), UTC.

CREATE TABLE jobs (
  -- SQLite's implicit rowid, which the queue orders by (FIFO within a priority): made explicit.
  rowid             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
  id                TEXT PRIMARY KEY NOT NULL,  -- "job-<hex>"
  kind              TEXT NOT NULL,              -- the registered handler, e.g. "build_variant"
  payload           TEXT NOT NULL DEFAULT '{}', -- JSON object handed to the handler
  state             TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  priority          BIGINT NOT NULL DEFAULT 0, -- higher runs first; FIFO within a priority
  dedupe_key        TEXT,                       -- at most one queued/running job per key
  phase             TEXT NOT NULL DEFAULT '',   -- handler-reported step, e.g. "fine-tune"
  percent           DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (percent >= 0 AND percent <= 100),
  attempts          BIGINT NOT NULL DEFAULT 0, -- claims so far, including the running one
  max_attempts      BIGINT NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  not_before        BIGINT NOT NULL DEFAULT 0, -- retry backoff: not claimed before this time
  cancel_requested  BIGINT NOT NULL DEFAULT 0,
  checkpoint_sha256 TEXT,                       -- blob with the handler's resumable state
  result            TEXT NOT NULL DEFAULT '{}', -- JSON object from a successful handler
  error             TEXT NOT NULL DEFAULT '',   -- "code: message" of the last failure
  worker            TEXT NOT NULL DEFAULT '',   -- who runs it: "<pid>/<thread>"
  created_at        BIGINT NOT NULL,
  updated_at        BIGINT NOT NULL,
  started_at        BIGINT,
  finished_at       BIGINT
);
CREATE INDEX jobs_claim ON jobs (state, priority DESC, not_before);
CREATE INDEX jobs_kind ON jobs (kind, created_at);
CREATE UNIQUE INDEX jobs_active_dedupe ON jobs (dedupe_key)
  WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');
