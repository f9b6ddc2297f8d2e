package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/pythonide/pyide/pkg/admin"
	"github.com/pythonide/pyide/pkg/sandbox"
)

func sandboxCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "ls" && args[0] != "reap") {
		return usageError{"sandbox: say ls or reap"}
	}
	fs := flag.NewFlagSet("pyide sandbox "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	idle := fs.Duration("idle", 0, "reap sandboxes idle at least this long")
	user := fs.String("user", "", "reap every sandbox of this user")
	all := fs.Bool("all", false, "reap every sandbox")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("sandbox %s: unexpected argument %q", args[0], fs.Arg(0))}
	}
	reap := args[0] == "reap"
	if reap {
		n := 0
		for _, set := range []bool{*idle > 0, *user != "", *all} {
			if set {
				n++
			}
		}
		if n != 1 {
			return usageError{"sandbox reap: give exactly one of --idle DURATION, --user NAME, --all"}
		}
	}
	cfg, logger, err := loadConfig(nil, stderr)
	if err != nil {
		return err
	}
	// A running server knows idle times and owns its sessions: ask it.
	if reap {
		var out struct {
			Reaped int `json:"reaped"`
		}
		err := askServer(ctx, cfg, http.MethodPost, "/api/admin/sandboxes/reap",
			map[string]any{"idle_seconds": int(idle.Seconds()), "user": *user, "all": *all}, &out)
		if err == nil {
			fmt.Fprintf(stdout, "reaped %d sandbox(es)\n", out.Reaped)
			return nil
		}
		if !errors.Is(err, errNoServer) {
			return err
		}
	} else {
		var out struct {
			Sandboxes []admin.Sandbox `json:"sandboxes"`
		}
		err := askServer(ctx, cfg, http.MethodGet, "/api/admin/sandboxes", nil, &out)
		if err == nil {
			return printSandboxes(stdout, out.Sandboxes)
		}
		if !errors.Is(err, errNoServer) {
			return err
		}
	}
	// No server runs: look at the engine directly.
	opts := (&sandboxes{cfg: cfg, logger: logger}).options()
	opts.Inspect = true
	m, err := sandbox.New(ctx, opts)
	if err != nil {
		return err
	}
	defer m.Close(ctx)
	if !reap {
		infos, err := m.List(ctx)
		if err != nil {
			return err
		}
		list := make([]admin.Sandbox, len(infos))
		for i, in := range infos {
			list[i] = admin.Sandbox{Session: in.Session, User: in.User, File: in.File, Spare: in.Spare, State: in.State,
				Started: in.Started, IdleSeconds: -1, CPUSeconds: in.CPU.Seconds(), MemoryBytes: in.Memory}
		}
		return printSandboxes(stdout, list)
	}
	if *idle > 0 {
		return errors.New("no server is running, so no sandbox is in use; remove leftovers with --all")
	}
	n, err := m.Reap(ctx, sandbox.Filter{User: *user, All: *all})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reaped %d sandbox(es)\n", n)
	return nil
}

func printSandboxes(w io.Writer, list []admin.Sandbox) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tFILE\tSTATE\tSTARTED\tIDLE\tCPU\tMEMORY")
	for _, s := range list {
		state := s.State
		if s.Spare {
			state += " (spare)"
		}
		idle := "-"
		if s.IdleSeconds >= 0 && !s.Spare {
			idle = (time.Duration(s.IdleSeconds) * time.Second).String()
		}
		file := s.File
		if file == "" {
			file = "(REPL)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.1fs\t%.1f MiB\n", s.Session, s.User, file, state,
			s.Started.Local().Format("15:04:05"), idle, s.CPUSeconds, float64(s.MemoryBytes)/(1<<20))
	}
	return tw.Flush()
}
