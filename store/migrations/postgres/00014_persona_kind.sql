-- +goose Up
-- Personas join the standard family: each persona (deleted ones too, which their drafts may
-- name) gets a record of kind 'persona' with its id, its instructions and attempt count as
-- fields, its departments as links; their drafts move to the family's drafts. The personas
-- table stays what attempts and chats read; the family keeps it in step.
INSERT INTO artifacts (id, kind, name, description, fields, secrets, created_by, created_at, updated_at, deleted_at)
SELECT p.id, 'persona', p.name, p.description, json_build_object('instructions', p.instructions, 'attempt_count', p.attempt_count)::text,
       '{}', p.created_by, p.created_at, p.updated_at, p.deleted_at
FROM personas p
WHERE NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.id = p.id);
INSERT INTO artifact_links (artifact_id, relation, target_id, position)
SELECT pd.persona_id, 'departments', pd.department_id,
       ROW_NUMBER() OVER (PARTITION BY pd.persona_id ORDER BY pd.department_id) - 1
FROM persona_departments pd
WHERE NOT EXISTS (SELECT 1 FROM artifact_links l WHERE l.artifact_id = pd.persona_id AND l.relation = 'departments');
UPDATE artifacts SET scope = COALESCE((SELECT '|' || string_agg(l.target_id::text, '|' ORDER BY l.position) || '|'
    FROM artifact_links l WHERE l.artifact_id = artifacts.id AND l.relation = 'departments'), '')
WHERE kind = 'persona';
INSERT INTO artifact_drafts (id, kind, artifact_id, profile_id, name, form_state, created_at)
SELECT d.id, 'persona', d.persona_id, d.profile_id, d.name, d.form_state, d.created_at FROM persona_drafts d;
DELETE FROM persona_drafts;

-- +goose Down
INSERT INTO persona_drafts (id, persona_id, profile_id, name, form_state, created_at)
SELECT d.id, d.artifact_id, d.profile_id, d.name, d.form_state, d.created_at FROM artifact_drafts d WHERE d.kind = 'persona';
DELETE FROM artifact_drafts WHERE kind = 'persona';
DELETE FROM artifacts WHERE kind = 'persona';
