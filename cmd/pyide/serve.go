package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/labstack/echo/v5"
	"golang.org/x/sync/errgroup"

	"github.com/pythonide/pyide/frontend"
	"github.com/pythonide/pyide/pkg/admin"
	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/backup"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/course"
	"github.com/pythonide/pyide/pkg/grading"
	"github.com/pythonide/pyide/pkg/metrics"
	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/terminal"
	"github.com/pythonide/pyide/pkg/workspace"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, logger, err := loadConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, "pyide serve: every setting is an environment variable and a flag:\n\n"+config.Usage())
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range config.Retired(config.Environ) {
		logger.Warn(name + " is set but no longer used; remove it from the environment")
	}
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.close()
	if err := firstAdmin(ctx, a, stdout); err != nil {
		return err
	}
	p, err := wire(ctx, a)
	if err != nil {
		return err
	}
	defer p.close()
	return p.run(ctx)
}

// parts are the pieces of a running server, wired to one another.
type parts struct {
	a    *app
	mx   *metrics.Metrics
	auth *auth.Service
	sb   *sandboxes
	ws   *workspace.Workspace
	crs  *course.Service
	grd  *grading.Service
	// runners of checks, of background grading and of the similarity
	// report
	runners []*batchRunner
	hub     *terminal.Hub
	adm     *admin.Handler
	srv     *server.Server
}

