-- +goose Up
-- When a profile's role or departments last changed: the servers poll it, so that sockets
-- and streams opened before the change follow it.
ALTER TABLE profiles ADD COLUMN updated_at TIMESTAMP;
CREATE INDEX profiles_updated_at ON profiles (updated_at);

-- +goose Down
DROP INDEX profiles_updated_at;
ALTER TABLE profiles DROP COLUMN updated_at;
