// Package store owns every SQL statement of pyide: the pgx pool, the embedded
// migrations and typed query functions. No other package writes SQL, and
// store never imports the HTTP layer or knows about sandboxes.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a row asked for by key does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique key is already taken.
var ErrConflict = errors.New("already exists")

// dbtx is what a query runs on: the pool, or one transaction taken from it.
// Both can begin a transaction (inside one, pgx makes it a savepoint), so a
// method that needs several statements to stand or fall together works on
// either.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// DB runs pyide's queries: on the pool, or, for the tx that WithTx hands
// its function, all inside one transaction. Every query exists once, as a
// method of DB; the pool itself stays here.
type DB struct {
	pool *pgxpool.Pool
	q    dbtx // pool, or the transaction of WithTx
}

// Options configure Open.
type Options struct {
	URL      string
	MinConns int32
	MaxConns int32
}

// Open connects and checks the connection. It does not migrate.
func Open(ctx context.Context, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	cfg.HealthCheckPeriod = 15 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach the database: %w", err)
	}
	return &DB{pool: pool, q: pool}, nil
}

// WithTx runs fn in one transaction, committed when fn returns nil and
// rolled back otherwise. Every query fn makes on tx runs inside it; queries
// on db itself do not.
func (db *DB) WithTx(ctx context.Context, fn func(tx *DB) error) error {
	return pgx.BeginFunc(ctx, db.q, func(t pgx.Tx) error {
		return fn(&DB{pool: db.pool, q: t})
	})
}

// Close closes the pool. It belongs to whoever opened db, never to a tx.
func (db *DB) Close() { db.pool.Close() }

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.pool.Ping(ctx)
}

// PoolStat is how busy the pool is, for the metrics.
type PoolStat struct {
	Total, Idle, Acquired, Max int32
	// AcquireWait is the time spent, in all, waiting for a free connection.
	AcquireWait time.Duration
}

// Stat reports on the pool.
func (db *DB) Stat() PoolStat {
	s := db.pool.Stat()
	return PoolStat{Total: s.TotalConns(), Idle: s.IdleConns(), Acquired: s.AcquiredConns(), Max: s.MaxConns(),
		AcquireWait: s.AcquireDuration()}
}

func (db *DB) provider(logger *slog.Logger) (*goose.Provider, func() error, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, nil, err
	}
	sqldb := stdlib.OpenDBFromPool(db.pool)
	opts := []goose.ProviderOption{goose.WithSessionLocker(locker)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqldb, mustSub(migrations, "migrations"), opts...)
	if err != nil {
		sqldb.Close()
		return nil, nil, err
	}
	return p, sqldb.Close, nil
}

// Migrate applies every pending migration under an advisory lock, so two
// servers starting at once do not race. It is not cancelled halfway: a
// migration runs to its end even when ctx is cancelled.
func (db *DB) Migrate(ctx context.Context, logger *slog.Logger) error {
	p, closeDB, err := db.provider(logger)
	if err != nil {
		return err
	}
	defer func() { _ = closeDB() }()
	_, err = p.Up(context.WithoutCancel(ctx))
	return err
}

// SchemaVersion is the version of the newest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.q.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v)
	return v, err
}

// ServerVersion is the PostgreSQL server's version as it reported it when
// the connection started (e.g. "15.8 (Debian 15.8-0+deb12u1)"): no query.
func (db *DB) ServerVersion(ctx context.Context) (string, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	return conn.Conn().PgConn().ParameterStatus("server_version"), nil
}

// UserRelations counts the tables, views and sequences outside the system
// schemas: zero means the database is empty, so a restore may go into it.
// It asks the catalog, not pyide's schema, so it works on any database.
func (db *DB) UserRelations(ctx context.Context) (int, error) {
	var n int
	err := db.q.QueryRow(ctx, `
		SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'`).Scan(&n)
	return n, err
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
