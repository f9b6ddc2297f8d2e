// Package server is the HTTP layer of `pyide serve`: one Echo instance with
// the middleware every request gets (recovery, request IDs, logging,
// security headers, body limit, same-origin writes, compression), the health endpoints,
// the embedded front end, and a designed shutdown. Each area registers its
// own routes; server holds no business rules and never talks to Docker.
package server

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/metrics"
)

// Routes is an area that registers its endpoints on the /api group, behind
// login.
type Routes interface {
	Register(g *echo.Group)
}

// Check is one part /readyz reports on.
type Check struct {
	Name string
	// Required parts make /readyz fail; optional ones (Docker) are
	// reported but the IDE still serves files without them.
	Required bool
	Probe    func(ctx context.Context) (detail string, err error)
}

// Options configure a Server.
type Options struct {
	Addr         string
	Auth         *auth.Service
	Logger       *slog.Logger
	MaxBodyBytes int64
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed (see ClientAddr).
	TrustedProxies []netip.Prefix
	Web            fs.FS // the front end; index.html at its root
	Checks         []Check
	Routes         []Routes
	// Raw registers handlers that manage their own protocol (WebSocket),
	// mounted at /api with login checked by the handler itself.
	Raw map[string]echo.HandlerFunc
	// Metrics, when set, records every request and serves /metrics.
	Metrics      *metrics.Metrics
	MetricsToken string
	// WritesPerMinute limits each user's state-changing API requests; 0
	// means no limit.
	WritesPerMinute int
	// BeforeShutdown closes long-lived connections (WebSockets) so that
	// http.Server.Shutdown does not wait on them.
	BeforeShutdown func(ctx context.Context)
}

// Server is the HTTP server.
type Server struct {
	opts Options
	e    *echo.Echo
	http *http.Server
	mu   sync.Mutex
	ln   net.Listener
}

// New builds the Echo instance and every route.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := echo.New()
	e.Logger = opts.Logger
	e.IPExtractor = ClientAddr(opts.TrustedProxies)
	e.HTTPErrorHandler = httpapi.ErrorHandler(opts.Logger)
	s := &Server{opts: opts, e: e}

	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true}))
	e.Use(middleware.RequestID())
	e.Use(s.logRequests)
	if opts.Metrics != nil {
		e.Use(opts.Metrics.Middleware)
	}
	e.Use(securityHeaders)
	e.Use(s.limitBody)
	e.Use(compress)

	e.GET("/healthz", func(c *echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", s.readyz)
	if opts.Metrics != nil {
		e.GET("/metrics", opts.Metrics.Handler(opts.MetricsToken))
	}

	public := e.Group("/api", opts.Auth.SameOriginWrites)
	authed := e.Group("/api", opts.Auth.SameOriginWrites, opts.Auth.RequireUser)
	if opts.WritesPerMinute > 0 {
		authed.Use(newWriteLimiter(opts.WritesPerMinute).middleware)
	}
	opts.Auth.Register(public, authed)
	for _, r := range opts.Routes {
		r.Register(authed)
	}
	for p, h := range opts.Raw {
		e.GET("/api"+p, h)
	}
	e.Any("/api/*", func(c *echo.Context) error {
		return echo.NewHTTPError(http.StatusNotFound, "no such endpoint")
	})
	if opts.Web != nil {
		e.GET("/*", s.serveWeb)
	}
	return s
}

// Handler is the root handler, for tests with httptest.
func (s *Server) Handler() http.Handler { return s.e }

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		err := next(c)
		status := httpapi.Status(c, err)
		level := slog.LevelInfo
		if c.Request().URL.Path == "/healthz" || c.Request().URL.Path == "/readyz" || strings.HasPrefix(c.Request().URL.Path, "/assets/") {
			level = slog.LevelDebug
		}
		attrs := []any{"method", c.Request().Method, "path", c.Request().URL.Path, "status", status,
			"ms", time.Since(start).Milliseconds(), "request_id", c.Response().Header().Get(echo.HeaderXRequestID)}
		if u, ok := auth.CurrentUser(c); ok {
			attrs = append(attrs, "user", u.Username)
		}
		s.opts.Logger.Log(c.Request().Context(), level, "http", attrs...)
		return err
	}
}

