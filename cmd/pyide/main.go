// Command pyide is the whole PythonIDE server: `pyide serve` runs it, and
// the other subcommands manage its database, users, sandboxes and backups.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/pythonide/pyide/pkg/config"
)

const usage = `pyide — a browser-based Python IDE for college courses

Usage:
  pyide serve [flags]                 run the server (flags or environment; see pyide serve -h)
  pyide migrate                       apply database migrations and exit
  pyide user add NAME --role ROLE [--display-name S] [--email S]
                                      add a user; password from stdin, or generated and printed once
  pyide user import ROSTER.csv [--passwords FILE]
                                      add or update users from username,display_name,role[,email];
                                      new users' generated passwords are printed, or written to
                                      FILE (new, 0600, outside the data folder)
  pyide user passwd NAME              set a one-time password (from stdin, or generated and printed)
  pyide user disable NAME | enable NAME
                                      a running server ends a disabled user's sessions and sandboxes
  pyide user ls
  pyide sandbox ls                    list live sandboxes
  pyide sandbox reap [--idle DURATION | --user NAME | --all]
  pyide backup [--out DIR]            write one archive: database dump, data folder, manifest
  pyide restore ARCHIVE [--force]     restore into an empty data folder and database

Every command reads the same settings as serve (DATABASE_URL, IDE_DATA_PATH, …).
While a server runs, user passwd/disable/enable and sandbox ls/reap go through
it (its admin socket answers root and the server's own user only).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "pyide: %v\n\n%s", err, usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "pyide: %v\n", err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case "user":
		return userCmd(ctx, args[1:], stdin, stdout, stderr)
	case "sandbox":
		return sandboxCmd(ctx, args[1:], stdout, stderr)
	case "backup":
		return backupCmd(ctx, args[1:], stdout, stderr)
	case "restore":
		return restoreCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// loadConfig reads a command's settings (args are serve's flags) and makes
// the logger they ask for, so LOG_LEVEL is read where every setting is.
func loadConfig(args []string, stderr io.Writer) (config.Config, *slog.Logger, error) {
	cfg, err := config.Load(args, config.Environ)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, newLogger(stderr, cfg.LogLevel), nil
}

// newLogger logs text to a terminal and JSON otherwise (to a journal or a
// log collector).
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
