package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/pythonide/pyide/pkg/backup"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/pgcluster"
)

// backupCmd is `pyide backup [--out DIR]`: one archive of the database and
// the data folder, safe to run while the server serves.
func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pyide backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "", "folder for the archive; default BACKUP_DIR")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("backup: unexpected argument %q", fs.Arg(0))}
	}
	cfg, logger, err := loadConfig(nil, stderr)
	if err != nil {
		return err
	}
	// openApp adopts the embedded cluster when a server is running it.
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.close()
	opts := backupOptions(a.cfg, a.cluster, logger)
	if *out != "" {
		opts.Dir = *out
	}
	m, err := backup.Create(ctx, opts)
	if err != nil {
		return err
	}
	files, bytes := m.Files()
	fmt.Fprintf(stdout, "%s\n  %d bytes; database schema version %d; %d files (%d bytes)\n", m.Path, m.Size, m.SchemaVersion, files, bytes)
	return nil
}

// backupOptions are the options of scheduled and manual backups.
func backupOptions(cfg config.Config, cluster *pgcluster.Cluster, logger *slog.Logger) backup.Options {
	opts := backup.Options{DataPath: cfg.DataPath, DatabaseURL: cfg.DatabaseURL, Dir: cfg.BackupDir, Logger: logger}
	if cluster != nil {
		opts.DatabaseURL = cluster.URL("")
		opts.BinDir = cluster.BinDir()
	}
	return opts
}

// restoreCmd is `pyide restore ARCHIVE [--force]`: into an empty data
// folder and an empty database (DATABASE_URL, or the embedded cluster it
// starts in the new data folder). The server must not be running.
func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pyide restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	force := fs.Bool("force", false, "restore over existing files and database objects")
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	if len(pos) != 1 {
		return usageError{"restore takes one archive"}
	}
	archive, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	cfg, logger, err := loadConfig(nil, stderr)
	if err != nil {
		return err
	}
	opts := backup.Options{DataPath: cfg.DataPath, DatabaseURL: cfg.DatabaseURL, Dir: cfg.BackupDir, Force: *force, Logger: logger}
	// Checked before the embedded cluster is created, so a wrong
	// IDE_DATA_PATH is reported without side effects.
	if !*force {
		if err := backup.CheckDataFolder(opts); err != nil {
			return err
		}
	}
	lay, err := prepareDataFolder(ctx, cfg, logger)
	if err != nil {
		return err
	}
	if opts.DatabaseURL == "" {
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: lay.Cluster(), Logger: logger})
		if err != nil {
			return fmt.Errorf("embedded database: %w", err)
		}
		defer func() {
			if err := c.Stop(); err != nil {
				logger.Warn("stopping the embedded database", "error", err)
			}
		}()
		opts.DatabaseURL, opts.BinDir = c.URL(""), c.BinDir()
	}
	m, err := backup.Restore(ctx, archive, opts)
	if err != nil {
		return err
	}
	files, bytes := m.Files()
	fmt.Fprintf(stdout, "restored %s (taken %s by pyide %s, schema version %d): %d files (%d bytes) into %s\nstart the server with `pyide serve`; it applies newer migrations itself\n",
		archive, m.Created.Format("2006-01-02 15:04:05Z"), m.PyideVersion, m.SchemaVersion, files, bytes, cfg.DataPath)
	return nil
}
