-- +goose Up
-- Providers and models join the standard family: each has a record of its kind with its
-- id, which the store gives the existing ones as it opens (their API keys are resealed
-- for the record, which takes code). The providers and models tables stay what the runs
-- read; the family keeps them in step. Admins manage both; editors see the models their
-- agents may use and the providers that serve them.
INSERT INTO role_permissions (role, artifact, operation) VALUES
    ('editor', 'model',    'export'),
    ('editor', 'model',    'draft'),
    ('editor', 'model',    'drafts'),
    ('editor', 'model',    'group'),
    ('editor', 'model',    'problem'),
    ('editor', 'model',    'generations'),
    ('editor', 'provider', 'get'),
    ('editor', 'provider', 'search');

-- +goose Down
DELETE FROM role_permissions WHERE role = 'editor' AND ((artifact = 'provider' AND operation IN ('get', 'search'))
    OR (artifact = 'model' AND operation IN ('export', 'draft', 'drafts', 'group', 'problem', 'generations')));
DELETE FROM artifacts WHERE kind IN ('provider', 'model');
