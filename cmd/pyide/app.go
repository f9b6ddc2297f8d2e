package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/datadir"
	"github.com/pythonide/pyide/pkg/pgcluster"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// app is what every subcommand shares: the validated config and a migrated
// database (embedded or external).
type app struct {
	cfg     config.Config
	layout  datadir.Layout
	db      *store.DB
	cluster *pgcluster.Cluster // nil with DATABASE_URL
	logger  *slog.Logger
}

func openApp(ctx context.Context, cfg config.Config, logger *slog.Logger) (*app, error) {
	lay, err := prepareDataFolder(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, layout: lay, logger: logger}
	url := cfg.DatabaseURL
	if url == "" {
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: lay.Cluster(), Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("embedded database: %w", err)
		}
		a.cluster = c
		url = c.URL("")
		logger.Info("embedded database running", "folder", lay.Cluster(), "binaries", c.BinDir())
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

// prepareDataFolder makes the data folder and the server's private folder
// in it, and moves an old layout's files there (stopping a cluster a killed
// server left running at the old place first).
func prepareDataFolder(ctx context.Context, cfg config.Config, logger *slog.Logger) (datadir.Layout, error) {
	opts := datadir.Options{
		SandboxUID: cfg.SandboxUID, BackupDir: cfg.BackupDir, Logger: logger,
		StopCluster: func(dir string) error { return pgcluster.StopLeftover(ctx, dir, "") },
	}
	if cfg.DatabaseURL == "" && os.Geteuid() == 0 {
		// The cluster runs as its own system user, which must pass
		// through the private folder to reach its folder.
		u, err := pgcluster.SystemUser("")
		if err != nil {
			return datadir.Layout{}, err
		}
		opts.ClusterUser = u
	}
	return datadir.Prepare(cfg.DataPath, opts)
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

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, logger, err := loadConfig(args, stderr)
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