// wire builds every part on the open database, in the order they need one
// another; close releases what it built.
func wire(ctx context.Context, a *app) (_ *parts, err error) {
	cfg, logger := a.cfg, a.logger
	p := &parts{a: a, mx: metrics.New()}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	p.auth = auth.New(auth.Options{
		DB: a.db, Hasher: a.hasher(), IdleTimeout: cfg.SessionIdle, AbsoluteTimeout: cfg.SessionAbsolute,
		MaxFailures: cfg.LoginMaxFailures, Window: cfg.LoginWindow, CookieSecure: cfg.CookieSecure,
		PublicURL: cfg.PublicURL, Logger: logger,
	})
	p.mx.DBPool(a.db.Stat)
	p.sb = &sandboxes{cfg: cfg, logger: logger, mx: p.mx}
	// The course tables first: the workspace's policy reads them, and the
	// course service writes the tree through the workspace.
	state, err := course.NewState(ctx, a.db)
	if err != nil {
		return nil, err
	}
	if p.ws, err = a.workspace(state); err != nil {
		return nil, err
	}
	p.crs, err = course.New(ctx, course.Options{
		DB: a.db, State: state, Files: p.ws, DataPath: cfg.DataPath, Logger: logger, MaxFileBytes: cfg.MaxFileBytes,
		OnTestOver: p.sb.endTest,
		// A rule that begins (a test, a deadline) reaches running sandboxes.
		OnChange: func(user string) { p.hub.Recheck(user) },
		OnSubmit: func(sub store.Submission) { p.grd.Submitted(sub) },
	})
	if err != nil {
		return nil, err
	}
	check, grade, sim := newGradingRunners(p.sb, cfg.GradingConcurrency)
	p.runners = []*batchRunner{check, grade, sim}
	p.grd, err = grading.New(grading.Options{
		DB: a.db, Course: p.crs, Policy: state, Files: p.ws, Check: check, Grade: grade, Similarity: sim,
		Busy: p.sb.busy, Concurrency: cfg.GradingConcurrency, ChecksPerMinute: cfg.RunsPerMinute,
		MaxFileBytes: cfg.MaxFileBytes, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	p.sb.overQuota = func(user, role string) bool {
		return p.ws.OverQuota(context.Background(), auth.User{Username: user, Role: role})
	}
	p.sb.connect(ctx)
	p.hub = terminal.New(terminal.Options{
		Auth: p.auth, Sandboxes: p.sb, Files: terminal.WorkspaceFiles{W: p.ws},
		Live: a.db, Course: state, Shared: terminal.WorkspaceFiles{W: p.ws}, TranscriptRetention: cfg.TranscriptRetention,
		PublicURL: cfg.PublicURL, StudentREPL: cfg.StudentREPL, Grace: cfg.DisconnectGrace,
		Limits: terminal.Limits{MemoryMB: cfg.MemoryLimitMB, CPUSeconds: int(cfg.ExecutionTimeout / time.Second),
			SessionCPUSeconds: int(cfg.SessionCPUTimeout / time.Second), IdleSeconds: int(cfg.IdleTimeout / time.Second),
			ReplAfterError: cfg.ReplAfterError},
		MaxSandboxesPerStudent: cfg.MaxSandboxesPerStudent,
		OutputCapBytes:         cfg.OutputCapBytes, RunsPerMinute: cfg.RunsPerMinute, Logger: logger,
		OnOutput: func(n int) { p.mx.OutputBytes.Add(float64(n)) },
		OnEcho:   func(d time.Duration) { p.mx.EchoSeconds.Observe(d.Seconds()) },
	})
	p.sb.notice = p.hub.Notice
	p.adm = admin.New(admin.Options{
		DB: a.db, Auth: p.auth, Sandboxes: adminView{p.sb}.available, EnsureUserDirs: a.ensureUserDirs,
		DataPath: cfg.DataPath, Logger: logger,
	})
	registerGauges(p.mx, p.sb, p.hub, cfg.DataPath)
	if !frontend.Built() {
		logger.Warn("the front end is not built; the IDE page says how to build it (make run does)")
	}
	p.srv = p.httpServer()
	return p, nil
}

// httpServer serves every area's routes, the terminal's WebSocket, the
// checks and the metrics.
func (p *parts) httpServer() *server.Server {
	cfg, logger := p.a.cfg, p.a.logger
	return server.New(server.Options{
		Addr: cfg.Addr, Auth: p.auth, Logger: logger, MaxBodyBytes: cfg.MaxBodyBytes, TrustedProxies: cfg.TrustedProxies,
		Web: frontend.Dist, Checks: p.checks(), Routes: []server.Routes{p.ws, p.crs, p.grd, p.adm, p.hub},
		Raw:     map[string]echo.HandlerFunc{"/ws": p.hub.Handler(), "/ws/watch": p.hub.WatchHandler()},
		Metrics: p.mx, MetricsToken: cfg.MetricsToken, WritesPerMinute: cfg.WritesPerMinute,
		// The WebSockets are closed first, so that Shutdown does not wait
		// on them.
		BeforeShutdown: func(ctx context.Context) {
			if err := p.hub.Close(ctx); err != nil {
				logger.Warn("closing terminals", "error", err)
			}
		},
	})
}

// close releases what wire built, the newest first.
func (p *parts) close() {
	if p.grd != nil {
		p.grd.Close()
	}
	for _, r := range p.runners {
		r.close()
	}
	if p.crs != nil {
		p.crs.Close()
	}
	if p.ws != nil {
		p.ws.Close()
	}
}

// checks are what /readyz reports on: the database must answer; Docker
// may be away, and then files still work.
func (p *parts) checks() []server.Check {
	return []server.Check{{Name: "database", Required: true, Probe: func(ctx context.Context) (string, error) {
		if err := p.a.db.Ping(ctx); err != nil {
			return "", err
		}
		v, err := p.a.db.SchemaVersion(ctx)
		return "schema version " + strconv.FormatInt(v, 10), err
	}}, {Name: "docker", Probe: func(ctx context.Context) (string, error) {
		if err := p.sb.Ping(ctx); err != nil {
			return "runs are unavailable; files still work", err
		}
		st := adminView{p.sb}.Stats()
		return fmt.Sprintf("%d running, %d queued, %d spare, cap %d", st.Running, st.Queued, st.Spares, st.Cap), nil
	}}}
}

// run serves until ctx ends or a part fails, with the background work
// beside it, then removes every sandbox this server ran.
func (p *parts) run(ctx context.Context) error {
	cfg, logger := p.a.cfg, p.a.logger
	addr, err := p.srv.Listen()
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	logger.Info("pyide is serving", "url", displayURL(addr.String()), "data", cfg.DataPath)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.srv.Serve(gctx) })
	g.Go(func() error { return serveAdminSocket(gctx, adminSocket(cfg), p.adm, logger) })
	// Auto-submits tests that ended and keeps the course state fresh.
	g.Go(func() error { return p.crs.Run(gctx) })
	if cfg.BackupSchedule > 0 {
		bs := p.backupSchedule()
		g.Go(func() error { return bs.Run(gctx) })
	}
	g.Go(func() error {
		p.sb.keepConnected(gctx, 10*time.Second)
		return nil
	})
	g.Go(func() error {
		// Warm grading containers wait from the start, and again after the
		// engine comes back.
		for _, r := range p.runners[:2] {
			r.prime()
		}
		every(gctx, 10*time.Second, func() {
			for _, r := range p.runners[:2] {
				r.prime()
			}
		})
		return nil
	})
	g.Go(func() error {
		every(gctx, 10*time.Minute, func() {
			if err := p.auth.Sweep(gctx); err != nil {
				logger.Warn("sweeping sessions", "error", err)
			}
		})
		return nil
	})
	g.Go(func() error {
		// Sandboxes change files behind the API's back; keep the metadata
		// (and quotas) in step.
		every(gctx, 5*time.Minute, func() {
			if err := p.ws.Reconcile(gctx); err != nil && gctx.Err() == nil {
				logger.Warn("reconciling files", "error", err)
			}
		})
		return nil
	})
	err = g.Wait()
	p.grd.Close() // no grading is under way when the sandboxes go
	// The terminals are closed; remove every sandbox this server ran.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if cerr := p.sb.close(cctx); cerr != nil {
		logger.Warn("removing sandboxes", "error", cerr)
	}
	logger.Info("pyide stopped")
	return err
}

