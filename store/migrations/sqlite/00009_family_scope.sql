-- +goose Up
-- A record's departments, also kept on its row ("|<id>|<id>|", "" when shared), so that a
-- search tests the caller's scope on the row instead of looking up links per record.
ALTER TABLE artifacts ADD COLUMN scope TEXT NOT NULL DEFAULT '';
UPDATE artifacts SET scope = COALESCE((SELECT '|' || group_concat(l.target_id, '|') || '|' FROM
    (SELECT target_id FROM artifact_links WHERE artifact_id = artifacts.id AND relation = 'departments' ORDER BY position) l), '');

-- +goose Down
ALTER TABLE artifacts DROP COLUMN scope;
