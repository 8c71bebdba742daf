-- sessions__* and users__students: the session service's tables (SQLite has no schemas: a name
-- prefix). Times are Unix microseconds (UTC), as in the PostgreSQL migration.

CREATE TABLE IF NOT EXISTS sessions__classroom_sessions (
    id                    TEXT PRIMARY KEY,
    teacher_id            TEXT NOT NULL,
    school_id             TEXT NOT NULL,
    title                 TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL CHECK (status IN ('created', 'active', 'paused', 'ended')),
    scheduled_start       INTEGER,
    actual_start          INTEGER,
    actual_end            INTEGER,
    last_active_at        INTEGER,
    duration_seconds      INTEGER NOT NULL DEFAULT 0,
    target_group_size     INTEGER NOT NULL,
    learning_objectives   TEXT NOT NULL DEFAULT '[]',
    access_code           TEXT NOT NULL,
    -- Denormalised counts kept in step by create and join, so the dashboard projection reads this
    -- table only (seed "Sessions List Query Parameters").
    total_groups          INTEGER NOT NULL DEFAULT 0,
    total_students        INTEGER NOT NULL DEFAULT 0,
    joined_students       INTEGER NOT NULL DEFAULT 0,
    engagement_score      REAL NOT NULL DEFAULT 0,
    ai_analysis_enabled   INTEGER NOT NULL DEFAULT 1,
    transcription_enabled INTEGER NOT NULL DEFAULT 1,
    end_reason            TEXT NOT NULL DEFAULT '',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

-- Access codes are unique among sessions that have not ended; ended sessions free their code.
CREATE UNIQUE INDEX IF NOT EXISTS classroom_sessions_open_code_idx
    ON sessions__classroom_sessions (access_code) WHERE status <> 'ended';
CREATE INDEX IF NOT EXISTS classroom_sessions_teacher_idx
    ON sessions__classroom_sessions (teacher_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS classroom_sessions_school_idx
    ON sessions__classroom_sessions (school_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS classroom_sessions_ended_idx
    ON sessions__classroom_sessions (actual_end) WHERE status = 'ended';

CREATE TABLE IF NOT EXISTS sessions__student_groups (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions__classroom_sessions (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    group_number INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'created',
    is_ready     INTEGER NOT NULL DEFAULT 0,
    leader_id    TEXT NOT NULL DEFAULT '',
    max_size     INTEGER NOT NULL,
    ready_at     INTEGER,
    created_at   INTEGER NOT NULL,
    UNIQUE (session_id, group_number)
);

-- One row per student per session: a student is in one group of a session, and a display name
-- names one member (a re-join under the same name is the same member).
CREATE TABLE IF NOT EXISTS sessions__student_group_members (
    session_id   TEXT NOT NULL REFERENCES sessions__classroom_sessions (id) ON DELETE CASCADE,
    group_id     TEXT NOT NULL REFERENCES sessions__student_groups (id) ON DELETE CASCADE,
    student_id   TEXT NOT NULL,
    display_name TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    is_leader    INTEGER NOT NULL DEFAULT 0,
    joined_at    INTEGER,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (session_id, student_id),
    UNIQUE (session_id, name_key)
);
CREATE INDEX IF NOT EXISTS student_group_members_group_idx
    ON sessions__student_group_members (group_id);

-- Roster students with their parental consent record (COPPA): who consented, when, how, and
-- which staff member recorded it.
CREATE TABLE IF NOT EXISTS users__students (
    id                  TEXT PRIMARY KEY,
    school_id           TEXT NOT NULL,
    display_name        TEXT NOT NULL,
    email               TEXT NOT NULL DEFAULT '',
    under_13            INTEGER NOT NULL DEFAULT 0,
    consent_method      TEXT NOT NULL DEFAULT '',
    guardian_name       TEXT NOT NULL DEFAULT '',
    consented_at        INTEGER,
    consent_recorded_by TEXT NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL
);
