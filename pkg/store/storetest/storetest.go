// Package storetest gives tests a real PostgreSQL: one private cluster per
// test binary (fsync off), a migrated template database, and a fresh
// database cloned from it for every test. Nothing here is a mock.
package storetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pythonide/pyide/pkg/pgcluster"
	"github.com/pythonide/pyide/pkg/store"
)

var (
	cluster  *pgcluster.Cluster
	setupErr error
	once     sync.Once
	counter  atomic.Int64
	tmpDir   string
)

const template = "pyide_template"

// Main runs the package's tests and then stops the cluster, if one was
// started. Use it from TestMain: `func TestMain(m *testing.M) { storetest.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		_ = cluster.Stop()
	}
	if tmpDir != "" {
		_ = os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

func setup() {
	ctx := context.Background()
	tmpDir, setupErr = os.MkdirTemp("", "pyide-test-pg-")
	if setupErr != nil {
		return
	}
	_ = os.Chmod(tmpDir, 0o755)
	cluster, setupErr = pgcluster.Start(ctx, pgcluster.Options{Dir: tmpDir, Database: template, Fast: true})
	if setupErr != nil {
		return
	}
	db, err := store.Open(ctx, store.Options{URL: cluster.URL(template), MaxConns: 2})
	if err != nil {
		setupErr = err
		return
	}
	defer db.Close()
	setupErr = db.Migrate(ctx, nil)
}

// Cluster returns the shared test cluster, starting it on first use. It
// fails the test when PostgreSQL cannot be started: the server binaries are
// part of this machine's kind, so their absence is an error, not a skip.
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatalf("test PostgreSQL: %v", setupErr)
	}
	return cluster
}

// NewURL creates a fresh migrated database and returns its URL; it is
// dropped when the test ends.
func NewURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, template)
}

// NewEmptyURL creates a database with nothing in it (from template0: not
// even migrated), as a restore target, and returns its URL; it is dropped
// when the test ends.
func NewEmptyURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "template0")
}

func newDatabase(t testing.TB, from string) string {
	t.Helper()
	c := Cluster(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), counter.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatalf("test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, from)); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return c.URL(name)
}

// New returns a store on a fresh migrated database, closed when the test
// ends.
func New(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{URL: NewURL(t), MaxConns: 10})
	if err != nil {
		t.Fatalf("opening test database: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}
