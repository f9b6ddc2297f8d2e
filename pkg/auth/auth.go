// Package auth owns logins: password hashing with bounded concurrency,
// session tokens (only their SHA-256 is stored), login throttling, the
// session cookie, role checks and the same-origin rule for state-changing
// requests. It never stores or logs a password or a raw token.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pythonide/pyide/pkg/store"
)

// CookieName is the session cookie.
const CookieName = "pyide_session"

// Errors of Login and Authenticate.
var (
	ErrBadCredentials = errors.New("wrong username or password")
	ErrNoSession      = errors.New("not logged in")
)

// ThrottledError says how long a client must wait before trying again.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins for this account; try again in %s, or ask your professor to reset the password", e.RetryAfter.Round(time.Second))
}

// Event tells listeners that sessions ended, so live terminals close.
type Event struct {
	Username  string
	TokenHash []byte // nil: every session of Username
	Keep      []byte // a session that stays (the one that changed the password)
	Reason    string // "logout", "disabled", "password"
}

// Options configure a Service.
type Options struct {
	DB              *store.DB
	Hasher          *Hasher
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	MaxFailures     int
	Window          time.Duration
	// AddressPenalty is how long a failed login from a slowed address
	// holds that address's one turn; 0 means a second.
	AddressPenalty time.Duration
	CookieSecure   bool
	PublicURL      string
	Clock          func() time.Time
	// After is the timer of Clock (time.After when nil); tests fire it.
	After  func(time.Duration) <-chan time.Time
	Logger *slog.Logger
}

// Service is the login and session authority.
type Service struct {
	opts      Options
	byUser    *accountLimiter
	byAddr    *addressLimiter
	mu        sync.Mutex
	listeners []func(Event)
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// The CLI builds a Service that never logs anyone in; give it limits
	// that work all the same.
	if opts.MaxFailures < 1 {
		opts.MaxFailures = 5
	}
	if opts.Window <= 0 {
		opts.Window = 15 * time.Minute
	}
	if opts.AddressPenalty <= 0 {
		opts.AddressPenalty = time.Second
	}
	return &Service{
		opts:   opts,
		byUser: newAccountLimiter(opts.MaxFailures, opts.Window),
		// An address (a lab behind one NAT) has many users: it fails more
		// often before it is slowed, and is never refused (see throttle.go).
		byAddr: newAddressLimiter(opts.MaxFailures*10, opts.Window, opts.AddressPenalty, opts.After),
	}
}

// Hasher is the service's password hasher.
func (s *Service) Hasher() *Hasher { return s.opts.Hasher }

// OnSessionEnd registers fn to be told when sessions end.
func (s *Service) OnSessionEnd(fn func(Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, fn)
}

func (s *Service) emit(ev Event) {
	s.mu.Lock()
	ls := append([]func(Event){}, s.listeners...)
	s.mu.Unlock()
	for _, fn := range ls {
		fn(ev)
	}
}

// HashToken is the stored form of a session token.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func toUser(u store.User) User {
	return User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: u.Role, MustChangePassword: u.MustChangePassword}
}

// Login checks a password and creates a session. Unknown users and wrong
// passwords get the same error after the same work. addr is the client's
// address (server.ClientAddr); throttle.go says how the two counters work.
func (s *Service) Login(ctx context.Context, username, password, addr, userAgent string) (string, User, error) {
	end, err := s.byUser.reserve(ctx, username, s.opts.Clock)
	if err != nil {
		return "", User{}, err
	}
	result := abandoned
	defer func() { end(result) }()
	from, err := s.byAddr.enter(ctx, addr, s.opts.Clock())
	if err != nil {
		return "", User{}, err
	}
	u, ok, err := s.check(ctx, username, password)
	from.leave(err == nil && !ok, s.opts.Clock())
	if err != nil {
		return "", User{}, err
	}
	if !ok {
		result = failed
		return "", User{}, ErrBadCredentials
	}
	result = succeeded
	now := s.opts.Clock()
	token := newToken()
	if len(userAgent) > 256 {
		userAgent = userAgent[:256]
	}
	err = s.opts.DB.CreateSession(ctx, store.Session{
		TokenHash: HashToken(token), UserID: u.ID, CreatedAt: now,
		ExpiresAt: now.Add(s.opts.AbsoluteTimeout), IP: addr, UserAgent: userAgent,
	})
	if err != nil {
		return "", User{}, err
	}
	// For the admin's list of users; a failure here must not fail a login.
	if err := s.opts.DB.RecordLogin(ctx, u.ID, now); err != nil {
		s.opts.Logger.Warn("auth: recording a login", "user", u.Username, "error", err)
	}
	return token, toUser(u), nil
}

// check compares password with username's, running bcrypt for unknown
// users too so that the answer takes as long. A disabled account is a
// failure like a wrong password.
func (s *Service) check(ctx context.Context, username, password string) (store.User, bool, error) {
	u, err := s.opts.DB.UserByName(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, err
	}
	ok, err := s.opts.Hasher.Compare(ctx, u.PasswordHash, password)
	if err != nil {
		return store.User{}, false, err
	}
	return u, ok && !u.Disabled, nil
}

