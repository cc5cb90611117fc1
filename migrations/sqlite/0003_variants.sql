-- 0003: master models, their variant ladders, deployments (device → variant assignments),
-- agent-reported events and telemetry. Times are Unix epoch milliseconds (INTEGER), UTC.

-- Uploaded TorchScript masters. The file lives in the blob store under blob_sha256.
CREATE TABLE models (
  id           TEXT PRIMARY KEY NOT NULL,     -- "mdl-<hex>"
  name         TEXT NOT NULL,
  dataset      TEXT NOT NULL,                 -- e.g. "fashion-mnist"
  input_shape  TEXT NOT NULL,                 -- JSON array at batch 1: [1, 1, 28, 28]
  class_names  TEXT NOT NULL,                 -- JSON array of strings
  num_classes  INTEGER NOT NULL CHECK (num_classes >= 1),
  parameters   INTEGER NOT NULL,
  macs         INTEGER NOT NULL,
  activation_bytes INTEGER NOT NULL DEFAULT 0,
  blob_sha256  TEXT NOT NULL,
  size_bytes   INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  created_by   TEXT NOT NULL
) STRICT;

-- The ladder: one variant per (model, budget bucket). A variant is 'building' while its job runs,
-- 'ready' once pruned, tuned, stored and signed, 'failed' with the reason otherwise.
CREATE TABLE variants (
  id              TEXT PRIMARY KEY NOT NULL,  -- "var-<hex>"
  model_id        TEXT NOT NULL REFERENCES models (id),
  bucket          TEXT NOT NULL,              -- VariantLadder bucket key
  version         INTEGER NOT NULL UNIQUE,    -- server-wide, only increases
  status          TEXT NOT NULL CHECK (status IN ('building', 'ready', 'failed')),
  budget          TEXT NOT NULL,              -- JSON Budget the variant was built for
  job_id          TEXT NOT NULL DEFAULT '',
  blob_sha256     TEXT,
  size_bytes      INTEGER,
  parameters      INTEGER,
  macs            INTEGER,
  activation_bytes INTEGER,
  accuracy        REAL,
  accuracy_floor  REAL,
  manifest        BLOB,                       -- the exact signed bytes
  signature       BLOB,                       -- raw 64-byte Ed25519 signature
  key_id          TEXT,
  probe_sha256    TEXT,                       -- labeled probe set blob, if any
  error           TEXT NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  ready_at        INTEGER,
  UNIQUE (model_id, bucket)
) STRICT;
CREATE INDEX variants_model ON variants (model_id, status);

CREATE TABLE deployments (
  id          TEXT PRIMARY KEY NOT NULL,      -- "dep-<hex>"
  model_id    TEXT NOT NULL REFERENCES models (id),
  selector    TEXT NOT NULL,                  -- JSON {"tags": [...]} or {"devices": [...]}
  created_at  INTEGER NOT NULL,
  created_by  TEXT NOT NULL
) STRICT;

-- What each device should run. variant_id is NULL while the variant for its bucket builds.
CREATE TABLE device_assignments (
  device_id         TEXT PRIMARY KEY NOT NULL REFERENCES devices (id),
  deployment_id     TEXT NOT NULL REFERENCES deployments (id),
  model_id          TEXT NOT NULL REFERENCES models (id),
  bucket            TEXT NOT NULL,
  variant_id        TEXT REFERENCES variants (id),
  rollback          INTEGER NOT NULL DEFAULT 0, -- signed permission to go to a lower version
  throughput_scale  REAL NOT NULL DEFAULT 1.0,  -- closed-loop correction of the device's speed
  slo_breaches      INTEGER NOT NULL DEFAULT 0, -- consecutive reports with p95 above the SLO
  assigned_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX device_assignments_variant ON device_assignments (variant_id);

-- Telemetry reports, one row per (device, seq): the primary key makes a resent report a no-op.
CREATE TABLE telemetry (
  device_id          TEXT NOT NULL REFERENCES devices (id),
  seq                INTEGER NOT NULL,
  received_at        INTEGER NOT NULL,
  taken_at           INTEGER NOT NULL,
  variant_id         TEXT NOT NULL,
  probe_accuracy     REAL,
  probe_p50_ms       REAL,
  probe_p95_ms       REAL,
  probe_p99_ms       REAL,
  live_p50_ms        REAL,
  live_p95_ms        REAL,
  live_p99_ms        REAL,
  live_count         INTEGER NOT NULL DEFAULT 0,
  feedback_accuracy  REAL,
  feedback_count     INTEGER NOT NULL DEFAULT 0,
  inference_count    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (device_id, seq)
) STRICT, WITHOUT ROWID;

-- Agent-reported events about variants: refusals (bad signature, hash mismatch, downgrade, failed
-- check) and installs, each with its reason.
CREATE TABLE variant_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id   TEXT NOT NULL REFERENCES devices (id),
  variant_id  TEXT NOT NULL,
  at          INTEGER NOT NULL,
  event       TEXT NOT NULL,                  -- "installed", "refused", "check_failed"
  reason      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX variant_events_device ON variant_events (device_id, at);
