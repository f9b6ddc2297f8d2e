-- +goose Up
-- Every assignment and test has a slug in one shared namespace, because
-- both live under Submissions/<slug>/: course_items holds that namespace.
CREATE TABLE course_items (
    slug  text PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    kind  text NOT NULL CHECK (kind IN ('assignment', 'test')),
    UNIQUE (slug, kind)
);

-- publish_at NULL is a draft: students never see it.
CREATE TABLE assignments (
    slug            text PRIMARY KEY,
    kind            text NOT NULL DEFAULT 'assignment' CHECK (kind = 'assignment'),
    title           text NOT NULL CHECK (title <> ''),
    description_md  text NOT NULL DEFAULT '',
    publish_at      timestamptz,
    due_at          timestamptz NOT NULL,
    late_policy     text NOT NULL CHECK (late_policy IN ('none', 'cutoff')),
    late_cutoff_at  timestamptz,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (slug, kind) REFERENCES course_items (slug, kind) ON DELETE CASCADE,
    CHECK ((late_policy = 'cutoff') = (late_cutoff_at IS NOT NULL)),
    CHECK (late_cutoff_at IS NULL OR late_cutoff_at > due_at)
);

-- A test's material is visible to a student only inside their window:
-- [starts_at, ends_at), or, with duration_minutes, from when they start it
-- until min(start + duration, ends_at).
CREATE TABLE tests (
    slug                text PRIMARY KEY,
    kind                text NOT NULL DEFAULT 'test' CHECK (kind = 'test'),
    title               text NOT NULL CHECK (title <> ''),
    description_md      text NOT NULL DEFAULT '',
    publish_at          timestamptz,
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL CHECK (ends_at > starts_at),
    duration_minutes    integer CHECK (duration_minutes > 0),
    restrict_workspace  boolean NOT NULL DEFAULT false,
    restrict_repl       boolean NOT NULL DEFAULT false,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (slug, kind) REFERENCES course_items (slug, kind) ON DELETE CASCADE
);

CREATE TABLE test_starts (
    test        text NOT NULL REFERENCES tests (slug) ON DELETE CASCADE,
    username    text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    started_at  timestamptz NOT NULL,
    PRIMARY KEY (test, username)
);

-- Every submit is kept; the one with the highest n counts. files is
-- [{"name", "size", "sha256"}]; snapshot is the folder under the data
-- folder that holds the immutable copy.
CREATE TABLE submissions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item          text NOT NULL,
    kind          text NOT NULL,
    username      text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    n             integer NOT NULL CHECK (n >= 1),
    submitted_at  timestamptz NOT NULL,
    late          boolean NOT NULL DEFAULT false,
    auto          boolean NOT NULL DEFAULT false,
    files         jsonb NOT NULL DEFAULT '[]'::jsonb,
    snapshot      text NOT NULL,
    FOREIGN KEY (item, kind) REFERENCES course_items (slug, kind) ON DELETE CASCADE,
    UNIQUE (item, username, n)
);
-- A test is auto-submitted once per student, whatever loop runs it.
CREATE UNIQUE INDEX submissions_one_auto ON submissions (item, username) WHERE auto;

-- One current grade per item and student.
CREATE TABLE grades (
    item         text NOT NULL REFERENCES course_items (slug) ON DELETE CASCADE,
    username     text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    score        numeric CHECK (score >= 0),
    max_score    numeric NOT NULL CHECK (max_score > 0),
    feedback_md  text NOT NULL DEFAULT '',
    graded_by    text NOT NULL,
    graded_at    timestamptz NOT NULL,
    PRIMARY KEY (item, username)
);
CREATE INDEX grades_username ON grades (username);

-- +goose Down
DROP TABLE grades;
DROP TABLE submissions;
DROP TABLE test_starts;
DROP TABLE tests;
DROP TABLE assignments;
DROP TABLE course_items;