// touchEvery limits last-seen writes to one per session per minute, so a
// busy IDE does not write the sessions table on every request.
const touchEvery = time.Minute

// Authenticate returns the user of a live session token, and counts the
// call as activity that keeps the session from idling out.
func (s *Service) Authenticate(ctx context.Context, token string) (User, error) {
	return s.verify(ctx, token, true)
}

// Check is Authenticate without counting as activity: a page merely left
// open (the terminal's periodic recheck) must not keep an idle login, on a
// lab computer say, alive.
func (s *Service) Check(ctx context.Context, token string) (User, error) {
	return s.verify(ctx, token, false)
}

func (s *Service) verify(ctx context.Context, token string, active bool) (User, error) {
	if token == "" || len(token) > 128 {
		return User{}, ErrNoSession
	}
	h := HashToken(token)
	sess, u, err := s.opts.DB.SessionUser(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, ErrNoSession
	}
	if err != nil {
		return User{}, err
	}
	now := s.opts.Clock()
	if u.Disabled || !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= s.opts.IdleTimeout {
		_ = s.opts.DB.DeleteSession(ctx, h)
		return User{}, ErrNoSession
	}
	if active && now.Sub(sess.LastSeen) >= min(touchEvery, s.opts.IdleTimeout/4) {
		if err := s.opts.DB.TouchSession(ctx, h, now); err != nil {
			return User{}, err
		}
	}
	return toUser(u), nil
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, username, token string) error {
	h := HashToken(token)
	if err := s.opts.DB.DeleteSession(ctx, h); err != nil {
		return err
	}
	s.emit(Event{Username: username, TokenHash: h, Reason: "logout"})
	return nil
}

// ChangePassword checks the current password and sets a new one; every
// other session of the user ends.
func (s *Service) ChangePassword(ctx context.Context, u User, token, current, next string) error {
	row, err := s.opts.DB.UserByID(ctx, u.ID)
	if err != nil {
		return err
	}
	ok, err := s.opts.Hasher.Compare(ctx, row.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		return ErrBadCredentials
	}
	if err := CheckPasswordPolicy(next); err != nil {
		return err
	}
	if next == current {
		// Mostly a handed-out password typed twice: it stays on paper.
		return fmt.Errorf("%w: choose a password different from the current one", ErrPasswordPolicy)
	}
	hash, err := s.opts.Hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	// Every other session ends: whoever knew the old password is out.
	keep := HashToken(token)
	if err := s.opts.DB.SetPassword(ctx, u.ID, hash, false, keep); err != nil {
		return err
	}
	s.emit(Event{Username: u.Username, Keep: keep, Reason: "password"})
	return nil
}

// ResetPassword gives u a one-time password (they must change it), ends
// all their sessions and tells listeners.
func (s *Service) ResetPassword(ctx context.Context, u store.User, password string) error {
	hash, err := s.opts.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	if err := s.opts.DB.SetPassword(ctx, u.ID, hash, true, nil); err != nil {
		return err
	}
	s.emit(Event{Username: u.Username, Reason: "password"})
	return nil
}

// SetDisabled disables or enables an account; disabling ends its sessions
// and tells listeners.
func (s *Service) SetDisabled(ctx context.Context, username string, disabled bool) error {
	u, err := s.opts.DB.UserByName(ctx, username)
	if err != nil {
		return err
	}
	if err := s.opts.DB.SetDisabled(ctx, u.ID, disabled); err != nil {
		return err
	}
	if disabled {
		s.emit(Event{Username: username, Reason: "disabled"})
	}
	return nil
}

// SetRole gives an account another role. What they may do changed, so
// their sessions end (they sign in again with the new role) and listeners
// are told. Taking the admin role from the last enabled admin fails with
// store.ErrLastAdmin.
func (s *Service) SetRole(ctx context.Context, username, role string) error {
	if !ValidRole(role) {
		return fmt.Errorf("auth: no such role %q", role)
	}
	u, err := s.opts.DB.UserByName(ctx, username)
	if err != nil {
		return err
	}
	if u.Role == role {
		return nil
	}
	if err := s.opts.DB.SetRole(ctx, u.ID, role); err != nil {
		return err
	}
	s.emit(Event{Username: username, Reason: "role"})
	return nil
}

// DeleteUser removes an account: its sessions end and listeners are told.
// See store.DB.DeleteUser for what it refuses.
func (s *Service) DeleteUser(ctx context.Context, username string) error {
	u, err := s.opts.DB.UserByName(ctx, username)
	if err != nil {
		return err
	}
	if err := s.opts.DB.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	s.emit(Event{Username: username, Reason: "deleted"})
	return nil
}

// Sweep forgets old throttle entries and deletes expired sessions. The
// server calls it on a timer.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.opts.Clock()
	s.byUser.sweep(now)
	s.byAddr.sweep(now)
	_, err := s.opts.DB.DeleteExpiredSessions(ctx, now, s.opts.IdleTimeout)
	return err
}
