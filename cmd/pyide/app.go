package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/pgcluster"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// app is what every subcommand shares: the validated config and a migrated
// database (embedded or external).
type app struct {
	cfg     config.Config
	db      *store.DB
	cluster *pgcluster.Cluster // nil with DATABASE_URL
	logger  *slog.Logger
}

func openApp(ctx context.Context, cfg config.Config, logger *slog.Logger) (*app, error) {
	if err := os.MkdirAll(cfg.DataPath, 0o755); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	a := &app{cfg: cfg, logger: logger}
	url := cfg.DatabaseURL
	if url == "" {
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(cfg.DataPath, "pgdata")})
		if err != nil {
			return nil, fmt.Errorf("embedded database: %w", err)
		}
		a.cluster = c
		url = c.URL("")
		logger.Info("embedded database running", "folder", filepath.Join(cfg.DataPath, "pgdata"), "binaries", c.BinDir())
	}
	db, err := store.Open(ctx, store.Options{URL: url, MinConns: cfg.DBMinConns, MaxConns: cfg.DBMaxConns})
	if err != nil {
		a.close()
		return nil, err
	}
	a.db = db
	if err := db.Migrate(ctx, logger); err != nil {
		a.close()
		return nil, fmt.Errorf("migrating the database: %w", err)
	}
	return a, nil
}

func (a *app) close() {
	if a.db != nil {
		a.db.Close()
	}
	if a.cluster != nil {
		if err := a.cluster.Stop(); err != nil {
			a.logger.Warn("stopping the embedded database", "error", err)
		}
	}
}

// workspace opens the file tree with the configured limits; course answers
// the policy's time-dependent questions.
func (a *app) workspace(course workspace.CourseState) (*workspace.Workspace, error) {
	return workspace.New(workspace.Options{
		DataPath: a.cfg.DataPath, DB: a.db, MaxFileBytes: a.cfg.MaxFileBytes, QuotaBytes: a.cfg.QuotaBytes,
		RevisionsKept: a.cfg.RevisionsKept, TrashRetention: a.cfg.TrashRetention, SandboxUID: a.cfg.SandboxUID,
		Logger: a.logger, Course: course,
	})
}

// ensureUserDirs creates the workspace folders of users.
func (a *app) ensureUserDirs(usernames ...string) error {
	ws, err := a.workspace(nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	for _, u := range usernames {
		if err := ws.EnsureUserDirs(u); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) hasher() *auth.Hasher {
	return auth.NewHasher(a.cfg.BcryptCost, runtime.NumCPU())
}

// loadSecret returns IDE_SECRET_KEY, or the key kept in the data folder,
// generating it (0600) on first start.
func loadSecret(cfg config.Config) (string, error) {
	if cfg.SecretKey != "" {
		return cfg.SecretKey, nil
	}
	p := filepath.Join(cfg.DataPath, "secret.key")
	b, err := os.ReadFile(p)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := hex.EncodeToString(key)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("writing the secret key: %w", err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, s+"\n"); err != nil {
		return "", err
	}
	return s, f.Sync()
}

func migrate(ctx context.Context, args []string, logger *slog.Logger, stdout io.Writer) error {
	cfg, err := config.Load(args, config.Environ)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.close()
	v, err := a.db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database schema at version %d\n", v)
	return nil
}
