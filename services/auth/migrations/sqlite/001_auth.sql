-- The auth service's tables (SQLite has no schemas: the table group is a name prefix).
-- users__schools and users__teachers follow the seed's Unity Catalog "users" schema; the auth__
-- tables hold the credentials: refresh token families and tokens (stored by the SHA-256 of their
-- value, never the value), started Google redirect flows, and the access token signing keys.
-- Times are Unix microseconds (UTC), so ordering and comparisons are numeric; booleans are 0/1.
CREATE TABLE IF NOT EXISTS users__schools (
    id                  TEXT NOT NULL PRIMARY KEY,
    name                TEXT NOT NULL,
    -- Google Workspace hosted domain (the ID token's hd claim), lower case
    domain              TEXT NOT NULL,
    subscription_tier   TEXT NOT NULL DEFAULT 'free'
        CHECK (subscription_tier IN ('free', 'basic', 'premium', 'enterprise')),
    subscription_status TEXT NOT NULL DEFAULT 'active'
        CHECK (subscription_status IN ('active', 'trial', 'expired', 'suspended')),
    -- teacher seats; 0 means unlimited
    max_teachers        INTEGER NOT NULL DEFAULT 0 CHECK (max_teachers >= 0),
    -- daily speech-to-text minutes; 0 means the platform default
    stt_minutes_per_day INTEGER NOT NULL DEFAULT 0 CHECK (stt_minutes_per_day >= 0),
    ferpa_agreement     INTEGER NOT NULL DEFAULT 0 CHECK (ferpa_agreement IN (0, 1)),
    coppa_compliant     INTEGER NOT NULL DEFAULT 0 CHECK (coppa_compliant IN (0, 1)),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users__schools_domain_key ON users__schools (domain);
CREATE INDEX IF NOT EXISTS users__schools_name_idx ON users__schools (name, id);

CREATE TABLE IF NOT EXISTS users__teachers (
    id            TEXT NOT NULL PRIMARY KEY,
    -- Google subject; NULL for a teacher provisioned before their first sign-in
    google_id     TEXT UNIQUE,
    -- lower case
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    picture       TEXT NOT NULL DEFAULT '',
    school_id     TEXT NOT NULL REFERENCES users__schools (id),
    role          TEXT NOT NULL DEFAULT 'teacher' CHECK (role IN ('teacher', 'admin', 'super_admin')),
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'suspended')),
    last_login_at INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS users__teachers_school_email_idx ON users__teachers (school_id, email, id);

-- A family is every refresh token descending from one sign-in. Revocation and the absolute expiry
-- are the family's. (SQLite transactions begin IMMEDIATE: rotations and revocations serialize.)
CREATE TABLE IF NOT EXISTS auth__refresh_families (
    id            TEXT NOT NULL PRIMARY KEY,
    teacher_id    TEXT NOT NULL REFERENCES users__teachers (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS auth__refresh_families_teacher_live_idx
    ON auth__refresh_families (teacher_id) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS auth__refresh_families_expires_idx ON auth__refresh_families (expires_at);

CREATE TABLE IF NOT EXISTS auth__refresh_tokens (
    id              TEXT NOT NULL PRIMARY KEY,
    -- SHA-256 of the token value
    token_hash      BLOB NOT NULL UNIQUE,
    family_id       TEXT NOT NULL REFERENCES auth__refresh_families (id) ON DELETE CASCADE,
    -- the token this one replaced
    parent_id       TEXT,
    teacher_id      TEXT NOT NULL,
    issued_at       INTEGER NOT NULL,
    -- the family's absolute expiry
    expires_at      INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    rotated_at      INTEGER,
    revoked_at      INTEGER
);
CREATE INDEX IF NOT EXISTS auth__refresh_tokens_family_idx ON auth__refresh_tokens (family_id);

-- Started Google redirect flows: found by the SHA-256 of the state parameter, deleted when used.
CREATE TABLE IF NOT EXISTS auth__oauth_states (
    state_hash    BLOB NOT NULL PRIMARY KEY,
    -- SHA-256 of the browser binding cookie
    binding_hash  BLOB NOT NULL,
    code_verifier TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS auth__oauth_states_expires_idx ON auth__oauth_states (expires_at);

-- Access token signing keys (services/auth/token): Ed25519, PKCS#8 PEM; at most one current key
-- (retired_at NULL).
CREATE TABLE IF NOT EXISTS auth__signing_keys (
    id              TEXT NOT NULL PRIMARY KEY,
    private_key_pem TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    retired_at      INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS auth__signing_keys_one_current
    ON auth__signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
