package store

import (
	"context"
	"time"
)

// Session is one login. Only the SHA-256 of its token is stored.
type Session struct {
	TokenHash []byte
	UserID    int64
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
	IP        string
	UserAgent string
}

// CreateSession stores a new session.
func (db *DB) CreateSession(ctx context.Context, s Session) error {
	_, err := db.q.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at, ip, user_agent)
		VALUES ($1, $2, $3, $3, $4, $5, $6)`, s.TokenHash, s.UserID, s.CreatedAt, s.ExpiresAt, s.IP, s.UserAgent)
	return err
}

// SessionUser returns a session and its user in one round trip.
func (db *DB) SessionUser(ctx context.Context, tokenHash []byte) (Session, User, error) {
	var s Session
	var u User
	err := db.q.QueryRow(ctx, `SELECT s.token_hash, s.user_id, s.created_at, s.last_seen, s.expires_at, s.ip, s.user_agent,
			u.id, u.username, u.display_name, u.email, u.role, u.password_hash, u.must_change_password, u.disabled, u.created_at, u.updated_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1`, tokenHash).Scan(
		&s.TokenHash, &s.UserID, &s.CreatedAt, &s.LastSeen, &s.ExpiresAt, &s.IP, &s.UserAgent,
		&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.Role, &u.PasswordHash, &u.MustChangePassword, &u.Disabled, &u.CreatedAt, &u.UpdatedAt)
	return s, u, notFound(err)
}

// TouchSession records activity on a session.
func (db *DB) TouchSession(ctx context.Context, tokenHash []byte, at time.Time) error {
	_, err := db.q.Exec(ctx, `UPDATE sessions SET last_seen = $2 WHERE token_hash = $1`, tokenHash, at)
	return err
}

// DeleteSession ends one session.
func (db *DB) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := db.q.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return err
}

// DeleteExpiredSessions removes sessions past their absolute expiry or idle
// longer than idle, and returns how many.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time, idle time.Duration) (int64, error) {
	tag, err := db.q.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1 OR last_seen <= $2`, now, now.Add(-idle))
	return tag.RowsAffected(), err
}
