-- 0002: the device fleet: enrollment tokens, devices, their certificates, profile history.
-- Times are Unix epoch milliseconds (INTEGER), UTC.

-- One-time (or few-time) enrollment tokens. Only a hash of the secret is stored.
CREATE TABLE enrollment_tokens (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  token_hash  TEXT NOT NULL UNIQUE,          -- hex SHA-256 of the secret
  created_by  TEXT NOT NULL,                 -- "token:<name>"
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  max_uses    INTEGER NOT NULL CHECK (max_uses >= 1),
  uses        INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
  tags        TEXT NOT NULL DEFAULT '[]',    -- JSON array given to devices enrolled with it
  note        TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE devices (
  id                 TEXT PRIMARY KEY NOT NULL,   -- "dev-<hex>", the certificate's subject CN
  hostname           TEXT NOT NULL DEFAULT '',
  status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  tags               TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
  caps               TEXT NOT NULL DEFAULT '{}',  -- JSON object: operator caps (DeviceCaps)
  enrolled_at        INTEGER NOT NULL,
  enrollment_token   INTEGER REFERENCES enrollment_tokens (id),
  revoked_at         INTEGER,
  last_seen_at       INTEGER,                     -- last heartbeat (flushed in batches)
  agent_state        TEXT NOT NULL DEFAULT '',
  installed_variant  TEXT,
  budget             TEXT                         -- JSON Budget from the latest profile
) STRICT;
CREATE INDEX devices_status ON devices (status);

-- Every certificate issued to a device (enrollment and renewals).
CREATE TABLE device_certificates (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id    TEXT NOT NULL REFERENCES devices (id),
  serial_hex   TEXT NOT NULL UNIQUE,
  fingerprint  TEXT NOT NULL UNIQUE,              -- hex SHA-256 of the DER
  not_before   INTEGER NOT NULL,
  not_after    INTEGER NOT NULL,
  issued_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX device_certificates_device ON device_certificates (device_id, not_after);

-- Profile history: every accepted profile and the budget derived from it.
CREATE TABLE device_profiles (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id    TEXT NOT NULL REFERENCES devices (id),
  received_at  INTEGER NOT NULL,
  profile      TEXT NOT NULL,                     -- JSON DeviceProfile
  budget       TEXT NOT NULL                      -- JSON Budget
) STRICT;
CREATE INDEX device_profiles_device ON device_profiles (device_id, received_at);
