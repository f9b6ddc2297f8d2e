package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func TestMigrateIsIdempotentAndVersioned(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if latest := latestMigration(t); v != latest || v == 0 {
		t.Fatalf("schema version %d, latest embedded %d", v, latest)
	}
}

// latestMigration is the version of the newest migration file, the one the
// binary embeds.
func latestMigration(t *testing.T) int64 {
	t.Helper()
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var v int64
	for _, e := range entries {
		var n int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &n); err == nil && n > v {
			v = n
		}
	}
	return v
}

func TestUsersAndSessions(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	u, err := db.CreateUser(ctx, store.User{Username: "alice", DisplayName: "Alice", Role: "student", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, store.User{Username: "alice", Role: "student", PasswordHash: "y"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate username: got %v, want ErrConflict", err)
	}
	if _, err := db.CreateUser(ctx, store.User{Username: "Bad Name", Role: "student", PasswordHash: "y"}); err == nil {
		t.Fatal("a username with a space and capitals was accepted")
	}
	if _, err := db.CreateUser(ctx, store.User{Username: "bob", Role: "root", PasswordHash: "y"}); err == nil {
		t.Fatal("an unknown role was accepted")
	}
	hash := make([]byte, 32)
	hash[0] = 7
	now := time.Now()
	if err := db.CreateSession(ctx, store.Session{TokenHash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s, got, err := db.SessionUser(ctx, hash)
	if err != nil || got.Username != "alice" || s.UserID != u.ID {
		t.Fatalf("SessionUser = %v %v %v", s, got, err)
	}
	if err := db.SetDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.SessionUser(ctx, hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("disabling a user must end their sessions, got %v", err)
	}
	if err := db.Audit(ctx, "admin", "user.disable", "alice", map[string]any{"why": "test"}); err != nil {
		t.Fatal(err)
	}
	log, err := db.AuditLog(ctx, "user.", 10)
	if err != nil || len(log) != 1 || log[0].Details["why"] != "test" {
		t.Fatalf("audit log = %v, %v", log, err)
	}
}

// WithTx commits what its function did only when it returns nil, and the
// queries on tx see what the transaction wrote before it commits.
func TestWithTx(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		fail    bool
		visible bool
	}{
		{name: "committed", fail: false, visible: true},
		{name: "rolled back", fail: true, visible: false},
	} {
		user := strings.ReplaceAll(tc.name, " ", "")
		err := db.WithTx(ctx, func(tx *store.DB) error {
			if _, err := tx.CreateUser(ctx, store.User{Username: user, Role: "student", PasswordHash: "x"}); err != nil {
				return err
			}
			if _, err := tx.UserByName(ctx, user); err != nil {
				t.Errorf("%s: the transaction does not see its own insert: %v", tc.name, err)
			}
			if tc.fail {
				return boom
			}
			return nil
		})
		if tc.fail != errors.Is(err, boom) {
			t.Fatalf("%s: WithTx = %v", tc.name, err)
		}
		if _, err := db.UserByName(ctx, user); (err == nil) != tc.visible {
			t.Errorf("%s: after WithTx, UserByName = %v", tc.name, err)
		}
	}
}

// The per-student submission lock means nothing outside a transaction, so
// taking it there is an error rather than a lock that silently ends.
func TestLockSubmissionsNeedsATransaction(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := context.Background()
	if err := db.LockSubmissions(ctx, "hw1", "alice"); err == nil {
		t.Fatal("LockSubmissions on the pool was accepted")
	}
	if err := db.WithTx(ctx, func(tx *store.DB) error { return tx.LockSubmissions(ctx, "hw1", "alice") }); err != nil {
		t.Fatal(err)
	}
}
