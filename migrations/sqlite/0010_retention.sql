-- 0010: retention. The periodic retention task (docs/operations.md, "Retention") deletes old
-- telemetry reports, variant events and finished jobs by age, in batches; without these indexes
-- each batch would scan the whole table.
CREATE INDEX telemetry_received ON telemetry (received_at);
CREATE INDEX variant_events_at ON variant_events (at);
CREATE INDEX jobs_finished ON jobs (state, finished_at);
