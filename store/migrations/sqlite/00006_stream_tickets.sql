-- +goose Up
-- Stream tickets: what a browser's EventSource, which cannot send a token, authenticates
-- GET /<artifact>/stream with. Each is good once, for a minute, as the token it was
-- obtained with; only its hash is kept.
CREATE TABLE stream_tickets (
    hash       TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX stream_tickets_expires_at ON stream_tickets (expires_at);
INSERT INTO role_permissions (role, artifact, operation) VALUES
    ('learner', 'system', 'stream_ticket');

-- +goose Down
DELETE FROM role_permissions WHERE role = 'learner' AND artifact = 'system' AND operation = 'stream_ticket';
DROP TABLE stream_tickets;
