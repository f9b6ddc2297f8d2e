package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Kinds of grading tests.
const (
	TestIO = "io" // stdin in, stdout compared with expected
	TestPy = "py" // a pytest or unittest file
)

// GradingTest is one test of an item: an I/O case or a test file.
type GradingTest struct {
	ID       int64
	Item     string
	Kind     string
	Name     string
	Hidden   bool
	Points   float64 // an I/O case's; each test of a file's
	Position int
	// I/O cases.
	MainFile                 string // "" runs main.py
	Stdin                    string
	Expected                 string
	IgnoreTrailingWhitespace bool
	IgnoreCase               bool
	Tolerance                *float64 // numbers within it count as equal; nil: exact
	CPUSeconds               int
	// Test files.
	Source    string
	UpdatedBy string
	UpdatedAt time.Time
}

const gradingTestColumns = `id, item, kind, name, hidden, points::float8, position, main_file, stdin, expected,
	ignore_trailing_whitespace, ignore_case, tolerance, cpu_seconds, source, updated_by, updated_at`

func scanGradingTest(row pgx.Row) (GradingTest, error) {
	var t GradingTest
	err := row.Scan(&t.ID, &t.Item, &t.Kind, &t.Name, &t.Hidden, &t.Points, &t.Position, &t.MainFile, &t.Stdin,
		&t.Expected, &t.IgnoreTrailingWhitespace, &t.IgnoreCase, &t.Tolerance, &t.CPUSeconds, &t.Source,
		&t.UpdatedBy, &t.UpdatedAt)
	return t, notFound(err)
}

// GradingTests lists an item's tests in their order.
func (db *DB) GradingTests(ctx context.Context, item string) ([]GradingTest, error) {
	rows, err := db.q.Query(ctx, `SELECT `+gradingTestColumns+` FROM grading_tests WHERE item = $1
		ORDER BY position, id`, item)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (GradingTest, error) { return scanGradingTest(r) })
}

// GradingTest finds one test of an item.
func (db *DB) GradingTest(ctx context.Context, item string, id int64) (GradingTest, error) {
	return scanGradingTest(db.q.QueryRow(ctx, `SELECT `+gradingTestColumns+` FROM grading_tests
		WHERE item = $1 AND id = $2`, item, id))
}

// CreateGradingTest adds t (after the item's others); ErrConflict when its
// name is taken.
func (db *DB) CreateGradingTest(ctx context.Context, t GradingTest) (GradingTest, error) {
	out, err := scanGradingTest(db.q.QueryRow(ctx, `INSERT INTO grading_tests (item, kind, name, hidden, points,
			position, main_file, stdin, expected, ignore_trailing_whitespace, ignore_case, tolerance, cpu_seconds,
			source, updated_by, updated_at)
		VALUES ($1, $2, $3, $4, $5,
			(SELECT coalesce(max(position), 0) + 1 FROM grading_tests WHERE item = $1),
			$6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		RETURNING `+gradingTestColumns,
		t.Item, t.Kind, t.Name, t.Hidden, t.Points, t.MainFile, t.Stdin, t.Expected, t.IgnoreTrailingWhitespace,
		t.IgnoreCase, t.Tolerance, t.CPUSeconds, t.Source, t.UpdatedBy, t.UpdatedAt))
	if isUniqueViolation(err) {
		return GradingTest{}, ErrConflict
	}
	return out, err
}

// UpdateGradingTest replaces test t.ID of t.Item (its kind stays).
func (db *DB) UpdateGradingTest(ctx context.Context, t GradingTest) (GradingTest, error) {
	out, err := scanGradingTest(db.q.QueryRow(ctx, `UPDATE grading_tests SET name = $3, hidden = $4, points = $5,
			main_file = $6, stdin = $7, expected = $8, ignore_trailing_whitespace = $9, ignore_case = $10,
			tolerance = $11, cpu_seconds = $12, source = $13, updated_by = $14, updated_at = $15
		WHERE item = $1 AND id = $2 RETURNING `+gradingTestColumns,
		t.Item, t.ID, t.Name, t.Hidden, t.Points, t.MainFile, t.Stdin, t.Expected, t.IgnoreTrailingWhitespace,
		t.IgnoreCase, t.Tolerance, t.CPUSeconds, t.Source, t.UpdatedBy, t.UpdatedAt))
	if isUniqueViolation(err) {
		return GradingTest{}, ErrConflict
	}
	return out, err
}

