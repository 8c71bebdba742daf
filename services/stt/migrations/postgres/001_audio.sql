-- audio.*: the stt service's tables. Audio itself is never stored: only what was said.
CREATE SCHEMA IF NOT EXISTS audio;

-- One row per transcribed window, written once (INSERT ... ON CONFLICT (id) DO NOTHING) and
-- listed in window order with keyset paging on (window_start, id).
CREATE TABLE IF NOT EXISTS audio.transcriptions (
    id             UUID PRIMARY KEY,
    session_id     TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    school_id      TEXT NOT NULL,
    window_start   TIMESTAMPTZ NOT NULL,
    window_end     TIMESTAMPTZ NOT NULL,
    text           TEXT NOT NULL,
    confidence     DOUBLE PRECISION NOT NULL,
    language       TEXT NOT NULL DEFAULT '',
    -- kept Whisper segments: [{start, end, text, confidence, avgLogprob, noSpeechProb}]
    segments       JSONB NOT NULL DEFAULT '[]'::jsonb,
    speech_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    CHECK (window_end >= window_start),
    CHECK (confidence >= 0 AND confidence <= 1)
);

CREATE INDEX IF NOT EXISTS transcriptions_session_idx
    ON audio.transcriptions (session_id, window_start, id);
CREATE INDEX IF NOT EXISTS transcriptions_group_idx
    ON audio.transcriptions (session_id, group_id, window_start, id);

-- Transcribed seconds per school per UTC day ("YYYY-MM-DD"), added to atomically.
CREATE TABLE IF NOT EXISTS audio.budgets (
    school_id    TEXT NOT NULL,
    day          TEXT NOT NULL,
    seconds_used DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (seconds_used >= 0),
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (school_id, day)
);

-- Budget alerts sent: one row per threshold per school per day, so each is sent once even
-- with several replicas.
CREATE TABLE IF NOT EXISTS audio.budget_alerts (
    school_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    percent   INTEGER NOT NULL,
    sent_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (school_id, day, percent)
);
