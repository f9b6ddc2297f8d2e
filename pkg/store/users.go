package store

import (
	"context"
	"encoding/json"
	"errors"
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
	LastLoginAt        *time.Time // nil: never signed in
}

const userColumns = `id, username, display_name, email, role, password_hash, must_change_password, disabled, created_at, updated_at, last_login_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.Role, &u.PasswordHash, &u.MustChangePassword, &u.Disabled,
		&u.CreatedAt, &u.UpdatedAt, &u.LastLoginAt)
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

// RecordLogin notes that the user signed in at at.
func (db *DB) RecordLogin(ctx context.Context, userID int64, at time.Time) error {
	_, err := db.q.Exec(ctx, `UPDATE users SET last_login_at = $2 WHERE id = $1`, userID, at)
	return err
}

// SetRole changes a user's role and ends their sessions: what they may do
// changed, so they sign in again. It refuses (ErrLastAdmin) to take the
// role from the last enabled admin.
func (db *DB) SetRole(ctx context.Context, userID int64, role string) error {
	return db.WithTx(ctx, func(tx *DB) error {
		if err := tx.keepAnAdmin(ctx, userID, role != "admin"); err != nil {
			return err
		}
		tag, err := tx.q.Exec(ctx, `UPDATE users SET role = $2, updated_at = now() WHERE id = $1`, userID, role)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = tx.q.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
		return err
	})
}

// ErrLastAdmin: the change would leave no enabled admin.
var ErrLastAdmin = errors.New("store: the last enabled admin")

// ErrHasCourseWork: the user has submissions or grades, which a deletion
// would take with it.
var ErrHasCourseWork = errors.New("store: the user has submissions or grades")

// keepAnAdmin fails with ErrLastAdmin when userID is the only enabled
// admin and losing is true. It locks the admins until the transaction ends,
// so two admins cannot demote each other at once.
func (tx *DB) keepAnAdmin(ctx context.Context, userID int64, losing bool) error {
	if !losing {
		return nil
	}
	rows, err := tx.q.Query(ctx, `SELECT id FROM users WHERE role = 'admin' AND NOT disabled FOR UPDATE`)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	if len(ids) == 1 && ids[0] == userID {
		return ErrLastAdmin
	}
	return nil
}

// DeleteUser removes an account and its sessions. It refuses a user with
// submissions or grades (ErrHasCourseWork: disable them instead) and the
// last enabled admin (ErrLastAdmin). Their files are not the database's:
// the caller decides about them.
func (db *DB) DeleteUser(ctx context.Context, userID int64) error {
	return db.WithTx(ctx, func(tx *DB) error {
		if err := tx.keepAnAdmin(ctx, userID, true); err != nil {
			return err
		}
		var work bool
		err := tx.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM submissions s JOIN users u ON u.username = s.username WHERE u.id = $1)
			OR EXISTS (SELECT 1 FROM grades g JOIN users u ON u.username = g.username WHERE u.id = $1)`, userID).Scan(&work)
		if err != nil {
			return err
		}
		if work {
			return ErrHasCourseWork
		}
		tag, err := tx.q.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return nil
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
	return db.AuditSearch(ctx, AuditFilter{Action: prefix, Limit: limit})
}

// AuditFilter selects audit entries; empty fields select everything.
type AuditFilter struct {
	Actor  string // exactly this actor
	Action string // actions starting with this ("user." for every user action)
	Target string // targets containing this, in any case
	Before int64  // entries older than this id (the next page)
	Limit  int
}

// AuditSearch returns the entries f selects, newest first.
func (db *DB) AuditSearch(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	rows, err := db.q.Query(ctx, `SELECT id, at, actor, action, target, details FROM audit_log
		WHERE ($1 = '' OR actor = $1)
			AND action LIKE replace(replace(replace($2, '\', '\\'), '%', '\%'), '_', '\_') || '%'
			AND ($3 = '' OR strpos(lower(target), lower($3)) > 0)
			AND ($4 = 0 OR id < $4)
		ORDER BY id DESC LIMIT $5`, f.Actor, f.Action, f.Target, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Details)
		return e, err
	})
}
