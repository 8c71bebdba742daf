-- audio__*: the stt service's tables (SQLite has no schemas: the table group is a name prefix).
-- Audio itself is never stored: only what was said. Times are Unix microseconds (UTC).

-- One row per transcribed window, written once (INSERT ... ON CONFLICT (id) DO NOTHING) and
-- listed in window order with keyset paging on (window_start, id).
CREATE TABLE IF NOT EXISTS audio__transcriptions (
    id             TEXT NOT NULL PRIMARY KEY,
    session_id     TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    school_id      TEXT NOT NULL,
    window_start   INTEGER NOT NULL,
    window_end     INTEGER NOT NULL,
    text           TEXT NOT NULL,
    confidence     REAL NOT NULL,
    language       TEXT NOT NULL DEFAULT '',
    -- kept Whisper segments, JSON: [{start, end, text, confidence, avgLogprob, noSpeechProb}]
    segments       TEXT NOT NULL DEFAULT '[]',
    speech_seconds REAL NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    CHECK (window_end >= window_start),
    CHECK (confidence >= 0 AND confidence <= 1)
);

CREATE INDEX IF NOT EXISTS audio__transcriptions_session_idx
    ON audio__transcriptions (session_id, window_start, id);
CREATE INDEX IF NOT EXISTS audio__transcriptions_group_idx
    ON audio__transcriptions (session_id, group_id, window_start, id);

-- Transcribed seconds per school per UTC day ("YYYY-MM-DD"), added to atomically.
CREATE TABLE IF NOT EXISTS audio__budgets (
    school_id    TEXT NOT NULL,
    day          TEXT NOT NULL,
    seconds_used REAL NOT NULL DEFAULT 0 CHECK (seconds_used >= 0),
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (school_id, day)
);

-- Budget alerts sent: one row per threshold per school per day.
CREATE TABLE IF NOT EXISTS audio__budget_alerts (
    school_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    percent   INTEGER NOT NULL,
    sent_at   INTEGER NOT NULL,
    PRIMARY KEY (school_id, day, percent)
);
