-- 0007: rollouts: a model reaches a fleet phase by phase, each phase gated on what the model does
-- in the field. A rollout owns a row of `deployments` with the same id, which its devices'
-- assignments point to. Times are Unix epoch milliseconds (INTEGER), UTC.

CREATE TABLE rollouts (
  id                TEXT PRIMARY KEY NOT NULL REFERENCES deployments (id),  -- "rol-<hex>"
  model_id          TEXT NOT NULL REFERENCES models (id),
  spec              TEXT NOT NULL,                 -- JSON RolloutSpec, as accepted
  state             TEXT NOT NULL CHECK (state IN ('running', 'paused', 'awaiting_approval',
                                                   'completed', 'rolled_back', 'aborted')),
  phase             INTEGER NOT NULL DEFAULT 0,    -- index of the current phase
  phase_started_at  INTEGER NOT NULL,
  phase_settled_at  INTEGER,                       -- every device of the phase settled: bake starts
  waived            TEXT NOT NULL DEFAULT '[]',    -- JSON gate names resumed past in this phase
  reason            TEXT NOT NULL DEFAULT '{}',    -- JSON: why the last transition happened
  gates             TEXT NOT NULL DEFAULT '[]',    -- JSON: the last evaluation of each gate
  created_at        INTEGER NOT NULL,
  created_by        TEXT NOT NULL,
  updated_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX rollouts_state ON rollouts (state);

-- Every device of a rollout's target, in selection order, with what it ran before.
CREATE TABLE rollout_devices (
  rollout_id         TEXT NOT NULL REFERENCES rollouts (id),
  device_id          TEXT NOT NULL REFERENCES devices (id),
  ordinal            INTEGER NOT NULL,             -- selection order (random or tag order)
  phase              INTEGER,                      -- the phase that started it; NULL while pending
  state              TEXT NOT NULL CHECK (state IN ('pending', 'downloading', 'installed',
                                                    'verified', 'failed', 'rolled_back',
                                                    'stepped_down', 'no_fit')),
  variant_id         TEXT,                         -- what the rollout gave it
  started_at         INTEGER,
  settled_at         INTEGER,                      -- installed, failed or no_fit
  had_assignment     INTEGER NOT NULL DEFAULT 0,   -- whether prev_* hold an assignment
  prev_deployment_id TEXT,
  prev_model_id      TEXT,
  prev_bucket        TEXT,
  prev_variant_id    TEXT,
  prev_scale         REAL,
  detail             TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (rollout_id, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX rollout_devices_device ON rollout_devices (device_id);