// DeleteGradingTest removes one test; ErrNotFound when there is none.
func (db *DB) DeleteGradingTest(ctx context.Context, item string, id int64) error {
	tag, err := db.q.Exec(ctx, `DELETE FROM grading_tests WHERE item = $1 AND id = $2`, item, id)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

// Released says whether the students of item see their scores and
// feedback.
func (db *DB) Released(ctx context.Context, item string) (bool, error) {
	var r bool
	err := db.q.QueryRow(ctx, `SELECT released FROM grading_release WHERE item = $1`, item).Scan(&r)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return r, err
}

// SetReleased turns the release switch of item.
func (db *DB) SetReleased(ctx context.Context, item string, released bool, by string, at time.Time) error {
	_, err := db.q.Exec(ctx, `INSERT INTO grading_release (item, released, changed_by, changed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (item) DO UPDATE SET released = EXCLUDED.released, changed_by = EXCLUDED.changed_by,
			changed_at = EXCLUDED.changed_at`, item, released, by, at)
	return err
}

// ReleasedGrades is Grades of items whose results are released.
func (db *DB) ReleasedGrades(ctx context.Context, username string) ([]Grade, error) {
	rows, err := db.q.Query(ctx, `SELECT `+gradeColumns+` FROM grades g
		WHERE ($1 = '' OR username = $1)
		  AND EXISTS (SELECT 1 FROM grading_release r WHERE r.item = g.item AND r.released)
		ORDER BY item, username`, username)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Grade, error) { return scanGrade(r) })
}

// GradingRun is one grading of one submission; Results is the grader's
// JSON, kept as it was written.
type GradingRun struct {
	ID           int64
	SubmissionID int64
	Item         string
	Username     string
	N            int
	Cause        string // "submit" or "regrade"
	Score        float64
	MaxScore     float64
	Error        string
	Results      json.RawMessage
	RequestedBy  string
	StartedAt    time.Time
	FinishedAt   time.Time
}

const gradingRunColumns = `id, submission_id, item, username, n, cause, score::float8, max_score::float8, error,
	results, requested_by, started_at, finished_at`

func scanGradingRun(row pgx.Row) (GradingRun, error) {
	var r GradingRun
	err := row.Scan(&r.ID, &r.SubmissionID, &r.Item, &r.Username, &r.N, &r.Cause, &r.Score, &r.MaxScore, &r.Error,
		&r.Results, &r.RequestedBy, &r.StartedAt, &r.FinishedAt)
	return r, notFound(err)
}

// InsertGradingRun records a finished grading. Runs are never changed.
func (db *DB) InsertGradingRun(ctx context.Context, r GradingRun) (GradingRun, error) {
	return scanGradingRun(db.q.QueryRow(ctx, `INSERT INTO grading_runs (submission_id, item, username, n, cause,
			score, max_score, error, results, requested_by, started_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING `+gradingRunColumns,
		r.SubmissionID, r.Item, r.Username, r.N, r.Cause, r.Score, r.MaxScore, r.Error, r.Results, r.RequestedBy,
		r.StartedAt, r.FinishedAt))
}

// LatestRuns is, per student of item, the newest run of their latest
// submission (students whose latest submission has none are missing).
func (db *DB) LatestRuns(ctx context.Context, item string) (map[string]GradingRun, error) {
	rows, err := db.q.Query(ctx, `SELECT `+gradingRunColumns+` FROM grading_runs WHERE id IN (
		SELECT DISTINCT ON (r.username) r.id FROM grading_runs r
		JOIN (SELECT username, max(n) AS n FROM submissions WHERE item = $1 GROUP BY username) l
		  ON l.username = r.username AND l.n = r.n
		WHERE r.item = $1
		ORDER BY r.username, r.id DESC)`, item)
	if err != nil {
		return nil, err
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GradingRun, error) { return scanGradingRun(r) })
	if err != nil {
		return nil, err
	}
	out := make(map[string]GradingRun, len(runs))
	for _, r := range runs {
		out[r.Username] = r
	}
	return out, nil
}

// RunsOf lists the runs of one student's submissions of item, newest first.
func (db *DB) RunsOf(ctx context.Context, item, username string) ([]GradingRun, error) {
	rows, err := db.q.Query(ctx, `SELECT `+gradingRunColumns+` FROM grading_runs WHERE item = $1 AND username = $2
		ORDER BY n DESC, id DESC`, item, username)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (GradingRun, error) { return scanGradingRun(r) })
}

// LatestSubmissions is each student's latest submission of item (the one
// that counts), by username.
func (db *DB) LatestSubmissions(ctx context.Context, item string) ([]Submission, error) {
	rows, err := db.q.Query(ctx, `SELECT DISTINCT ON (username) `+submissionColumns+` FROM submissions
		WHERE item = $1 ORDER BY username, n DESC`, item)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Submission, error) { return scanSubmission(r) })
}

