-- 0001: the base every later migration builds on: settings, audit trail, operator API tokens.
-- Times are Unix epoch milliseconds (INTEGER), UTC.

-- Server-wide key/value settings (e.g. instance id, created_at of this database).
CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) STRICT;

-- Append-only record of every operator and device action that changes state.
CREATE TABLE audit_log (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      INTEGER NOT NULL,                 -- epoch ms
  actor   TEXT NOT NULL,                    -- "token:<name>", "device:<id>", "system"
  action  TEXT NOT NULL,                    -- "device.enroll", "token.create", ...
  target  TEXT NOT NULL DEFAULT '',         -- what was acted on, e.g. a device id
  outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
  detail  TEXT NOT NULL DEFAULT ''          -- JSON object or a short sentence
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target, at);

-- Operator bearer tokens. Only a hash of the secret is stored; the secret is shown once.
CREATE TABLE api_tokens (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  name       TEXT NOT NULL UNIQUE,
  role       TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  token_hash TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the secret
  created_at INTEGER NOT NULL,              -- epoch ms
  revoked_at INTEGER                        -- epoch ms; NULL while valid
) STRICT;

INSERT INTO meta (key, value) VALUES ('schema_origin', 'edgeprune');
