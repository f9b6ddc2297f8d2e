// Package roster reads a class roster (CSV: username,display_name,role[,email])
// and applies it to the user table in one transaction: every row is checked
// before anything is written, so one bad line changes nothing. It never
// logs a password.
package roster

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/store"
)

// Entry is one roster row.
type Entry struct {
	Line        int
	Username    string
	DisplayName string
	Role        string
	Email       string
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidUsername reports whether name is an acceptable username: lower-case
// letters, digits, dot, dash and underscore, as on most college systems, and
// safe as a folder name.
func ValidUsername(name string) bool { return usernameRE.MatchString(name) }

// Parse reads a roster. A header line (starting with "username") is
// skipped. Errors name the line.
func Parse(r io.Reader) ([]Entry, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	var out []Entry
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("roster: %w", err)
		}
		if len(out) == 0 && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff")), "username") {
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) < 3 || len(rec) > 4 {
			return nil, fmt.Errorf("roster line %d: want username,display_name,role[,email], got %d fields", line, len(rec))
		}
		e := Entry{Line: line, Username: strings.ToLower(strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff"))),
			DisplayName: strings.TrimSpace(rec[1]), Role: strings.ToLower(strings.TrimSpace(rec[2]))}
		if len(rec) == 4 {
			e.Email = strings.TrimSpace(rec[3])
		}
		switch {
		case !ValidUsername(e.Username):
			return nil, fmt.Errorf("roster line %d: %q is not a valid username (lower-case letters, digits, . _ -; at most 63)", line, rec[0])
		case !auth.ValidRole(e.Role):
			return nil, fmt.Errorf("roster line %d: role %q must be student, professor or admin", line, rec[2])
		case len(e.DisplayName) > 200 || len(e.Email) > 200:
			return nil, fmt.Errorf("roster line %d: display name or email longer than 200 characters", line)
		case e.Email != "" && !strings.Contains(e.Email, "@"):
			return nil, fmt.Errorf("roster line %d: %q is not an email address", line, e.Email)
		}
		if prev, dup := seen[e.Username]; dup {
			return nil, fmt.Errorf("roster line %d: %q already appears on line %d", line, e.Username, prev)
		}
		seen[e.Username] = line
		out = append(out, e)
	}
	return out, nil
}

// Result says what Import did. Passwords holds the generated password of
// each created user, to be handed out once.
type Result struct {
	Created   []string
	Updated   []string
	Unchanged []string
	Passwords map[string]string
}

// Import creates missing users with generated passwords and updates the
// display name, email and role of existing ones, all in one transaction.
// Running it twice changes nothing the second time.
func Import(ctx context.Context, db *store.DB, hasher *auth.Hasher, entries []Entry) (Result, error) {
	res := Result{Passwords: map[string]string{}}
	// Hash outside the transaction: bcrypt is slow and holds no lock.
	hashes := map[string]string{}
	for _, e := range entries {
		if _, err := db.UserByName(ctx, e.Username); errors.Is(err, store.ErrNotFound) {
			pw := auth.GeneratePassword()
			h, err := hasher.Hash(ctx, pw)
			if err != nil {
				return Result{}, err
			}
			res.Passwords[e.Username] = pw
			hashes[e.Username] = h
		} else if err != nil {
			return Result{}, err
		}
	}
	err := db.WithTx(ctx, func(tx *store.DB) error {
		for _, e := range entries {
			u, err := tx.UserByName(ctx, e.Username)
			switch {
			case errors.Is(err, store.ErrNotFound):
				h, ok := hashes[e.Username]
				if !ok {
					return fmt.Errorf("roster line %d: %s appeared while importing; run the import again", e.Line, e.Username)
				}
				if _, err := tx.CreateUser(ctx, store.User{Username: e.Username, DisplayName: e.DisplayName, Email: e.Email, Role: e.Role, PasswordHash: h, MustChangePassword: true}); err != nil {
					return fmt.Errorf("roster line %d: %w", e.Line, err)
				}
				res.Created = append(res.Created, e.Username)
			case err != nil:
				return err
			case u.DisplayName == e.DisplayName && u.Role == e.Role && u.Email == e.Email:
				res.Unchanged = append(res.Unchanged, e.Username)
			default:
				if err := tx.UpdateProfile(ctx, u.ID, e.DisplayName, e.Email, e.Role); err != nil {
					return err
				}
				res.Updated = append(res.Updated, e.Username)
			}
		}
		return tx.Audit(ctx, "cli", "user.import", "", map[string]any{"created": len(res.Created), "updated": len(res.Updated)})
	})
	if err != nil {
		return Result{}, err
	}
	for u := range res.Passwords {
		if !slices.Contains(res.Created, u) {
			delete(res.Passwords, u)
		}
	}
	return res, nil
}
