package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/labstack/echo/v5"
	"golang.org/x/sys/unix"

	"github.com/pythonide/pyide/pkg/admin"
	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/datadir"
	"github.com/pythonide/pyide/pkg/httpapi"
)

// adminSocket is where a running server answers the CLI's admin requests:
// a unix socket in the server's private folder. Every request on it acts as
// an admin, so it answers only root and the server's own uid (peer
// credentials), whatever the folder's and the socket's modes.
func adminSocket(cfg config.Config) string { return datadir.Layout{Root: cfg.DataPath}.AdminSocket() }

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
	if err := srv.Serve(ownersOnly(ln, logger)); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	_ = os.Remove(path)
	return nil
}

// peerListener hands on only connections from root or the process's own
// uid, as the kernel reports the peer (SO_PEERCRED); others are closed at
// once, before a byte is read.
type peerListener struct {
	net.Listener
	logger *slog.Logger
}

func ownersOnly(ln net.Listener, logger *slog.Logger) net.Listener {
	return peerListener{Listener: ln, logger: logger}
}

func (l peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cred, err := peerCred(c)
		if err == nil && (cred.Uid == 0 || int(cred.Uid) == os.Geteuid()) {
			return c, nil
		}
		c.Close()
		if err != nil {
			l.logger.Warn("admin socket: refused a connection whose peer is unknown", "error", err)
		} else {
			l.logger.Warn("admin socket: refused a connection from another user; only root and the server's own user may use it",
				"uid", cred.Uid, "pid", cred.Pid, "server_uid", os.Geteuid())
		}
	}
}

func peerCred(c net.Conn) (*unix.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("not a unix socket connection: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, credErr
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

// errNoServer says that no server answers on the admin socket, so the CLI
// does the work itself.
var errNoServer = errors.New("no server is running")

// serverError is the running server's answer to a request it refused.
type serverError struct {
	status int
	msg    string
}

func (e *serverError) Error() string { return "the running server: " + e.msg }

// askServer sends one request to the running server and decodes its JSON
// answer into out (when not nil). It returns errNoServer only when no
// server runs (no socket, or nobody listening on it); a server that is
// there but refuses is an error, never a reason to go around it.
func askServer(ctx context.Context, cfg config.Config, method, path string, body, out any) error {
	sock := adminSocket(cfg)
	probe, err := net.DialTimeout("unix", sock, 5*time.Second)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return errNoServer
	}
	if err != nil {
		return fmt.Errorf("cannot reach the server's admin socket %s (%w); run this as root or as the user the server runs as", sock, err)
	}
	probe.Close()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://pyide"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := socketClient(sock).Do(req)
	if err != nil {
		return fmt.Errorf("the running server did not answer on %s (%w); it answers only root and the user it runs as (the socket belongs to uid %d)", sock, err, ownerOf(sock))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return &serverError{status: resp.StatusCode, msg: e.Error}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// ownerOf is the uid owning path, for a message; -1 when unknown.
func ownerOf(path string) int {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}
