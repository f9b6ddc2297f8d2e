-- +goose Up
-- When each user last signed in, for the admin's list of users. NULL: never.
ALTER TABLE users ADD COLUMN last_login_at timestamptz;

-- +goose Down
ALTER TABLE users DROP COLUMN last_login_at;
