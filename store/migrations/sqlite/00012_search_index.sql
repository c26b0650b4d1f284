-- +goose Up
-- Text searches of the family's records go through a trigram index of their name and
-- description, lowered with the store's lower() (so the index folds case exactly as the
-- LIKE that confirms each match). The index is keyed by text_key, the row's rowid when it
-- was stored, which a VACUUM does not change.
ALTER TABLE artifacts ADD COLUMN text_key INTEGER;
UPDATE artifacts SET text_key = rowid;
CREATE UNIQUE INDEX artifacts_text_key ON artifacts (text_key);
CREATE VIRTUAL TABLE artifacts_text USING fts5(text, tokenize = 'trigram case_sensitive 1');
INSERT INTO artifacts_text (rowid, text) SELECT text_key, lower(name) || ' ' || lower(description) FROM artifacts;

-- +goose StatementBegin
CREATE TRIGGER artifacts_text_insert AFTER INSERT ON artifacts BEGIN
    UPDATE artifacts SET text_key = new.rowid WHERE rowid = new.rowid;
    INSERT INTO artifacts_text (rowid, text) VALUES (new.rowid, lower(new.name) || ' ' || lower(new.description));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER artifacts_text_update AFTER UPDATE OF name, description ON artifacts BEGIN
    DELETE FROM artifacts_text WHERE rowid = old.text_key;
    INSERT INTO artifacts_text (rowid, text) VALUES (new.text_key, lower(new.name) || ' ' || lower(new.description));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER artifacts_text_delete AFTER DELETE ON artifacts BEGIN
    DELETE FROM artifacts_text WHERE rowid = old.text_key;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER artifacts_text_delete;
DROP TRIGGER artifacts_text_update;
DROP TRIGGER artifacts_text_insert;
DROP TABLE artifacts_text;
DROP INDEX artifacts_text_key;
ALTER TABLE artifacts DROP COLUMN text_key;
