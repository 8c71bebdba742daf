-- The auth service's tables. users.schools and users.teachers follow the seed's Unity Catalog
-- "users" schema; the auth schema holds the credentials: refresh token families and tokens (stored
-- by the SHA-256 of their value, never the value), started Google redirect flows, and the access
-- token signing keys.
CREATE SCHEMA IF NOT EXISTS users;
CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE IF NOT EXISTS users.schools (
    id                  UUID PRIMARY KEY,
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
    ferpa_agreement     BOOLEAN NOT NULL DEFAULT FALSE,
    coppa_compliant     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS schools_domain_key ON users.schools (domain);
CREATE INDEX IF NOT EXISTS schools_name_idx ON users.schools (name, id);

CREATE TABLE IF NOT EXISTS users.teachers (
    id            UUID PRIMARY KEY,
    -- Google subject; NULL for a teacher provisioned before their first sign-in
    google_id     TEXT UNIQUE,
    -- lower case
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    picture       TEXT NOT NULL DEFAULT '',
    school_id     UUID NOT NULL REFERENCES users.schools (id),
    role          TEXT NOT NULL DEFAULT 'teacher' CHECK (role IN ('teacher', 'admin', 'super_admin')),
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'suspended')),
    last_login_at TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS teachers_school_email_idx ON users.teachers (school_id, email, id);

-- A family is every refresh token descending from one sign-in. Revocation and the absolute expiry
-- are the family's; rotations lock the family row, so a rotation and a revocation never interleave.
CREATE TABLE IF NOT EXISTS auth.refresh_families (
    id            UUID PRIMARY KEY,
    teacher_id    UUID NOT NULL REFERENCES users.teachers (id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS refresh_families_teacher_live_idx
    ON auth.refresh_families (teacher_id) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS refresh_families_expires_idx ON auth.refresh_families (expires_at);

CREATE TABLE IF NOT EXISTS auth.refresh_tokens (
    id              UUID PRIMARY KEY,
    -- SHA-256 of the token value
    token_hash      BYTEA NOT NULL UNIQUE,
    family_id       UUID NOT NULL REFERENCES auth.refresh_families (id) ON DELETE CASCADE,
    -- the token this one replaced
    parent_id       UUID,
    teacher_id      UUID NOT NULL,
    issued_at       TIMESTAMPTZ NOT NULL,
    -- the family's absolute expiry
    expires_at      TIMESTAMPTZ NOT NULL,
    idle_expires_at TIMESTAMPTZ NOT NULL,
    rotated_at      TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family_idx ON auth.refresh_tokens (family_id);

-- Started Google redirect flows: found by the SHA-256 of the state parameter, deleted when used.
CREATE TABLE IF NOT EXISTS auth.oauth_states (
    state_hash    BYTEA PRIMARY KEY,
    -- SHA-256 of the browser binding cookie
    binding_hash  BYTEA NOT NULL,
    code_verifier TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS oauth_states_expires_idx ON auth.oauth_states (expires_at);

-- Access token signing keys (services/auth/token): Ed25519, PKCS#8 PEM; at most one current key
-- (retired_at NULL).
CREATE TABLE IF NOT EXISTS auth.signing_keys (
    id              TEXT PRIMARY KEY,
    private_key_pem TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    retired_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_current
    ON auth.signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
