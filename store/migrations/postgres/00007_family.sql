-- +goose Up
-- The standard family: the artifacts that share the standard operations (agent, tool, …;
-- x-glow-family in openapi.yaml) live in one table, told apart by kind. Each row keeps the
-- kind's own fields as a JSON object; its relations (departments, models, tools, …) are
-- links, in the order given.
CREATE TABLE artifacts (
    id          UUID PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    fields      TEXT NOT NULL,
    created_by  UUID NOT NULL REFERENCES profiles (id),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);
CREATE INDEX artifacts_kind_updated_at ON artifacts (kind, updated_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX artifacts_kind_name ON artifacts (kind, name) WHERE deleted_at IS NULL;

CREATE TABLE artifact_links (
    artifact_id UUID NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    relation    TEXT NOT NULL,
    target_id   UUID NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (artifact_id, relation, target_id)
);
CREATE INDEX artifact_links_target ON artifact_links (relation, target_id);

CREATE TABLE artifact_drafts (
    id          UUID PRIMARY KEY,
    kind        TEXT NOT NULL,
    artifact_id UUID REFERENCES artifacts (id),
    profile_id  UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    form_state  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX artifact_drafts_profile ON artifact_drafts (profile_id, kind, created_at DESC);

-- Editors configure agents and tools in their departments; learners do not.
INSERT INTO role_permissions (role, artifact, operation) VALUES
    ('editor', 'agent', '*'),
    ('editor', 'tool',  '*');

-- +goose Down
DELETE FROM role_permissions WHERE role = 'editor' AND artifact IN ('agent', 'tool');
DROP TABLE artifact_drafts;
DROP TABLE artifact_links;
DROP TABLE artifacts;
