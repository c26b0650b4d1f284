-- +goose Up
-- Departments join the standard family: each department has a record of kind 'department'
-- with the department's id, in its own scope (it links to itself). The departments table
-- stays the tenancy unit others refer to; the family keeps its name in step.
INSERT INTO artifacts (id, kind, name, description, fields, secrets, scope, created_by, created_at, updated_at)
SELECT d.id, 'department', d.name, '', '{}', '{}', '|' || d.id || '|',
       (SELECT p.id FROM profiles p ORDER BY p.created_at, p.id LIMIT 1), d.created_at, d.created_at
FROM departments d
WHERE EXISTS (SELECT 1 FROM profiles) AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.id = d.id);
INSERT INTO artifact_links (artifact_id, relation, target_id, position)
SELECT a.id, 'departments', a.id, 0 FROM artifacts a WHERE a.kind = 'department';

-- Admins manage departments; their members read them.
INSERT INTO role_permissions (role, artifact, operation) VALUES
    ('editor',  'department', 'get'),
    ('editor',  'department', 'search'),
    ('editor',  'department', 'export'),
    ('editor',  'department', 'draft'),
    ('editor',  'department', 'drafts'),
    ('editor',  'department', 'group'),
    ('editor',  'department', 'problem'),
    ('editor',  'department', 'generations'),
    ('learner', 'department', 'get'),
    ('learner', 'department', 'search');

-- +goose Down
DELETE FROM role_permissions WHERE artifact = 'department';
DELETE FROM artifacts WHERE kind = 'department';
