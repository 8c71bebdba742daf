-- compliance.audit_log: the FERPA/COPPA audit trail. Rows are written by the audit worker in
-- batches, idempotently by id (INSERT ... ON CONFLICT (id) DO NOTHING), and read by the admin
-- query newest first with keyset paging on (occurred_at, id).
CREATE SCHEMA IF NOT EXISTS compliance;

CREATE TABLE IF NOT EXISTS compliance.audit_log (
    id               UUID PRIMARY KEY,
    occurred_at      TIMESTAMPTZ NOT NULL,
    actor_id         TEXT NOT NULL,
    actor_type       TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    event_category   TEXT NOT NULL,
    resource_type    TEXT NOT NULL DEFAULT '',
    resource_id      TEXT NOT NULL DEFAULT '',
    school_id        TEXT NOT NULL DEFAULT '',
    session_id       TEXT NOT NULL DEFAULT '',
    description      TEXT NOT NULL DEFAULT '',
    -- hex SHA-256 of the user agent (AUDIT_HASH_USER_AGENT=1); never an IP address
    user_agent_hash  TEXT NOT NULL DEFAULT '',
    compliance_basis TEXT NOT NULL DEFAULT '',
    priority         TEXT NOT NULL DEFAULT 'normal',
    metadata         JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- events the row stands for: 1, or the number sampled out for a *_rollup row
    event_count      INTEGER NOT NULL DEFAULT 1 CHECK (event_count >= 1),
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every listing is ORDER BY occurred_at DESC, id DESC; each index ends with that order so a
-- filtered page is an index range scan.
CREATE INDEX IF NOT EXISTS audit_log_time_idx
    ON compliance.audit_log (occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_school_time_idx
    ON compliance.audit_log (school_id, occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_school_type_time_idx
    ON compliance.audit_log (school_id, event_type, occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor_time_idx
    ON compliance.audit_log (actor_id, occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_session_time_idx
    ON compliance.audit_log (session_id, occurred_at DESC, id DESC)
    WHERE session_id <> '';
