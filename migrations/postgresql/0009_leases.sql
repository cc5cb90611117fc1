-- 0009: leases, so several server and worker processes can share one database.
-- Times are Unix epoch milliseconds (BIGINT), UTC.

-- A running job belongs to lease_owner until lease_expires_ms; its worker renews the lease while
-- it runs. Once it expires any worker may take the job back (it resumes from its checkpoint), and
-- the old owner's writes are refused. Jobs running before this migration have an expired lease.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_expires_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_lease ON jobs (state, lease_expires_ms);

-- Periodic work that must run once per fleet, not once per process (offline detection, rollout
-- steps): a process runs a tick only while it holds the task's lease.
CREATE TABLE task_leases (
  name       TEXT PRIMARY KEY NOT NULL,  -- e.g. "rollouts"
  owner      TEXT NOT NULL,              -- the holding process: "<host>/pid<pid>-<random>"
  expires_ms BIGINT NOT NULL
);