// backupSchedule is the scheduled backup, with its metric.
func (p *parts) backupSchedule() *backup.Schedule {
	cfg := p.a.cfg
	bs := &backup.Schedule{Options: backupOptions(cfg, p.a.cluster, p.a.logger), Every: cfg.BackupSchedule, Keep: cfg.BackupKeep}
	p.mx.Gauge("pyide_backup_last_success_timestamp_seconds", "Unix time of the last successful backup (0: none yet).", func() float64 {
		if t := bs.LastSuccess(); !t.IsZero() {
			return float64(t.Unix())
		}
		return 0
	})
	return bs
}

// registerGauges exposes load read at scrape time.
func registerGauges(mx *metrics.Metrics, sb *sandboxes, hub *terminal.Hub, dataPath string) {
	view := adminView{sb}
	mx.Gauge("pyide_docker_up", "1 when the Docker engine answers and the sandbox image exists.", func() float64 {
		if !sb.engineUp() { // as last seen: a scrape never waits for the engine
			return 0
		}
		return 1
	})
	mx.Gauge("pyide_sandboxes_running", "Sandbox sessions running.", func() float64 { return float64(view.Stats().Running) })
	mx.Gauge("pyide_sandbox_queue_length", "Runs waiting for a free sandbox slot.", func() float64 { return float64(view.Stats().Queued) })
	mx.Gauge("pyide_sandbox_spares", "Warm spare containers.", func() float64 { return float64(view.Stats().Spares) })
	mx.Gauge("pyide_websocket_connections", "Open terminal WebSocket connections.", func() float64 { return float64(hub.Stats().Sockets) })
	mx.Gauge("pyide_data_disk_free_ratio", "Free fraction of the data folder's file system.", func() float64 {
		var st syscall.Statfs_t
		if syscall.Statfs(dataPath, &st) != nil || st.Blocks == 0 {
			return 0
		}
		return float64(st.Bavail) / float64(st.Blocks)
	})
}

// every runs fn each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// displayURL is the address to open in a browser for a bound listener.
func displayURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// firstAdmin creates "admin" with a random password, printed once, when no
// admin exists: the only way into a fresh installation.
func firstAdmin(ctx context.Context, a *app, stdout io.Writer) error {
	n, err := a.db.CountAdmins(ctx)
	if err != nil || n > 0 {
		return err
	}
	pw := auth.GeneratePassword()
	hash, err := a.hasher().Hash(ctx, pw)
	if err != nil {
		return err
	}
	_, err = a.db.CreateUser(ctx, store.User{Username: "admin", DisplayName: "Administrator", Role: auth.RoleAdmin, PasswordHash: hash})
	if errors.Is(err, store.ErrConflict) {
		// "admin" exists but is disabled or not an admin: say so rather
		// than touch it.
		return errors.New("no enabled admin exists and the username \"admin\" is taken; use `pyide user add NAME --role admin`")
	}
	if err != nil {
		return err
	}
	if err := a.ensureUserDirs("admin"); err != nil {
		return err
	}
	_ = a.db.Audit(ctx, "server", "user.add", "admin", map[string]any{"role": "admin", "first_start": true})
	fmt.Fprintf(stdout, "\n  First start: created user \"admin\" with password %s\n  (shown once; change it after logging in)\n\n", pw)
	return nil
}
