-- ai_insights.*: the guidance service's tables: what it analyses (turns, speech activity), what it
-- produced (Tier 1 and Tier 2 insights, teacher prompts) and its scheduling state (cursors, cooldown
-- slots, sessions), all in the database so several replicas and restarts agree.
CREATE SCHEMA IF NOT EXISTS ai_insights;

-- One row per transcript window (the stt transcript id), written once.
CREATE TABLE IF NOT EXISTS ai_insights.discussion_turns (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    school_id    TEXT NOT NULL DEFAULT '',
    text         TEXT NOT NULL,
    speaker      TEXT NOT NULL DEFAULT '',
    word_count   INTEGER NOT NULL DEFAULT 0,
    window_start TIMESTAMPTZ NOT NULL,
    window_end   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    CHECK (window_end >= window_start)
);
CREATE INDEX IF NOT EXISTS discussion_turns_group_idx
    ON ai_insights.discussion_turns (session_id, group_id, window_end, id);

-- One row per closed audio window's voice activity, written once.
CREATE TABLE IF NOT EXISTS ai_insights.speech_activity (
    window_id               TEXT PRIMARY KEY,
    session_id              TEXT NOT NULL,
    group_id                TEXT NOT NULL,
    school_id               TEXT NOT NULL DEFAULT '',
    window_start            TIMESTAMPTZ NOT NULL,
    window_end              TIMESTAMPTZ NOT NULL,
    speech_seconds          DOUBLE PRECISION NOT NULL DEFAULT 0,
    silence_seconds         DOUBLE PRECISION NOT NULL DEFAULT 0,
    longest_silence_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at              TIMESTAMPTZ NOT NULL,
    CHECK (window_end >= window_start)
);
CREATE INDEX IF NOT EXISTS speech_activity_group_idx
    ON ai_insights.speech_activity (session_id, group_id, window_end, window_id);

-- The end of each group's last analysed span: moved by compare-and-set only.
CREATE TABLE IF NOT EXISTS ai_insights.analysis_cursors (
    session_id     TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    analysed_until TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, group_id)
);

-- Tier 1 insights: the insight as protojson (camelCase) plus the columns queries filter on.
-- alerts holds the alert categories the metrics raised, comma-separated.
CREATE TABLE IF NOT EXISTS ai_insights.tier1_insights (
    id             TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    school_id      TEXT NOT NULL DEFAULT '',
    analyzer       TEXT NOT NULL,
    confidence     DOUBLE PRECISION NOT NULL,
    topical_focus  DOUBLE PRECISION NOT NULL DEFAULT 0,
    off_task_ratio DOUBLE PRECISION NOT NULL DEFAULT 0,
    question_count INTEGER NOT NULL DEFAULT 0,
    alerts         TEXT NOT NULL DEFAULT '',
    window_start   TIMESTAMPTZ NOT NULL,
    window_end     TIMESTAMPTZ NOT NULL,
    insight        JSONB NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS tier1_insights_session_idx
    ON ai_insights.tier1_insights (session_id, created_at, id);
CREATE INDEX IF NOT EXISTS tier1_insights_group_idx
    ON ai_insights.tier1_insights (session_id, group_id, created_at, id);

CREATE TABLE IF NOT EXISTS ai_insights.tier2_insights (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    school_id  TEXT NOT NULL DEFAULT '',
    analyzer   TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    insight    JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS tier2_insights_session_idx
    ON ai_insights.tier2_insights (session_id, created_at, id);

-- Teacher prompts. group_id is '' for a session-wide recommendation. dedupe_key is kind:category.
CREATE TABLE IF NOT EXISTS ai_insights.prompts (
    id             TEXT PRIMARY KEY,
    session_id     TEXT NOT NULL,
    group_id       TEXT NOT NULL DEFAULT '',
    school_id      TEXT NOT NULL DEFAULT '',
    teacher_id     TEXT NOT NULL DEFAULT '',
    kind           TEXT NOT NULL CHECK (kind IN ('alert', 'recommendation')),
    category       TEXT NOT NULL,
    priority       TEXT NOT NULL CHECK (priority IN ('low', 'medium', 'high')),
    message        TEXT NOT NULL,
    reason         TEXT NOT NULL DEFAULT '',
    insight_id     TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL CHECK (status IN ('pending', 'acknowledged', 'dismissed', 'expired')),
    tier           INTEGER NOT NULL CHECK (tier IN (1, 2)),
    dedupe_key     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    acted_at       TIMESTAMPTZ,
    acted_by       TEXT NOT NULL DEFAULT '',
    dismiss_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS prompts_session_idx
    ON ai_insights.prompts (session_id, created_at, id);
CREATE INDEX IF NOT EXISTS prompts_slot_idx
    ON ai_insights.prompts (session_id, group_id, dedupe_key, created_at, id);
CREATE INDEX IF NOT EXISTS prompts_pending_idx
    ON ai_insights.prompts (status, expires_at);

-- One row per cooldown slot (session, group, kind, category): locked while a prompt is decided,
-- so two replicas never both raise one.
CREATE TABLE IF NOT EXISTS ai_insights.prompt_slots (
    session_id     TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    category       TEXT NOT NULL,
    last_prompt_id TEXT NOT NULL DEFAULT '',
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, group_id, kind, category)
);

-- Sessions the service analyses: last known status and the Tier 2 schedule.
CREATE TABLE IF NOT EXISTS ai_insights.sessions (
    session_id     TEXT PRIMARY KEY,
    school_id      TEXT NOT NULL DEFAULT '',
    teacher_id     TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    last_tier1_at  TIMESTAMPTZ,
    last_tier2_at  TIMESTAMPTZ,
    next_tier2_at  TIMESTAMPTZ NOT NULL,
    final_tier2_at TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_due_idx
    ON ai_insights.sessions (status, next_tier2_at);
