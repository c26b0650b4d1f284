-- +goose Up
-- Every pushed event, in a sequence per topic (profile/<id>, attempt/<id>, run/<id>, …).
CREATE TABLE topics (
    topic    TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

CREATE TABLE events (
    topic      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    name       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, seq)
);
CREATE INDEX events_created_at ON events (created_at);

-- Where text generation happens: the embedded local model, or an OpenAI-compatible server.
CREATE TABLE providers (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    base_url   TEXT NOT NULL DEFAULT '',
    api_key    TEXT NOT NULL DEFAULT '',
    created_by UUID REFERENCES profiles (id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);

CREATE TABLE models (
    id          UUID PRIMARY KEY,
    provider_id UUID NOT NULL REFERENCES providers (id),
    name        TEXT NOT NULL,
    label       TEXT NOT NULL,
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    token_delay_ms INTEGER,
    created_by  UUID REFERENCES profiles (id),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);
CREATE INDEX models_provider ON models (provider_id);

-- Generation jobs.
CREATE TABLE runs (
    id                UUID PRIMARY KEY,
    group_id          UUID REFERENCES groups (id),
    artifact          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    topic             TEXT NOT NULL,
    profile_id        UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    subject_id        UUID,
    model_id          UUID REFERENCES models (id),
    status            TEXT NOT NULL,
    progress          INTEGER NOT NULL DEFAULT 0,
    input             TEXT NOT NULL,
    output            TEXT NOT NULL DEFAULT '',
    output_seq        BIGINT NOT NULL DEFAULT 0,
    result            TEXT,
    error             TEXT,
    question          TEXT,
    answer            TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ
);
CREATE INDEX runs_profile ON runs (profile_id, artifact, created_at DESC);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_subject ON runs (subject_id);

-- Presence: a row each time a profile's first socket opens (active) or its last one closes.
CREATE TABLE activity (
    id         UUID PRIMARY KEY,
    profile_id UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    sockets    INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX activity_profile ON activity (profile_id, created_at DESC);
CREATE INDEX activity_created_at ON activity (created_at);

-- The embedded model, the default until an admin adds another.
INSERT INTO providers (id, name, kind, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'local', 'local', '2026-01-01 00:00:00+00', '2026-01-01 00:00:00+00');
INSERT INTO models (id, provider_id, name, label, is_default, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'glow-local', 'Glow local (offline)', TRUE,
        '2026-01-01 00:00:00+00', '2026-01-01 00:00:00+00');

-- +goose Down
DROP TABLE activity;
DROP TABLE runs;
DROP TABLE models;
DROP TABLE providers;
DROP TABLE events;
DROP TABLE topics;
