package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password rules. bcrypt reads only the first 72 bytes of a password; rather
// than truncate silently, a longer password is refused with a clear message.
const (
	MinPasswordLen   = 8
	MaxPasswordBytes = 72
)

// ErrPasswordPolicy is wrapped by CheckPasswordPolicy's errors.
var ErrPasswordPolicy = errors.New("password policy")

// CheckPasswordPolicy says why a new password is not acceptable.
func CheckPasswordPolicy(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: the password is not valid UTF-8 text", ErrPasswordPolicy)
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return fmt.Errorf("%w: the password must be at least %d characters", ErrPasswordPolicy, MinPasswordLen)
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("%w: the password must be at most %d bytes (bcrypt ignores the rest)", ErrPasswordPolicy, MaxPasswordBytes)
	}
	return nil
}

// Hasher bounds how many bcrypt computations run at once, so a login storm
// at the start of a class queues instead of starving every other request.
type Hasher struct {
	cost     int
	slots    chan struct{}
	dummy    []byte
	compares atomic.Int64
}

// NewHasher hashes with cost, at most concurrency at a time.
func NewHasher(cost, concurrency int) *Hasher {
	if concurrency < 1 {
		concurrency = 1
	}
	h := &Hasher{cost: cost, slots: make(chan struct{}, concurrency)}
	// A hash of a random password with the same cost, compared against
	// for unknown users so they take as long as known ones.
	h.dummy, _ = bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	return h
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the bcrypt hash of pw, which must pass CheckPasswordPolicy
// (or be generated).
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if len(pw) > MaxPasswordBytes {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrPasswordPolicy, MaxPasswordBytes)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	b, err := bcrypt.GenerateFromPassword([]byte(pw), h.cost)
	return string(b), err
}

// Compare reports whether pw matches hash. An empty hash (unknown user) is
// compared against a dummy so the answer takes the same time.
func (h *Hasher) Compare(ctx context.Context, hash, pw string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	h.compares.Add(1)
	if hash == "" || len(pw) > MaxPasswordBytes {
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(pw))
		return false, nil
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil, nil
}

// Compares counts the password comparisons run so far (the dummy ones for
// unknown users included): the throttle's tests hold it to its limit, and
// it is the number an operator would want to see during a login storm.
func (h *Hasher) Compares() int64 { return h.compares.Load() }

// GeneratePassword returns a random password that is easy to type from a
// printed sheet: no look-alike characters.
func GeneratePassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
	b := make([]byte, 14)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}
