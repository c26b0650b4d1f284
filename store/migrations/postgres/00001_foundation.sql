-- +goose Up
CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    level       INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE role_permissions (
    role      TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    artifact  TEXT NOT NULL,
    operation TEXT NOT NULL,
    PRIMARY KEY (role, artifact, operation)
);

CREATE TABLE departments (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE profiles (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL REFERENCES roles (name),
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE profile_departments (
    profile_id    UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    department_id UUID NOT NULL REFERENCES departments (id) ON DELETE CASCADE,
    PRIMARY KEY (profile_id, department_id)
);

CREATE TABLE tokens (
    id           UUID PRIMARY KEY,
    profile_id   UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    hash         TEXT NOT NULL UNIQUE,
    label        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX tokens_profile ON tokens (profile_id);
CREATE INDEX tokens_revoked_at ON tokens (revoked_at);

CREATE TABLE personas (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    instructions  TEXT NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    created_by    UUID NOT NULL REFERENCES profiles (id),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    deleted_at    TIMESTAMPTZ
);
CREATE INDEX personas_updated_at ON personas (updated_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE persona_departments (
    persona_id    UUID NOT NULL REFERENCES personas (id) ON DELETE CASCADE,
    department_id UUID NOT NULL REFERENCES departments (id) ON DELETE CASCADE,
    PRIMARY KEY (persona_id, department_id)
);
CREATE INDEX persona_departments_department ON persona_departments (department_id);

CREATE TABLE persona_drafts (
    id         UUID PRIMARY KEY,
    persona_id UUID REFERENCES personas (id),
    profile_id UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    form_state TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX persona_drafts_profile ON persona_drafts (profile_id, created_at DESC);

CREATE TABLE groups (
    id           UUID PRIMARY KEY,
    artifact     TEXT NOT NULL,
    profile_id   UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    name         TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX groups_recent ON groups (profile_id, artifact, last_used_at DESC);

CREATE TABLE problems (
    id          UUID PRIMARY KEY,
    artifact    TEXT NOT NULL,
    type        TEXT NOT NULL,
    message     TEXT NOT NULL,
    subject_id  UUID,
    profile_id  UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ
);

CREATE TABLE refreshes (
    id              UUID PRIMARY KEY,
    artifact        TEXT NOT NULL,
    subject_id      UUID,
    profile_id      UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    refreshed_count INTEGER NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE files (
    id           UUID PRIMARY KEY,
    profile_id   UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE attempts (
    id           UUID PRIMARY KEY,
    profile_id   UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    persona_id   UUID NOT NULL REFERENCES personas (id),
    created_at   TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ
);
CREATE INDEX attempts_persona ON attempts (persona_id);

CREATE TABLE chats (
    id            UUID PRIMARY KEY,
    attempt_id    UUID NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    persona_id    UUID NOT NULL REFERENCES personas (id),
    profile_id    UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    message_count INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE messages (
    id         UUID PRIMARY KEY,
    chat_id    UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    role       TEXT NOT NULL,
    text       TEXT NOT NULL,
    parent_id  UUID REFERENCES messages (id),
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (chat_id, seq)
);

CREATE TABLE idempotency_keys (
    profile_id   UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    operation    TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER,
    response     BYTEA,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (profile_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- The roles every installation starts with. Level 0 sees and manages every department.
INSERT INTO roles (name, level, description) VALUES
    ('admin',   0, 'Everything, in every department.'),
    ('editor',  1, 'Manages personas and practises, in their departments.'),
    ('learner', 2, 'Practises with the personas of their departments.');

INSERT INTO role_permissions (role, artifact, operation) VALUES
    ('admin',   '*',       '*'),
    ('editor',  'persona', '*'),
    ('editor',  'attempt', '*'),
    ('editor',  'profile', 'context'),
    ('editor',  'system',  '*'),
    ('learner', 'persona', 'get'),
    ('learner', 'persona', 'search'),
    ('learner', 'persona', 'group'),
    ('learner', 'persona', 'problem'),
    ('learner', 'attempt', 'start'),
    ('learner', 'attempt', 'chat_message'),
    ('learner', 'attempt', 'chat_get'),
    ('learner', 'profile', 'context'),
    ('learner', 'system',  'session'),
    ('learner', 'system',  'file_download');

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE messages;
DROP TABLE chats;
DROP TABLE attempts;
DROP TABLE files;
DROP TABLE refreshes;
DROP TABLE problems;
DROP TABLE groups;
DROP TABLE persona_drafts;
DROP TABLE persona_departments;
DROP TABLE personas;
DROP TABLE tokens;
DROP TABLE profile_departments;
DROP TABLE profiles;
DROP TABLE departments;
DROP TABLE role_permissions;
DROP TABLE roles;
