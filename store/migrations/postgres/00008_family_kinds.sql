-- +goose Up
-- Secrets at rest are sealed with AES-256-GCM (store/secrets.go). This row holds a value
-- sealed with the key of the first start, so that a start with another key is refused.
CREATE TABLE secret_check (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed TEXT NOT NULL
);

-- A record's secrets (a setting's), each sealed: a JSON object of name → sealed value.
ALTER TABLE artifacts ADD COLUMN secrets TEXT NOT NULL DEFAULT '{}';
-- A soft create stages its records: only the profile that staged them sees them until the
-- call is accepted (pending_by cleared) or rejected (the records deleted).
ALTER TABLE artifacts ADD COLUMN pending_by UUID REFERENCES profiles (id) ON DELETE CASCADE;

-- Soft calls: a create, update or delete staged under its idempotency key, carried out or
-- discarded by a later call with that key and accept. The request is kept sealed, since
-- it may carry secrets.
CREATE TABLE soft_calls (
    profile_id      UUID NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    operation       TEXT NOT NULL,
    request         TEXT NOT NULL,
    record_ids      TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    decided_at      TIMESTAMPTZ,
    PRIMARY KEY (profile_id, idempotency_key)
);

-- Editors configure these in their departments; sign-in methods and reading secrets are
-- for admins. Learners read the simulations they practise and the rubrics that grade them.
INSERT INTO role_permissions (role, artifact, operation) VALUES
    ('editor',  'field',      '*'),
    ('editor',  'parameter',  '*'),
    ('editor',  'rubric',     '*'),
    ('editor',  'eval',       '*'),
    ('editor',  'simulation', '*'),
    ('editor',  'cohort',     '*'),
    ('editor',  'setting',    'create'),
    ('editor',  'setting',    'delete'),
    ('editor',  'setting',    'draft'),
    ('editor',  'setting',    'drafts'),
    ('editor',  'setting',    'duplicate'),
    ('editor',  'setting',    'export'),
    ('editor',  'setting',    'generate'),
    ('editor',  'setting',    'generations'),
    ('editor',  'setting',    'get'),
    ('editor',  'setting',    'group'),
    ('editor',  'setting',    'problem'),
    ('editor',  'setting',    'refresh'),
    ('editor',  'setting',    'search'),
    ('editor',  'setting',    'update'),
    ('learner', 'simulation', 'get'),
    ('learner', 'simulation', 'search'),
    ('learner', 'rubric',     'get');

-- +goose Down
DELETE FROM role_permissions WHERE artifact IN ('field', 'parameter', 'rubric', 'eval', 'simulation', 'cohort', 'setting');
DROP TABLE soft_calls;
ALTER TABLE artifacts DROP COLUMN pending_by;
ALTER TABLE artifacts DROP COLUMN secrets;
DROP TABLE secret_check;
