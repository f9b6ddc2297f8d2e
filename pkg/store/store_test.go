package store_test

import (
	"context"
	"errors"
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
	if v != store.LatestVersion() || v == 0 {
		t.Fatalf("schema version %d, latest embedded %d", v, store.LatestVersion())
	}
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
