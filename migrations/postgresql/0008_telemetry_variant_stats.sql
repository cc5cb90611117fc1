-- 0008: what the field says about each (device, variant), kept up to date at ingest, so that a
-- rollout step reads one row per pair instead of every report a device ever sent (the telemetry
-- table's key is (device_id, seq): a pair's aggregate was a scan of the device's whole history).
-- Sums, not means, so that a report adds to a row without reading the others.
CREATE TABLE telemetry_variant_stats (
  device_id      TEXT NOT NULL REFERENCES devices (id),
  variant_id     TEXT NOT NULL,
  reports        BIGINT  NOT NULL,
  probe_reports  BIGINT  NOT NULL,   -- reports that carry a probe accuracy
  probe_sum      DOUBLE PRECISION NOT NULL, -- sum of their probe accuracies
  labels         BIGINT  NOT NULL,   -- feedback labels over all reports
  correct        DOUBLE PRECISION,  -- sum of feedback_accuracy × feedback_count; NULL: none
  last_seq       BIGINT NOT NULL,    -- the newest report's seq
  last_p95_ms    DOUBLE PRECISION,  -- its p95: live when it had live traffic, else probe
  PRIMARY KEY (device_id, variant_id)
);

INSERT INTO telemetry_variant_stats (device_id, variant_id, reports, probe_reports, probe_sum,
                                     labels, correct, last_seq, last_p95_ms)
SELECT g.device_id, g.variant_id, g.n, g.probe_n, g.probe_sum, g.labels, g.correct, g.last_seq,
       (SELECT CASE WHEN r.live_count > 0 THEN r.live_p95_ms ELSE r.probe_p95_ms END
          FROM telemetry r WHERE r.device_id = g.device_id AND r.seq = g.last_seq)
FROM (SELECT device_id, variant_id, COUNT(*) AS n, COUNT(probe_accuracy) AS probe_n,
             COALESCE(SUM(probe_accuracy), 0.0) AS probe_sum, SUM(feedback_count) AS labels,
             SUM(feedback_accuracy * feedback_count) AS correct, MAX(seq) AS last_seq
        FROM telemetry GROUP BY device_id, variant_id) g;
