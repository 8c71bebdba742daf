-- analytics.*: the analytics service's tables. Live measures are kept per group and updated by
-- atomic increments, each in the transaction that records the event id (processed_events), so a
-- redelivered event changes nothing. Finalization writes session_analytics once per session under
-- a claim with a lease (finalizations).
CREATE SCHEMA IF NOT EXISTS analytics;

-- What analytics knows of a session: from the bus (school, teacher, status, start, end) and, at
-- finalization, from the session context (title, objectives, roster counts).
CREATE TABLE IF NOT EXISTS analytics.sessions (
    session_id    TEXT PRIMARY KEY,
    school_id     TEXT NOT NULL DEFAULT '',
    teacher_id    TEXT NOT NULL DEFAULT '',
    title         TEXT NOT NULL DEFAULT '',
    objectives    JSONB NOT NULL DEFAULT '[]'::jsonb,
    status        TEXT NOT NULL DEFAULT '',
    started_at    TIMESTAMPTZ,
    ended_at      TIMESTAMPTZ,
    group_count   INTEGER NOT NULL DEFAULT 0,
    student_count INTEGER NOT NULL DEFAULT 0,
    -- insights without a group (Tier 2)
    session_insight_count BIGINT NOT NULL DEFAULT 0,
    first_seen    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_school_idx ON analytics.sessions (school_id, first_seen);
CREATE INDEX IF NOT EXISTS sessions_status_idx ON analytics.sessions (status, updated_at);

-- Running measures of one group.
CREATE TABLE IF NOT EXISTS analytics.group_metrics (
    session_id              TEXT NOT NULL,
    group_id                TEXT NOT NULL,
    group_name              TEXT NOT NULL DEFAULT '',
    speaking_seconds        DOUBLE PRECISION NOT NULL DEFAULT 0,
    silence_seconds         DOUBLE PRECISION NOT NULL DEFAULT 0,
    longest_silence_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    transcribed_seconds     DOUBLE PRECISION NOT NULL DEFAULT 0,
    word_count              BIGINT NOT NULL DEFAULT 0,
    turn_count              BIGINT NOT NULL DEFAULT 0,
    question_count          BIGINT NOT NULL DEFAULT 0,
    tier1_count             BIGINT NOT NULL DEFAULT 0,
    on_topic_count          BIGINT NOT NULL DEFAULT 0,
    insight_count           BIGINT NOT NULL DEFAULT 0,
    ready_at                TIMESTAMPTZ,
    updated_at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, group_id)
);

-- Students seen joining (GroupMemberJoined): ids only, no names.
CREATE TABLE IF NOT EXISTS analytics.members (
    session_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    joined_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, student_id)
);
CREATE INDEX IF NOT EXISTS members_group_idx ON analytics.members (session_id, group_id);

-- Words per speaker, when transcripts tell speakers apart.
CREATE TABLE IF NOT EXISTS analytics.speaker_words (
    session_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    word_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, group_id, speaker_id)
);

-- Teacher prompts and what the teacher did with them ('' while open).
CREATE TABLE IF NOT EXISTS analytics.prompts (
    session_id TEXT NOT NULL,
    prompt_id  TEXT NOT NULL,
    group_id   TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, prompt_id)
);

-- Event ids applied (idempotency), forgotten after a retention period.
CREATE TABLE IF NOT EXISTS analytics.processed_events (
    event_id     TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS processed_events_at_idx ON analytics.processed_events (processed_at);

-- Transcript text kept for summaries only (FEATURE_GROUP_SESSION_SUMMARIES=1); deleted once the
-- session's summaries are stored.
CREATE TABLE IF NOT EXISTS analytics.transcript_texts (
    transcript_id TEXT PRIMARY KEY,
    session_id    TEXT NOT NULL,
    group_id      TEXT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    text          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transcript_texts_session_idx ON analytics.transcript_texts (session_id, group_id, window_start);

-- A session's finalization claim (owner + lease) and outcome, and its summaries phase. The event of
-- each outcome is recorded with it (event ids) and marked published once sent (an outbox).
CREATE TABLE IF NOT EXISTS analytics.finalizations (
    session_id          TEXT PRIMARY KEY,
    status              TEXT NOT NULL CHECK (status IN ('finalizing', 'finalized', 'failed')),
    owner               TEXT NOT NULL,
    lease_until         TIMESTAMPTZ NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 1,
    failure_reason      TEXT NOT NULL DEFAULT '',
    event_id            TEXT NOT NULL DEFAULT '',
    published           BOOLEAN NOT NULL DEFAULT FALSE,
    summary_status      TEXT NOT NULL DEFAULT '' CHECK (summary_status IN ('', 'pending', 'ready', 'failed')),
    summary_owner       TEXT NOT NULL DEFAULT '',
    summary_lease_until TIMESTAMPTZ,
    summary_reason      TEXT NOT NULL DEFAULT '',
    summary_event_id    TEXT NOT NULL DEFAULT '',
    summary_published   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS finalizations_status_idx ON analytics.finalizations (status, lease_until);

-- The finalized SessionAnalytics, written once per session (ON CONFLICT DO NOTHING).
CREATE TABLE IF NOT EXISTS analytics.session_analytics (
    session_id           TEXT PRIMARY KEY,
    school_id            TEXT NOT NULL,
    teacher_id           TEXT NOT NULL,
    participation_rate   DOUBLE PRECISION NOT NULL,
    engagement_score     DOUBLE PRECISION NOT NULL,
    duration_seconds     BIGINT NOT NULL,
    group_count          INTEGER NOT NULL,
    student_count        INTEGER NOT NULL,
    joined_student_count INTEGER NOT NULL,
    insight_count        INTEGER NOT NULL,
    prompt_count         INTEGER NOT NULL,
    prompts_acknowledged INTEGER NOT NULL,
    speaking_seconds     DOUBLE PRECISION NOT NULL,
    word_count           BIGINT NOT NULL,
    ended_at             TIMESTAMPTZ,
    finalized_at         TIMESTAMPTZ NOT NULL,
    analytics            JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS session_analytics_school_idx ON analytics.session_analytics (school_id, finalized_at);

-- Summaries: group_id '' is the session summary.
CREATE TABLE IF NOT EXISTS analytics.summaries (
    session_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    group_name TEXT NOT NULL DEFAULT '',
    status     TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    summary    JSONB,
    summarizer TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, group_id)
);
