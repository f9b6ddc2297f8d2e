-- +goose Up
-- The tests of an item, written by staff. An I/O case ('io') runs the
-- student's main file with stdin and compares what it prints with
-- expected (the comparison options below); a test file ('py') is a pytest
-- or unittest file, and each test in it is worth points (a test may say
-- otherwise with @pytest.mark.points(n)). Hidden tests are never shown to
-- students, neither their content nor their names: they live only here,
-- never in the files tree or a student's sandbox.
CREATE TABLE grading_tests (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item                        text NOT NULL REFERENCES course_items (slug) ON DELETE CASCADE,
    kind                        text NOT NULL CHECK (kind IN ('io', 'py')),
    name                        text NOT NULL CHECK (name <> ''),
    hidden                      boolean NOT NULL DEFAULT false,
    points                      numeric NOT NULL CHECK (points >= 0),
    position                    integer NOT NULL DEFAULT 0,
    main_file                   text NOT NULL DEFAULT '',
    stdin                       text NOT NULL DEFAULT '',
    expected                    text NOT NULL DEFAULT '',
    ignore_trailing_whitespace  boolean NOT NULL DEFAULT true,
    ignore_case                 boolean NOT NULL DEFAULT false,
    tolerance                   double precision CHECK (tolerance >= 0),
    cpu_seconds                 integer NOT NULL DEFAULT 2 CHECK (cpu_seconds BETWEEN 1 AND 60),
    source                      text NOT NULL DEFAULT '',
    updated_by                  text NOT NULL,
    updated_at                  timestamptz NOT NULL,
    UNIQUE (item, name)
);

-- Whether the students of an item see their scores and feedback: off
-- until staff release them.
CREATE TABLE grading_release (
    item         text PRIMARY KEY REFERENCES course_items (slug) ON DELETE CASCADE,
    released     boolean NOT NULL,
    changed_by   text NOT NULL,
    changed_at   timestamptz NOT NULL
);

-- One grading of one submission with every test, visible and hidden:
-- written once when it is over and never changed (a regrade adds a run).
-- results is [{test, kind, name, hidden, points, max_points, outcome,
-- reason, ...}].
CREATE TABLE grading_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id  bigint NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    item           text NOT NULL,
    username       text NOT NULL,
    n              integer NOT NULL,
    cause          text NOT NULL CHECK (cause IN ('submit', 'regrade')),
    score          numeric NOT NULL,
    max_score      numeric NOT NULL,
    error          text NOT NULL DEFAULT '',
    results        jsonb NOT NULL,
    requested_by   text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL
);
CREATE INDEX grading_runs_submission ON grading_runs (submission_id, id DESC);
CREATE INDEX grading_runs_item_user ON grading_runs (item, username, n DESC, id DESC);

-- +goose StatementBegin
CREATE FUNCTION grading_runs_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a grading run is never changed; a regrade adds a new one';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER grading_runs_sealed BEFORE UPDATE ON grading_runs
    FOR EACH ROW EXECUTE FUNCTION grading_runs_sealed();

-- Rubric items: points (negative ones take away) with a comment, written
-- once per item and given to any number of students.
CREATE TABLE rubric_items (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item      text NOT NULL REFERENCES course_items (slug) ON DELETE CASCADE,
    points    numeric NOT NULL,
    comment   text NOT NULL CHECK (comment <> ''),
    position  integer NOT NULL DEFAULT 0
);
CREATE TABLE rubric_marks (
    rubric_id  bigint NOT NULL REFERENCES rubric_items (id) ON DELETE CASCADE,
    username   text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    given_by   text NOT NULL,
    given_at   timestamptz NOT NULL,
    PRIMARY KEY (rubric_id, username)
);

-- +goose Down
DROP TABLE rubric_marks;
DROP TABLE rubric_items;
DROP TABLE grading_runs;
DROP FUNCTION grading_runs_sealed();
DROP TABLE grading_release;
DROP TABLE grading_tests;
