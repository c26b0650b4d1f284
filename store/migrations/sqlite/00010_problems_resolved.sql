-- +goose Up
-- A reported problem says who resolved it; system.activity lists problems newest first,
-- open or resolved.
ALTER TABLE problems ADD COLUMN resolved_by TEXT REFERENCES profiles (id) ON DELETE SET NULL;
CREATE INDEX problems_recent ON problems (created_at DESC, id DESC);

-- +goose Down
DROP INDEX problems_recent;
ALTER TABLE problems DROP COLUMN resolved_by;