// SubmissionByID finds one submission.
func (db *DB) SubmissionByID(ctx context.Context, id int64) (Submission, error) {
	return scanSubmission(db.q.QueryRow(ctx, `SELECT `+submissionColumns+` FROM submissions WHERE id = $1`, id))
}

// RubricItem is a reusable line of an item's rubric.
type RubricItem struct {
	ID       int64
	Item     string
	Points   float64
	Comment  string
	Position int
}

// RubricItems lists an item's rubric.
func (db *DB) RubricItems(ctx context.Context, item string) ([]RubricItem, error) {
	rows, err := db.q.Query(ctx, `SELECT id, item, points::float8, comment, position FROM rubric_items
		WHERE item = $1 ORDER BY position, id`, item)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RubricItem, error) {
		var ri RubricItem
		err := r.Scan(&ri.ID, &ri.Item, &ri.Points, &ri.Comment, &ri.Position)
		return ri, err
	})
}

// SaveRubricItem adds ri (ID 0) or changes it.
func (db *DB) SaveRubricItem(ctx context.Context, ri RubricItem) (RubricItem, error) {
	var row pgx.Row
	if ri.ID == 0 {
		row = db.q.QueryRow(ctx, `INSERT INTO rubric_items (item, points, comment, position)
			VALUES ($1, $2, $3, (SELECT coalesce(max(position), 0) + 1 FROM rubric_items WHERE item = $1))
			RETURNING id, item, points::float8, comment, position`, ri.Item, ri.Points, ri.Comment)
	} else {
		row = db.q.QueryRow(ctx, `UPDATE rubric_items SET points = $3, comment = $4 WHERE item = $1 AND id = $2
			RETURNING id, item, points::float8, comment, position`, ri.Item, ri.ID, ri.Points, ri.Comment)
	}
	var out RubricItem
	err := row.Scan(&out.ID, &out.Item, &out.Points, &out.Comment, &out.Position)
	return out, notFound(err)
}

// DeleteRubricItem removes a rubric line and every mark of it.
func (db *DB) DeleteRubricItem(ctx context.Context, item string, id int64) error {
	tag, err := db.q.Exec(ctx, `DELETE FROM rubric_items WHERE item = $1 AND id = $2`, item, id)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

// RubricMarks is, per student, the rubric lines of item given to them.
func (db *DB) RubricMarks(ctx context.Context, item, username string) (map[string][]int64, error) {
	rows, err := db.q.Query(ctx, `SELECT m.username, m.rubric_id FROM rubric_marks m
		JOIN rubric_items i ON i.id = m.rubric_id
		WHERE i.item = $1 AND ($2 = '' OR m.username = $2) ORDER BY i.position, i.id`, item, username)
	if err != nil {
		return nil, err
	}
	out := map[string][]int64{}
	var user string
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&user, &id}, func() error {
		out[user] = append(out[user], id)
		return nil
	})
	return out, err
}

// SetRubricMarks gives username exactly the rubric lines ids of item.
func (db *DB) SetRubricMarks(ctx context.Context, item, username string, ids []int64, by string, at time.Time) error {
	return db.WithTx(ctx, func(tx *DB) error {
		if _, err := tx.q.Exec(ctx, `DELETE FROM rubric_marks m USING rubric_items i
			WHERE i.id = m.rubric_id AND i.item = $1 AND m.username = $2 AND NOT (m.rubric_id = ANY($3))`,
			item, username, ids); err != nil {
			return err
		}
		_, err := tx.q.Exec(ctx, `INSERT INTO rubric_marks (rubric_id, username, given_by, given_at)
			SELECT id, $2, $4, $5 FROM rubric_items WHERE item = $1 AND id = ANY($3)
			ON CONFLICT (rubric_id, username) DO NOTHING`, item, username, ids, by, at)
		if err != nil {
			return err
		}
		var n int
		if err := tx.q.QueryRow(ctx, `SELECT count(*) FROM rubric_items WHERE item = $1 AND id = ANY($2)`,
			item, ids).Scan(&n); err != nil {
			return err
		}
		if n != len(ids) {
			return ErrNotFound
		}
		return nil
	})
}

// ReleasedRunItems lists the items whose results are released and that
// username has a grading run of.
func (db *DB) ReleasedRunItems(ctx context.Context, username string) ([]string, error) {
	rows, err := db.q.Query(ctx, `SELECT DISTINCT r.item FROM grading_runs r
		JOIN grading_release g ON g.item = r.item AND g.released
		WHERE r.username = $1 ORDER BY r.item`, username)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
