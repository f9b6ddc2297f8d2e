package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Kinds of course items; an assignment and a test never share a slug.
const (
	KindAssignment = "assignment"
	KindTest       = "test"
)

// Assignment is one assignment. PublishAt nil is a draft.
type Assignment struct {
	Slug          string
	Title         string
	DescriptionMD string
	PublishAt     *time.Time
	DueAt         time.Time
	LatePolicy    string // "none" or "cutoff"
	LateCutoffAt  *time.Time
	CreatedBy     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Test is one timed test. PublishAt nil is a draft; DurationMinutes nil
// means everyone has the whole window.
type Test struct {
	Slug              string
	Title             string
	DescriptionMD     string
	PublishAt         *time.Time
	StartsAt          time.Time
	EndsAt            time.Time
	DurationMinutes   *int
	RestrictWorkspace bool
	RestrictREPL      bool
	// AllowLive lets a restricted student ask for help, follow a
	// broadcast and be joined during the test.
	AllowLive bool
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TestStart is when a student started a test.
type TestStart struct {
	Test      string
	Username  string
	StartedAt time.Time
}

// SubmissionFile is one file of a snapshot.
type SubmissionFile struct {
	Name   string `json:"name"` // relative to the snapshot folder, with /
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Submission is one submit (or auto-submit) of an item by a student.
type Submission struct {
	ID          int64
	Item        string
	Kind        string
	Username    string
	N           int
	SubmittedAt time.Time
	Late        bool
	Auto        bool
	Files       []SubmissionFile
	Snapshot    string // folder relative to the data folder
}

// Grade is the current grade of a student for an item.
type Grade struct {
	Item       string
	Username   string
	Score      *float64
	MaxScore   float64
	FeedbackMD string
	GradedBy   string
	GradedAt   time.Time
}

// RosterRow is one student in the grading table of an item.
type RosterRow struct {
	Username    string
	DisplayName string
	Disabled    bool
	Count       int         // submissions made
	Latest      *Submission // nil when none; Files not loaded
	Grade       *Grade
}

const assignmentColumns = `slug, title, description_md, publish_at, due_at, late_policy, late_cutoff_at, created_by, created_at, updated_at`

func scanAssignment(row pgx.Row) (Assignment, error) {
	var a Assignment
	err := row.Scan(&a.Slug, &a.Title, &a.DescriptionMD, &a.PublishAt, &a.DueAt, &a.LatePolicy, &a.LateCutoffAt, &a.CreatedBy, &a.CreatedAt, &a.UpdatedAt)
	return a, notFound(err)
}

const testColumns = `slug, title, description_md, publish_at, starts_at, ends_at, duration_minutes, restrict_workspace, restrict_repl, allow_live, created_by, created_at, updated_at`

func scanTest(row pgx.Row) (Test, error) {
	var t Test
	err := row.Scan(&t.Slug, &t.Title, &t.DescriptionMD, &t.PublishAt, &t.StartsAt, &t.EndsAt, &t.DurationMinutes,
		&t.RestrictWorkspace, &t.RestrictREPL, &t.AllowLive, &t.CreatedBy, &t.CreatedAt, &t.UpdatedAt)
	return t, notFound(err)
}

func (db *DB) claimSlug(ctx context.Context, slug, kind string) error {
	_, err := db.q.Exec(ctx, `INSERT INTO course_items (slug, kind) VALUES ($1, $2)`, slug, kind)
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// CreateAssignment inserts a; ErrConflict when an assignment or test
// already has its slug.
func (db *DB) CreateAssignment(ctx context.Context, a Assignment) (Assignment, error) {
	var out Assignment
	err := db.WithTx(ctx, func(tx *DB) error {
		if err := tx.claimSlug(ctx, a.Slug, KindAssignment); err != nil {
			return err
		}
		var err error
		out, err = scanAssignment(tx.q.QueryRow(ctx, `INSERT INTO assignments
			(slug, title, description_md, publish_at, due_at, late_policy, late_cutoff_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+assignmentColumns,
			a.Slug, a.Title, a.DescriptionMD, a.PublishAt, a.DueAt, a.LatePolicy, a.LateCutoffAt, a.CreatedBy))
		return err
	})
	return out, err
}

// UpdateAssignment replaces the editable fields of the assignment a.Slug.
func (db *DB) UpdateAssignment(ctx context.Context, a Assignment) (Assignment, error) {
	return scanAssignment(db.q.QueryRow(ctx, `UPDATE assignments SET title = $2, description_md = $3, publish_at = $4,
		due_at = $5, late_policy = $6, late_cutoff_at = $7, updated_at = now() WHERE slug = $1 RETURNING `+assignmentColumns,
		a.Slug, a.Title, a.DescriptionMD, a.PublishAt, a.DueAt, a.LatePolicy, a.LateCutoffAt))
}

// Assignments returns every assignment, by due time.
func (db *DB) Assignments(ctx context.Context) ([]Assignment, error) {
	rows, err := db.q.Query(ctx, `SELECT `+assignmentColumns+` FROM assignments ORDER BY due_at, slug`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Assignment, error) { return scanAssignment(r) })
}

// AssignmentBySlug finds one assignment.
func (db *DB) AssignmentBySlug(ctx context.Context, slug string) (Assignment, error) {
	return scanAssignment(db.q.QueryRow(ctx, `SELECT `+assignmentColumns+` FROM assignments WHERE slug = $1`, slug))
}

// CreateTest inserts t; ErrConflict when an assignment or test already has
// its slug.
func (db *DB) CreateTest(ctx context.Context, t Test) (Test, error) {
	var out Test
	err := db.WithTx(ctx, func(tx *DB) error {
		if err := tx.claimSlug(ctx, t.Slug, KindTest); err != nil {
			return err
		}
		var err error
		out, err = scanTest(tx.q.QueryRow(ctx, `INSERT INTO tests
			(slug, title, description_md, publish_at, starts_at, ends_at, duration_minutes, restrict_workspace, restrict_repl, allow_live, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING `+testColumns,
			t.Slug, t.Title, t.DescriptionMD, t.PublishAt, t.StartsAt, t.EndsAt, t.DurationMinutes,
			t.RestrictWorkspace, t.RestrictREPL, t.AllowLive, t.CreatedBy))
		return err
	})
	return out, err
}

// UpdateTest replaces the editable fields of the test t.Slug.
func (db *DB) UpdateTest(ctx context.Context, t Test) (Test, error) {
	return scanTest(db.q.QueryRow(ctx, `UPDATE tests SET title = $2, description_md = $3, publish_at = $4,
		starts_at = $5, ends_at = $6, duration_minutes = $7, restrict_workspace = $8, restrict_repl = $9, allow_live = $10, updated_at = now()
		WHERE slug = $1 RETURNING `+testColumns,
		t.Slug, t.Title, t.DescriptionMD, t.PublishAt, t.StartsAt, t.EndsAt, t.DurationMinutes, t.RestrictWorkspace, t.RestrictREPL, t.AllowLive))
}

// Tests returns every test, by start time.
func (db *DB) Tests(ctx context.Context) ([]Test, error) {
	rows, err := db.q.Query(ctx, `SELECT `+testColumns+` FROM tests ORDER BY starts_at, slug`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Test, error) { return scanTest(r) })
}

// DeleteItem deletes an assignment or test with its starts, submissions
// and grades; ErrNotFound when there is no such item of that kind.
func (db *DB) DeleteItem(ctx context.Context, slug, kind string) error {
	tag, err := db.q.Exec(ctx, `DELETE FROM course_items WHERE slug = $1 AND kind = $2`, slug, kind)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// StartTest records that username started test at at, unless they already
// had: the first start stands. It returns the start that counts.
func (db *DB) StartTest(ctx context.Context, test, username string, at time.Time) (TestStart, error) {
	s := TestStart{Test: test, Username: username}
	err := db.q.QueryRow(ctx, `WITH ins AS (
			INSERT INTO test_starts (test, username, started_at) VALUES ($1, $2, $3)
			ON CONFLICT (test, username) DO NOTHING RETURNING started_at)
		SELECT started_at FROM ins UNION ALL SELECT started_at FROM test_starts WHERE test = $1 AND username = $2
		LIMIT 1`, test, username, at).Scan(&s.StartedAt)
	return s, notFound(err)
}

// TestStarts returns every start of every test.
func (db *DB) TestStarts(ctx context.Context) ([]TestStart, error) {
	rows, err := db.q.Query(ctx, `SELECT test, username, started_at FROM test_starts ORDER BY test, username`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TestStart, error) {
		var s TestStart
		err := r.Scan(&s.Test, &s.Username, &s.StartedAt)
		return s, err
	})
}

// LockSubmissions serialises the submits of one student for one item until
// the transaction ends, so numbering has no gaps and no races. Outside a
// transaction the lock would end with the statement, so it is refused.
func (db *DB) LockSubmissions(ctx context.Context, item, username string) error {
	if _, ok := db.q.(pgx.Tx); !ok {
		return errors.New("store: LockSubmissions outside a transaction locks nothing")
	}
	_, err := db.q.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('submissions/' || $1 || '/' || $2, 0))`, item, username)
	return err
}

// NextSubmissionN is the number the next submission of username for item
// gets; call it after LockSubmissions.
func (db *DB) NextSubmissionN(ctx context.Context, item, username string) (int, error) {
	var n int
	err := db.q.QueryRow(ctx, `SELECT coalesce(max(n), 0) + 1 FROM submissions WHERE item = $1 AND username = $2`, item, username).Scan(&n)
	return n, err
}

// HasAutoSubmission reports whether username's work for item was already
// auto-submitted.
func (db *DB) HasAutoSubmission(ctx context.Context, item, username string) (bool, error) {
	var ok bool
	err := db.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM submissions WHERE item = $1 AND username = $2 AND auto)`, item, username).Scan(&ok)
	return ok, err
}

const submissionColumns = `id, item, kind, username, n, submitted_at, late, auto, files, snapshot`

func scanSubmission(row pgx.Row) (Submission, error) {
	var s Submission
	err := row.Scan(&s.ID, &s.Item, &s.Kind, &s.Username, &s.N, &s.SubmittedAt, &s.Late, &s.Auto, &s.Files, &s.Snapshot)
	if s.Files == nil {
		s.Files = []SubmissionFile{}
	}
	return s, notFound(err)
}

// InsertSubmission records s; ErrConflict when its number or its
// auto-submit is already taken.
func (db *DB) InsertSubmission(ctx context.Context, s Submission) (Submission, error) {
	if s.Files == nil {
		s.Files = []SubmissionFile{}
	}
	out, err := scanSubmission(db.q.QueryRow(ctx, `INSERT INTO submissions (item, kind, username, n, submitted_at, late, auto, files, snapshot)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+submissionColumns,
		s.Item, s.Kind, s.Username, s.N, s.SubmittedAt, s.Late, s.Auto, s.Files, s.Snapshot))
	if isUniqueViolation(err) {
		return Submission{}, ErrConflict
	}
	return out, err
}

// SubmissionsOf returns every submission of username for item, oldest
// first.
func (db *DB) SubmissionsOf(ctx context.Context, item, username string) ([]Submission, error) {
	rows, err := db.q.Query(ctx, `SELECT `+submissionColumns+` FROM submissions WHERE item = $1 AND username = $2 ORDER BY n`, item, username)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Submission, error) { return scanSubmission(r) })
}

// SubmissionByN finds submission n of username for item.
func (db *DB) SubmissionByN(ctx context.Context, item, username string, n int) (Submission, error) {
	return scanSubmission(db.q.QueryRow(ctx, `SELECT `+submissionColumns+` FROM submissions
		WHERE item = $1 AND username = $2 AND n = $3`, item, username, n))
}

// CountSubmissions counts the submissions of an item.
func (db *DB) CountSubmissions(ctx context.Context, item string) (int, error) {
	var n int
	err := db.q.QueryRow(ctx, `SELECT count(*) FROM submissions WHERE item = $1`, item).Scan(&n)
	return n, err
}

// AutoSubmitted lists the students whose work for item was auto-submitted.
func (db *DB) AutoSubmitted(ctx context.Context, item string) (map[string]bool, error) {
	rows, err := db.q.Query(ctx, `SELECT username FROM submissions WHERE item = $1 AND auto`, item)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

const gradeColumns = `item, username, score::float8, max_score::float8, feedback_md, graded_by, graded_at`

func scanGrade(row pgx.Row) (Grade, error) {
	var g Grade
	err := row.Scan(&g.Item, &g.Username, &g.Score, &g.MaxScore, &g.FeedbackMD, &g.GradedBy, &g.GradedAt)
	return g, notFound(err)
}

// SetGrade records g as the current grade of g.Username for g.Item.
func (db *DB) SetGrade(ctx context.Context, g Grade) (Grade, error) {
	return scanGrade(db.q.QueryRow(ctx, `INSERT INTO grades (item, username, score, max_score, feedback_md, graded_by, graded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (item, username) DO UPDATE SET score = EXCLUDED.score, max_score = EXCLUDED.max_score,
			feedback_md = EXCLUDED.feedback_md, graded_by = EXCLUDED.graded_by, graded_at = EXCLUDED.graded_at
		RETURNING `+gradeColumns, g.Item, g.Username, g.Score, g.MaxScore, g.FeedbackMD, g.GradedBy, g.GradedAt))
}

// GradeForUpdate returns the grade of username for item and locks it until
// the transaction ends (ErrNotFound when there is none), so that a change
// of some of its fields keeps the others as they are.
func (db *DB) GradeForUpdate(ctx context.Context, item, username string) (Grade, error) {
	return scanGrade(db.q.QueryRow(ctx, `SELECT `+gradeColumns+` FROM grades WHERE item = $1 AND username = $2 FOR UPDATE`,
		item, username))
}

// Grades returns the grades of username, or everyone's when username is
// "", by item and user.
func (db *DB) Grades(ctx context.Context, username string) ([]Grade, error) {
	rows, err := db.q.Query(ctx, `SELECT `+gradeColumns+` FROM grades WHERE $1 = '' OR username = $1
		ORDER BY item, username`, username)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Grade, error) { return scanGrade(r) })
}

// ItemRoster returns one row per student (every user with the student
// role) for item: how many submissions, the latest one, the grade.
func (db *DB) ItemRoster(ctx context.Context, item string) ([]RosterRow, error) {
	rows, err := db.q.Query(ctx, `SELECT u.username, u.display_name, u.disabled,
			(SELECT count(*) FROM submissions s WHERE s.item = $1 AND s.username = u.username),
			l.n, l.submitted_at, l.late, l.auto,
			g.score::float8, g.max_score::float8, g.feedback_md, g.graded_by, g.graded_at
		FROM users u
		LEFT JOIN LATERAL (SELECT n, submitted_at, late, auto FROM submissions s
			WHERE s.item = $1 AND s.username = u.username ORDER BY n DESC LIMIT 1) l ON true
		LEFT JOIN grades g ON g.item = $1 AND g.username = u.username
		WHERE u.role = 'student'
		ORDER BY u.username`, item)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RosterRow, error) {
		var row RosterRow
		var n *int
		var at, gradedAt *time.Time
		var late, auto *bool
		var score, maxScore *float64
		var feedback, gradedBy *string
		err := r.Scan(&row.Username, &row.DisplayName, &row.Disabled, &row.Count, &n, &at, &late, &auto,
			&score, &maxScore, &feedback, &gradedBy, &gradedAt)
		if err != nil {
			return row, err
		}
		if n != nil {
			row.Latest = &Submission{Item: item, Username: row.Username, N: *n, SubmittedAt: *at, Late: *late, Auto: *auto}
		}
		if maxScore != nil {
			row.Grade = &Grade{Item: item, Username: row.Username, Score: score, MaxScore: *maxScore,
				FeedbackMD: *feedback, GradedBy: *gradedBy, GradedAt: *gradedAt}
		}
		return row, nil
	})
}
