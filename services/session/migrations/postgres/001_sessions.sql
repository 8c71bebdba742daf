-- sessions.* and users.students: the session service's tables. Times are Unix microseconds (UTC)
-- in both dialects, so one query text and one scan path serve SQLite and PostgreSQL.
CREATE SCHEMA IF NOT EXISTS sessions;
CREATE SCHEMA IF NOT EXISTS users;

CREATE TABLE IF NOT EXISTS sessions.classroom_sessions (
    id                    TEXT PRIMARY KEY,
    teacher_id            TEXT NOT NULL,
    school_id             TEXT NOT NULL,
    title                 TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL CHECK (status IN ('created', 'active', 'paused', 'ended')),
    scheduled_start       BIGINT,
    actual_start          BIGINT,
    actual_end            BIGINT,
    last_active_at        BIGINT,
    duration_seconds      BIGINT NOT NULL DEFAULT 0,
    target_group_size     INTEGER NOT NULL,
    learning_objectives   TEXT NOT NULL DEFAULT '[]',
    access_code           TEXT NOT NULL,
    -- Denormalised counts kept in step by create and join, so the dashboard projection reads this
    -- table only (seed "Sessions List Query Parameters").
    total_groups          INTEGER NOT NULL DEFAULT 0,
    total_students        INTEGER NOT NULL DEFAULT 0,
    joined_students       INTEGER NOT NULL DEFAULT 0,
    engagement_score      DOUBLE PRECISION NOT NULL DEFAULT 0,
    ai_analysis_enabled   BOOLEAN NOT NULL DEFAULT TRUE,
    transcription_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    end_reason            TEXT NOT NULL DEFAULT '',
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

-- Access codes are unique among sessions that have not ended; ended sessions free their code.
CREATE UNIQUE INDEX IF NOT EXISTS classroom_sessions_open_code_idx
    ON sessions.classroom_sessions (access_code) WHERE status <> 'ended';
CREATE INDEX IF NOT EXISTS classroom_sessions_teacher_idx
    ON sessions.classroom_sessions (teacher_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS classroom_sessions_school_idx
    ON sessions.classroom_sessions (school_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS classroom_sessions_ended_idx
    ON sessions.classroom_sessions (actual_end) WHERE status = 'ended';

CREATE TABLE IF NOT EXISTS sessions.student_groups (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions.classroom_sessions (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    group_number INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'created',
    is_ready     BOOLEAN NOT NULL DEFAULT FALSE,
    leader_id    TEXT NOT NULL DEFAULT '',
    max_size     INTEGER NOT NULL,
    ready_at     BIGINT,
    created_at   BIGINT NOT NULL,
    UNIQUE (session_id, group_number)
);

-- One row per student per session: a student is in one group of a session, and a display name
-- names one member (a re-join under the same name is the same member).
CREATE TABLE IF NOT EXISTS sessions.student_group_members (
    session_id   TEXT NOT NULL REFERENCES sessions.classroom_sessions (id) ON DELETE CASCADE,
    group_id     TEXT NOT NULL REFERENCES sessions.student_groups (id) ON DELETE CASCADE,
    student_id   TEXT NOT NULL,
    display_name TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    is_leader    BOOLEAN NOT NULL DEFAULT FALSE,
    joined_at    BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (session_id, student_id),
    UNIQUE (session_id, name_key)
);
CREATE INDEX IF NOT EXISTS student_group_members_group_idx
    ON sessions.student_group_members (group_id);

-- Roster students with their parental consent record (COPPA): who consented, when, how, and
-- which staff member recorded it.
CREATE TABLE IF NOT EXISTS users.students (
    id                  TEXT PRIMARY KEY,
    school_id           TEXT NOT NULL,
    display_name        TEXT NOT NULL,
    email               TEXT NOT NULL DEFAULT '',
    under_13            BOOLEAN NOT NULL DEFAULT FALSE,
    consent_method      TEXT NOT NULL DEFAULT '',
    guardian_name       TEXT NOT NULL DEFAULT '',
    consented_at        BIGINT,
    consent_recorded_by TEXT NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL
);
