package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is one account.
type User struct {
	ID                 int64
	Username           string
	DisplayName        string
	Email              string
	Role               string
	PasswordHash       string
	MustChangePassword bool
	Disabled           bool
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

const userColumns = `id, username, display_name, email, role, password_hash, must_change_password, disabled, created_at, updated_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.Role, &u.PasswordHash, &u.MustChangePassword, &u.Disabled, &u.CreatedAt, &u.UpdatedAt)
	return u, notFound(err)
}

// CreateUser inserts u; ErrConflict when the username is taken.
func (db *DB) CreateUser(ctx context.Context, u User) (User, error) {
	row := db.q.QueryRow(ctx, `INSERT INTO users (username, display_name, email, role, password_hash, must_change_password)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+userColumns,
		u.Username, u.DisplayName, u.Email, u.Role, u.PasswordHash, u.MustChangePassword)
	created, err := scanUser(row)
	if isUniqueViolation(err) {
		return User{}, ErrConflict
	}
	return created, err
}

// UserByName finds a user by username.
func (db *DB) UserByName(ctx context.Context, username string) (User, error) {
	return scanUser(db.q.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
}

// UserByID finds a user by id.
func (db *DB) UserByID(ctx context.Context, id int64) (User, error) {
	return scanUser(db.q.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// ListUsers returns every user, by username.
func (db *DB) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := db.q.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
}

// CountAdmins counts enabled admins.
func (db *DB) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := db.q.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled`).Scan(&n)
	return n, err
}

// SetPassword replaces a user's hash and ends every session of that user
// but keep (nil: all of them).
func (db *DB) SetPassword(ctx context.Context, userID int64, hash string, mustChange bool, keep []byte) error {
	return db.WithTx(ctx, func(tx *DB) error {
		tag, err := tx.q.Exec(ctx, `UPDATE users SET password_hash = $2, must_change_password = $3, updated_at = now() WHERE id = $1`, userID, hash, mustChange)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = tx.q.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2)`, userID, keep)
		return err
	})
}

// SetDisabled disables or enables a user; disabling ends their sessions.
func (db *DB) SetDisabled(ctx context.Context, userID int64, disabled bool) error {
	return db.WithTx(ctx, func(tx *DB) error {
		tag, err := tx.q.Exec(ctx, `UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1`, userID, disabled)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if disabled {
			_, err = tx.q.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
		}
		return err
	})
}

// UpdateProfile sets display name, email and role of an existing user.
func (db *DB) UpdateProfile(ctx context.Context, id int64, displayName, email, role string) error {
	_, err := db.q.Exec(ctx, `UPDATE users SET display_name = $2, email = $3, role = $4, updated_at = now() WHERE id = $1`, id, displayName, email, role)
	return err
}

// Audit writes one audit record.
func (db *DB) Audit(ctx context.Context, actor, action, target string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	b, err := json.Marshal(details)
	if err != nil {
		return err
	}
	_, err = db.q.Exec(ctx, `INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4)`, actor, action, target, b)
	return err
}

// AuditEntry is one audit record.
type AuditEntry struct {
	ID      int64          `json:"id"`
	At      time.Time      `json:"at"`
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Target  string         `json:"target"`
	Details map[string]any `json:"details"`
}

// AuditLog returns the newest entries first, at most limit, optionally only
// those whose action starts with prefix.
func (db *DB) AuditLog(ctx context.Context, prefix string, limit int) ([]AuditEntry, error) {
	rows, err := db.q.Query(ctx, `SELECT id, at, actor, action, target, details FROM audit_log
		WHERE action LIKE $1 || '%' ORDER BY id DESC LIMIT $2`, prefix, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Details)
		return e, err
	})
}