// contentSecurity allows only our own scripts; styles may be inline because
// the component library and the editor inject them.
const contentSecurity = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-src 'self' blob:; " +
	"object-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if strings.HasPrefix(c.Request().URL.Path, "/api/files/") {
			// Files are students' data: shown by the IDE in a frame of its
			// own (PDF preview), never able to run script in our origin.
			h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'")
			h.Set("X-Frame-Options", "SAMEORIGIN")
		} else {
			h.Set("Content-Security-Policy", contentSecurity)
			h.Set("X-Frame-Options", "DENY")
		}
		if c.Request().TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if r.ContentLength > s.opts.MaxBodyBytes {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, s.opts.MaxBodyBytes)
		return next(c)
	}
}

func (s *Server) readyz(c *echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	type part struct {
		Status string `json:"status"`
		Detail string `json:"detail,omitempty"`
		Error  string `json:"error,omitempty"`
	}
	parts := map[string]part{}
	ready := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ch := range s.opts.Checks {
		wg.Go(func() {
			detail, err := ch.Probe(ctx)
			p := part{Status: "ok", Detail: detail}
			if err != nil {
				p = part{Status: "down", Detail: detail, Error: err.Error()}
			}
			mu.Lock()
			defer mu.Unlock()
			parts[ch.Name] = p
			if err != nil && ch.Required {
				ready = false
			}
		})
	}
	wg.Wait()
	code, status := http.StatusOK, "ready"
	if !ready {
		code, status = http.StatusServiceUnavailable, "not ready"
	}
	return c.JSON(code, map[string]any{"status": status, "parts": parts})
}

// serveWeb serves the front end: hashed assets cached for a year (as the
// build's brotli or gzip twin when the browser takes it), index.html never
// cached, and index.html for app routes (paths without an extension) so that
// reloading /ide works.
func (s *Server) serveWeb(c *echo.Context) error {
	p := strings.TrimPrefix(path.Clean("/"+c.Param("*")), "/")
	if p == "" {
		p = "index.html"
	}
	if _, err := fs.Stat(s.opts.Web, p); err != nil {
		if path.Ext(p) != "" {
			return echo.NewHTTPError(http.StatusNotFound, "not found")
		}
		p = "index.html"
	}
	h := c.Response().Header()
	if !strings.HasPrefix(p, "assets/") {
		h.Set("Cache-Control", "no-cache")
		return c.FileFS(p, s.opts.Web)
	}
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	exists := func(name string) bool { _, err := fs.Stat(s.opts.Web, name); return err == nil }
	if file, coding := precompressed(c.Request(), exists, p); file != "" {
		// The type is the original's; ServeContent keeps a type already set.
		h.Set("Content-Type", mime.TypeByExtension(path.Ext(p)))
		h.Set("Content-Encoding", coding)
		p = file
	}
	return c.FileFS(p, s.opts.Web)
}

// Listen binds the address; Serve then serves on it. Split so that the
// caller can print the URL only once the port is really bound.
func (s *Server) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return ln.Addr(), nil
}

// Serve serves until ctx ends, then shuts down in order: long-lived
// connections first, then in-flight requests with a deadline.
func (s *Server) Serve(ctx context.Context) error {
	s.http = &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if s.opts.BeforeShutdown != nil {
		s.opts.BeforeShutdown(shutdownCtx)
	}
	err := s.http.Shutdown(shutdownCtx)
	if err2 := <-errc; !errors.Is(err2, http.ErrServerClosed) && err == nil {
		err = err2
	}
	return err
}
