-- 0011: a rollout step reads only the devices its current phase reaches: the first ones in
-- selection order (ordinal, then device id). This index serves that prefix without sorting the
-- rollout's every device on each step.
CREATE INDEX rollout_devices_order ON rollout_devices (rollout_id, ordinal, device_id);
