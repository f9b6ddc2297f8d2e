-- +goose Up
-- One row per regular file of the course tree: what the disk held when the
-- server last looked. Folders have no row.
CREATE TABLE files (
    path        text PRIMARY KEY,
    parent      text NOT NULL,
    owner       text NOT NULL DEFAULT '',
    size        bigint NOT NULL CHECK (size >= 0),
    hash        text NOT NULL,
    modified    timestamptz NOT NULL,
    updated_by  text NOT NULL DEFAULT ''
);
CREATE INDEX files_parent ON files (parent);
CREATE INDEX files_owner ON files (owner) WHERE owner <> '';

-- Saved versions of text files. content is NULL past the size kept.
CREATE TABLE file_revisions (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path     text NOT NULL,
    size     bigint NOT NULL,
    hash     text NOT NULL,
    author   text NOT NULL,
    created  timestamptz NOT NULL DEFAULT now(),
    content  bytea
);
CREATE INDEX file_revisions_path ON file_revisions (path, id);

-- Deleted files and folders, kept under <data>/.trash/<username>/<name>.
CREATE TABLE trash (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL,
    original_path text NOT NULL,
    trash_name    text NOT NULL UNIQUE,
    is_dir        boolean NOT NULL,
    size          bigint NOT NULL DEFAULT 0,
    deleted_at    timestamptz NOT NULL
);
CREATE INDEX trash_username ON trash (username, id);
CREATE INDEX trash_deleted_at ON trash (deleted_at);

-- +goose Down
DROP TABLE trash;
DROP TABLE file_revisions;
DROP TABLE files;
