package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// HelpRequest is one press of "Ask for help". It is open while ClosedAt is
// nil; TakenBy names the helper who took it.
type HelpRequest struct {
	ID        int64
	Username  string
	Tab       string
	Path      string
	Message   string
	CreatedAt time.Time
	TakenBy   *string
	TakenAt   *time.Time
	ClosedAt  *time.Time
	ClosedBy  *string
}

const helpColumns = `id, username, tab, path, message, created_at, taken_by, taken_at, closed_at, closed_by`

func scanHelp(r pgx.Row) (HelpRequest, error) {
	var h HelpRequest
	err := r.Scan(&h.ID, &h.Username, &h.Tab, &h.Path, &h.Message, &h.CreatedAt, &h.TakenBy, &h.TakenAt, &h.ClosedAt, &h.ClosedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, ErrNotFound
	}
	return h, err
}

// OpenHelpRequest records a student's request; ErrConflict when they have
// one open already.
func (db *DB) OpenHelpRequest(ctx context.Context, h HelpRequest) (HelpRequest, error) {
	out, err := scanHelp(db.q.QueryRow(ctx, `INSERT INTO help_requests (username, tab, path, message, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+helpColumns, h.Username, h.Tab, h.Path, h.Message, h.CreatedAt))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return out, ErrConflict
	}
	return out, err
}

// OpenHelpRequests lists the open requests, oldest first.
func (db *DB) OpenHelpRequests(ctx context.Context) ([]HelpRequest, error) {
	rows, err := db.q.Query(ctx, `SELECT `+helpColumns+` FROM help_requests WHERE closed_at IS NULL ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (HelpRequest, error) { return scanHelp(r) })
}

// HelpRequestByID returns one request, open or not.
func (db *DB) HelpRequestByID(ctx context.Context, id int64) (HelpRequest, error) {
	return scanHelp(db.q.QueryRow(ctx, `SELECT `+helpColumns+` FROM help_requests WHERE id = $1`, id))
}

// TakeHelpRequest gives an open request to helper (taking it over from
// another helper is allowed: the queue is shared); ErrNotFound when it is
// not open.
func (db *DB) TakeHelpRequest(ctx context.Context, id int64, helper string, at time.Time) (HelpRequest, error) {
	return scanHelp(db.q.QueryRow(ctx, `UPDATE help_requests SET taken_by = $2, taken_at = $3
		WHERE id = $1 AND closed_at IS NULL RETURNING `+helpColumns, id, helper, at))
}

// CloseHelpRequest ends an open request; ErrNotFound when it is not open.
func (db *DB) CloseHelpRequest(ctx context.Context, id int64, by string, at time.Time) (HelpRequest, error) {
	return scanHelp(db.q.QueryRow(ctx, `UPDATE help_requests SET closed_at = $3, closed_by = $2
		WHERE id = $1 AND closed_at IS NULL RETURNING `+helpColumns, id, by, at))
}

// CloseHelpRequestsOf ends every open request of username (at logout) and
// returns them.
func (db *DB) CloseHelpRequestsOf(ctx context.Context, username, by string, at time.Time) ([]HelpRequest, error) {
	rows, err := db.q.Query(ctx, `UPDATE help_requests SET closed_at = $3, closed_by = $2
		WHERE username = $1 AND closed_at IS NULL RETURNING `+helpColumns, username, by, at)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (HelpRequest, error) { return scanHelp(r) })
}

// Transcript is the console of one run: its last bytes, kept with the run.
type Transcript struct {
	ID        int64
	Username  string
	Path      string
	Item      *string // the item whose submission folder held the file
	StartedAt time.Time
	EndedAt   time.Time
	ExitCode  int
	Reason    string
	Truncated bool // older output was cut off
	Output    []byte
}

// AddTranscript keeps one run's console.
func (db *DB) AddTranscript(ctx context.Context, t Transcript) (int64, error) {
	var id int64
	err := db.q.QueryRow(ctx, `INSERT INTO transcripts (username, path, item, started_at, ended_at, exit_code, reason, truncated, output)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		t.Username, t.Path, t.Item, t.StartedAt, t.EndedAt, t.ExitCode, t.Reason, t.Truncated, t.Output).Scan(&id)
	return id, err
}

// Transcripts lists username's transcripts, newest first, at most limit:
// those of item when item is not "", else all. Output is left out.
func (db *DB) Transcripts(ctx context.Context, username, item string, limit int) ([]Transcript, error) {
	rows, err := db.q.Query(ctx, `SELECT id, username, path, item, started_at, ended_at, exit_code, reason, truncated, length(output)
		FROM transcripts WHERE username = $1 AND ($2 = '' OR item = $2) ORDER BY started_at DESC, id DESC LIMIT $3`,
		username, item, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Transcript, error) {
		var t Transcript
		var n int
		err := r.Scan(&t.ID, &t.Username, &t.Path, &t.Item, &t.StartedAt, &t.EndedAt, &t.ExitCode, &t.Reason, &t.Truncated, &n)
		t.Output = make([]byte, 0, n)
		return t, err
	})
}

// TranscriptByID returns one transcript with its output.
func (db *DB) TranscriptByID(ctx context.Context, id int64) (Transcript, error) {
	var t Transcript
	err := db.q.QueryRow(ctx, `SELECT id, username, path, item, started_at, ended_at, exit_code, reason, truncated, output
		FROM transcripts WHERE id = $1`, id).
		Scan(&t.ID, &t.Username, &t.Path, &t.Item, &t.StartedAt, &t.EndedAt, &t.ExitCode, &t.Reason, &t.Truncated, &t.Output)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// DeleteTranscriptsBefore removes transcripts of runs that ended before
// cutoff and says how many.
func (db *DB) DeleteTranscriptsBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := db.q.Exec(ctx, `DELETE FROM transcripts WHERE ended_at < $1`, cutoff)
	return tag.RowsAffected(), err
}
