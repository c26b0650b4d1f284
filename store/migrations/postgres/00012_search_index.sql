-- +goose Up
-- The embedded database's trigram index of the family's text (SQLite's 00012) has no
-- counterpart here: PostgreSQL scans the records' text itself. The number is kept so that
-- both dialects count the same migrations.
SELECT 1;

-- +goose Down
SELECT 1;
