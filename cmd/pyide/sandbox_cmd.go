package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/admin"
	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/sandbox"
)

// adminSocket is where a running server answers the CLI's admin requests:
// a unix socket in the data folder, mode 0600, so only the account that
// runs the server (or root) can use it.
func adminSocket(cfg config.Config) string { return filepath.Join(cfg.DataPath, "pyide.sock") }

// serveAdminSocket serves h's routes on the socket as an implicit admin
// until ctx ends.
func serveAdminSocket(ctx context.Context, path string, h *admin.Handler, logger *slog.Logger) error {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	e := echo.New()
	e.HTTPErrorHandler = httpapi.ErrorHandler(logger)
	g := e.Group("/api", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			auth.SetUser(c, auth.User{Username: "cli", Role: auth.RoleAdmin})
			return next(c)
		}
	})
	h.Register(g)
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	_ = os.Remove(path)
	return nil
}

// socketClient talks HTTP over the admin socket.
func socketClient(path string) *http.Client {
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

func sandboxCmd(ctx context.Context, args []string, logger *slog.Logger, stdout io.Writer) error {
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
	cfg, err := config.Load(nil, config.Environ)
	if err != nil {
		return err
	}
	// A running server knows idle times and owns its sessions: ask it.
	c := socketClient(adminSocket(cfg))
	if reap {
		body, _ := json.Marshal(map[string]any{"idle_seconds": int(idle.Seconds()), "user": *user, "all": *all})
		resp, err := c.Post("http://pyide/api/admin/sandboxes/reap", "application/json", bytes.NewReader(body))
		if err == nil {
			defer resp.Body.Close()
			var out struct {
				Reaped int    `json:"reaped"`
				Error  string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("server: %s", out.Error)
			}
			fmt.Fprintf(stdout, "reaped %d sandbox(es)\n", out.Reaped)
			return nil
		}
	} else if resp, err := c.Get("http://pyide/api/admin/sandboxes"); err == nil {
		defer resp.Body.Close()
		var out struct {
			Sandboxes []admin.Sandbox `json:"sandboxes"`
			Stats     admin.SandboxStats
			Error     string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("server: %s", out.Error)
		}
		return printSandboxes(stdout, out.Sandboxes)
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
