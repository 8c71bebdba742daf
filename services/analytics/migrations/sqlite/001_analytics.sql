-- analytics__*: the analytics service's tables (SQLite has no schemas: the table group is a name
-- prefix). Times are Unix microseconds (UTC); booleans 0/1; JSON is text. See the PostgreSQL
-- migration for what each table is for.

CREATE TABLE IF NOT EXISTS analytics__sessions (
    session_id    TEXT NOT NULL PRIMARY KEY,
    school_id     TEXT NOT NULL DEFAULT '',
    teacher_id    TEXT NOT NULL DEFAULT '',
    title         TEXT NOT NULL DEFAULT '',
    objectives    TEXT NOT NULL DEFAULT '[]',
    status        TEXT NOT NULL DEFAULT '',
    started_at    INTEGER,
    ended_at      INTEGER,
    group_count   INTEGER NOT NULL DEFAULT 0,
    student_count INTEGER NOT NULL DEFAULT 0,
    session_insight_count INTEGER NOT NULL DEFAULT 0,
    first_seen    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS analytics__sessions_school_idx ON analytics__sessions (school_id, first_seen);
CREATE INDEX IF NOT EXISTS analytics__sessions_status_idx ON analytics__sessions (status, updated_at);

CREATE TABLE IF NOT EXISTS analytics__group_metrics (
    session_id              TEXT NOT NULL,
    group_id                TEXT NOT NULL,
    group_name              TEXT NOT NULL DEFAULT '',
    speaking_seconds        REAL NOT NULL DEFAULT 0,
    silence_seconds         REAL NOT NULL DEFAULT 0,
    longest_silence_seconds REAL NOT NULL DEFAULT 0,
    transcribed_seconds     REAL NOT NULL DEFAULT 0,
    word_count              INTEGER NOT NULL DEFAULT 0,
    turn_count              INTEGER NOT NULL DEFAULT 0,
    question_count          INTEGER NOT NULL DEFAULT 0,
    tier1_count             INTEGER NOT NULL DEFAULT 0,
    on_topic_count          INTEGER NOT NULL DEFAULT 0,
    insight_count           INTEGER NOT NULL DEFAULT 0,
    ready_at                INTEGER,
    updated_at              INTEGER NOT NULL,
    PRIMARY KEY (session_id, group_id)
);

CREATE TABLE IF NOT EXISTS analytics__members (
    session_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    joined_at  INTEGER NOT NULL,
    PRIMARY KEY (session_id, student_id)
);
CREATE INDEX IF NOT EXISTS analytics__members_group_idx ON analytics__members (session_id, group_id);

CREATE TABLE IF NOT EXISTS analytics__speaker_words (
    session_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    word_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, group_id, speaker_id)
);

CREATE TABLE IF NOT EXISTS analytics__prompts (
    session_id TEXT NOT NULL,
    prompt_id  TEXT NOT NULL,
    group_id   TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, prompt_id)
);

CREATE TABLE IF NOT EXISTS analytics__processed_events (
    event_id     TEXT NOT NULL PRIMARY KEY,
    session_id   TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    processed_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS analytics__processed_events_at_idx ON analytics__processed_events (processed_at);

CREATE TABLE IF NOT EXISTS analytics__transcript_texts (
    transcript_id TEXT NOT NULL PRIMARY KEY,
    session_id    TEXT NOT NULL,
    group_id      TEXT NOT NULL,
    window_start  INTEGER NOT NULL,
    text          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS analytics__transcript_texts_session_idx ON analytics__transcript_texts (session_id, group_id, window_start);

CREATE TABLE IF NOT EXISTS analytics__finalizations (
    session_id          TEXT NOT NULL PRIMARY KEY,
    status              TEXT NOT NULL CHECK (status IN ('finalizing', 'finalized', 'failed')),
    owner               TEXT NOT NULL,
    lease_until         INTEGER NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 1,
    failure_reason      TEXT NOT NULL DEFAULT '',
    event_id            TEXT NOT NULL DEFAULT '',
    published           INTEGER NOT NULL DEFAULT 0,
    summary_status      TEXT NOT NULL DEFAULT '' CHECK (summary_status IN ('', 'pending', 'ready', 'failed')),
    summary_owner       TEXT NOT NULL DEFAULT '',
    summary_lease_until INTEGER,
    summary_reason      TEXT NOT NULL DEFAULT '',
    summary_event_id    TEXT NOT NULL DEFAULT '',
    summary_published   INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS analytics__finalizations_status_idx ON analytics__finalizations (status, lease_until);

CREATE TABLE IF NOT EXISTS analytics__session_analytics (
    session_id           TEXT NOT NULL PRIMARY KEY,
    school_id            TEXT NOT NULL,
    teacher_id           TEXT NOT NULL,
    participation_rate   REAL NOT NULL,
    engagement_score     REAL NOT NULL,
    duration_seconds     INTEGER NOT NULL,
    group_count          INTEGER NOT NULL,
    student_count        INTEGER NOT NULL,
    joined_student_count INTEGER NOT NULL,
    insight_count        INTEGER NOT NULL,
    prompt_count         INTEGER NOT NULL,
    prompts_acknowledged INTEGER NOT NULL,
    speaking_seconds     REAL NOT NULL,
    word_count           INTEGER NOT NULL,
    ended_at             INTEGER,
    finalized_at         INTEGER NOT NULL,
    analytics            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS analytics__session_analytics_school_idx ON analytics__session_analytics (school_id, finalized_at);

CREATE TABLE IF NOT EXISTS analytics__summaries (
    session_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    group_name TEXT NOT NULL DEFAULT '',
    status     TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    summary    TEXT,
    summarizer TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, group_id)
);
