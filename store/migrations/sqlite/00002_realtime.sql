-- +goose Up
-- Every pushed event, in a sequence per topic (profile/<id>, attempt/<id>, run/<id>, …).
CREATE TABLE topics (
    topic    TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);

CREATE TABLE events (
    topic      TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    name       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (topic, seq)
);
CREATE INDEX events_created_at ON events (created_at);

-- Where text generation happens: the embedded local model, or an OpenAI-compatible server.
CREATE TABLE providers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    base_url   TEXT NOT NULL DEFAULT '',
    api_key    TEXT NOT NULL DEFAULT '',
    created_by TEXT REFERENCES profiles (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP
);

CREATE TABLE models (
    id          TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers (id),
    name        TEXT NOT NULL,
    label       TEXT NOT NULL,
    is_default  INTEGER NOT NULL DEFAULT 0,
    token_delay_ms INTEGER,
    created_by  TEXT REFERENCES profiles (id),
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    deleted_at  TIMESTAMP
);
CREATE INDEX models_provider ON models (provider_id);

-- Generation jobs.
CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    group_id          TEXT REFERENCES groups (id),
    artifact          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    topic             TEXT NOT NULL,
    profile_id        TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    subject_id        TEXT,
    model_id          TEXT REFERENCES models (id),
    status            TEXT NOT NULL,
    progress          INTEGER NOT NULL DEFAULT 0,
    input             TEXT NOT NULL,
    output            TEXT NOT NULL DEFAULT '',
    output_seq        INTEGER NOT NULL DEFAULT 0,
    result            TEXT,
    error             TEXT,
    question          TEXT,
    answer            TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMP NOT NULL,
    started_at        TIMESTAMP,
    updated_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP
);
CREATE INDEX runs_profile ON runs (profile_id, artifact, created_at DESC);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_subject ON runs (subject_id);

-- Presence: a row each time a profile's first socket opens (active) or its last one closes.
CREATE TABLE activity (
    id         TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    sockets    INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX activity_profile ON activity (profile_id, created_at DESC);
CREATE INDEX activity_created_at ON activity (created_at);

-- The embedded model, the default until an admin adds another.
INSERT INTO providers (id, name, kind, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'local', 'local', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00');
INSERT INTO models (id, provider_id, name, label, is_default, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001', 'glow-local', 'Glow local (offline)', 1,
        '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00');

-- +goose Down
DROP TABLE activity;
DROP TABLE runs;
DROP TABLE models;
DROP TABLE providers;
DROP TABLE events;
DROP TABLE topics;
