-- 0005: enrollment tokens can be revoked (DELETE /api/v1/enrollment-tokens/{id}). A revoked
-- token enrolls nothing more; the row stays for the audit trail and the list.
ALTER TABLE enrollment_tokens ADD COLUMN revoked_at BIGINT;
