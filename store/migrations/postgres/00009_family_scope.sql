-- +goose Up
-- A record's departments, also kept on its row ("|<id>|<id>|", "" when shared), so that a
-- search tests the caller's scope on the row instead of looking up links per record.
ALTER TABLE artifacts ADD COLUMN scope TEXT NOT NULL DEFAULT '';
UPDATE artifacts SET scope = COALESCE((SELECT '|' || string_agg(l.target_id::text, '|' ORDER BY l.position) || '|'
    FROM artifact_links l WHERE l.artifact_id = artifacts.id AND l.relation = 'departments'), '');

-- +goose Down
ALTER TABLE artifacts DROP COLUMN scope;
