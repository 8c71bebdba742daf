-- compliance__audit_log: the FERPA/COPPA audit trail (SQLite has no schemas: the table group is
-- a name prefix). Rows are written by the audit worker in batches, idempotently by id
-- (INSERT ... ON CONFLICT (id) DO NOTHING), and read newest first with keyset paging on
-- (occurred_at, id). occurred_at and recorded_at are Unix microseconds (UTC), so that ordering
-- and comparisons are numeric.
CREATE TABLE IF NOT EXISTS compliance__audit_log (
    id               TEXT NOT NULL PRIMARY KEY,
    occurred_at      INTEGER NOT NULL,
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
    -- JSON object of string values
    metadata         TEXT NOT NULL DEFAULT '{}',
    -- events the row stands for: 1, or the number sampled out for a *_rollup row
    event_count      INTEGER NOT NULL DEFAULT 1 CHECK (event_count >= 1),
    recorded_at      INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))
);

CREATE INDEX IF NOT EXISTS compliance__audit_log_time_idx
    ON compliance__audit_log (occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS compliance__audit_log_school_time_idx
    ON compliance__audit_log (school_id, occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS compliance__audit_log_school_type_time_idx
    ON compliance__audit_log (school_id, event_type, occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS compliance__audit_log_actor_time_idx
    ON compliance__audit_log (actor_id, occurred_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS compliance__audit_log_session_time_idx
    ON compliance__audit_log (session_id, occurred_at DESC, id DESC)
    WHERE session_id <> '';
