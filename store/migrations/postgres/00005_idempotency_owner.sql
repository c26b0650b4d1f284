-- +goose Up
-- Which process holds an unfinished idempotency reservation (node.Self), so that the
-- reservations of a process that died can be taken over at once.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN owner;
