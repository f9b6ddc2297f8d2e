-- +goose Up
-- The live classroom: teaching assistants, the help queue, a test's
-- permission for it, and each run's console transcript.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('student', 'ta', 'professor', 'admin'));

-- allow_live: during this test a restricted student may still ask for
-- help, follow a broadcast and be joined.
ALTER TABLE tests ADD COLUMN allow_live boolean NOT NULL DEFAULT false;

-- One request per press of "Ask for help"; open while closed_at is null.
-- tab is the student's browser tab, whose live REPL the helper joins.
CREATE TABLE help_requests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username    text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    tab         text NOT NULL CHECK (tab ~ '^[A-Za-z0-9_-]{1,64}$'),
    path        text NOT NULL DEFAULT '',
    message     text NOT NULL DEFAULT '' CHECK (length(message) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now(),
    taken_by    text,
    taken_at    timestamptz,
    closed_at   timestamptz,
    closed_by   text
);
-- At most one open request per student.
CREATE UNIQUE INDEX help_requests_open ON help_requests (username) WHERE closed_at IS NULL;
CREATE INDEX help_requests_created ON help_requests (created_at);

-- The console of one run (its last bytes), kept with the run. item is the
-- assignment or test whose submission folder held the file, if any.
CREATE TABLE transcripts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username    text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    path        text NOT NULL DEFAULT '',
    item        text,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL,
    exit_code   integer NOT NULL,
    reason      text NOT NULL,
    truncated   boolean NOT NULL DEFAULT false,
    output      bytea NOT NULL CHECK (length(output) <= 1048576)
);
CREATE INDEX transcripts_user_item ON transcripts (username, item, started_at);
CREATE INDEX transcripts_ended ON transcripts (ended_at);

-- +goose Down
DROP TABLE transcripts;
DROP TABLE help_requests;
ALTER TABLE tests DROP COLUMN allow_live;
DELETE FROM users WHERE role = 'ta';
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('student', 'professor', 'admin'));
