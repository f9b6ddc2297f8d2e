// Package pgcluster runs a private PostgreSQL cluster from the machine's own
// server binaries: the embedded default of `pyide serve` when DATABASE_URL is
// unset, and the throw-away clusters of tests. The cluster listens only on a
// unix socket inside its own folder, never on TCP. When the caller is root,
// the cluster runs as an unprivileged system user, because initdb and
// postgres refuse to run as root.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries are found.
var ErrNoBinaries = errors.New(`no PostgreSQL server binaries found (looked for initdb and pg_ctl on PATH, in /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin and Homebrew's folders). Either install the PostgreSQL server — on Debian or Ubuntu "apt-get install postgresql", on Fedora "dnf install postgresql-server", on macOS "brew install postgresql@16" — and pyide will run a private database in its data folder; or set DATABASE_URL to an existing PostgreSQL 13+ database, for example DATABASE_URL=postgres://pyide@dbhost/pyide`)

// Options configure a cluster.
type Options struct {
	Dir      string // the cluster's folder; created when missing
	Database string // created on first start; default "pyide"
	// Fast turns off fsync and full-page writes: for tests only.
	Fast bool
	// RunAs names the system user that owns the cluster when the caller is
	// root. Default: "postgres" when it exists, else "nobody".
	RunAs string
}

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	opts    Options
	bin     string
	sockDir string
	cred    *syscall.Credential
	uid     int
	started bool // started by us, so Stop stops it
}

const superuser = "pyide"

// FindBinaries returns the folder holding initdb and pg_ctl, newest major
// version first.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		// Distributions link pg_ctl onto PATH; its siblings (postgres,
		// pg_dump of the same version) live where the link points.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	var candidates []string
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin",
		"/usr/pgsql-*/bin",
		"/usr/local/pgsql/bin",
		"/opt/homebrew/opt/postgresql*/bin",
		"/usr/local/opt/postgresql*/bin",
	} {
		m, _ := filepath.Glob(pattern)
		candidates = append(candidates, m...)
	}
	sort.Slice(candidates, func(i, j int) bool { return versionOf(candidates[i]) > versionOf(candidates[j]) })
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
				return dir, nil
			}
		}
	}
	return "", ErrNoBinaries
}

func versionOf(dir string) int {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, dir)
	n, _ := strconv.Atoi(digits)
	return n
}

// BinDir is the folder of the server binaries this cluster uses; pg_dump
// and pg_restore of the same version live there too.
func (c *Cluster) BinDir() string { return c.bin }

// Start initialises the cluster when its folder is empty and starts it. A
// cluster left running by a killed server is adopted.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if runtime.GOOS == "windows" {
		return nil, errors.New("the embedded database needs a unix system; set DATABASE_URL")
	}
	if opts.Database == "" {
		opts.Database = "pyide"
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	c := &Cluster{opts: opts, bin: bin, uid: os.Getuid()}
	if os.Geteuid() == 0 {
		if err := c.dropRoot(); err != nil {
			return nil, err
		}
	}
	if err := c.prepareDirs(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.dataDir(), "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	if err := c.createDatabase(ctx, opts.Database); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) dropRoot() error {
	name := c.opts.RunAs
	if name == "" {
		name = "postgres"
		if _, err := user.Lookup(name); err != nil {
			name = "nobody"
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("running as root, the embedded database needs an unprivileged system user to own it: %w (create one, e.g. `useradd --system postgres`)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	c.uid = uid
	return nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.opts.Dir, "data") }

// prepareDirs makes the cluster's folders, owned by the cluster's user, and
// picks a socket folder short enough for a unix socket path (108 bytes).
func (c *Cluster) prepareDirs() error {
	c.sockDir = filepath.Join(c.opts.Dir, "run")
	if len(c.sockDir) > 90 {
		d, err := os.MkdirTemp("", "pyide-pg-")
		if err != nil {
			return err
		}
		c.sockDir = d
	}
	for _, d := range []string{c.opts.Dir, c.dataDir(), c.sockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("embedded database folder: %w", err)
		}
		if c.cred != nil {
			if err := os.Chown(d, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return err
			}
		}
	}
	if c.cred != nil {
		// The cluster's user must be able to reach its folder.
		if err := checkTraversable(c.opts.Dir, c.cred); err != nil {
			return err
		}
	}
	return nil
}

// checkTraversable reports a parent folder the cluster's user cannot enter,
// which would otherwise surface as a confusing "permission denied" from
// postgres.
func checkTraversable(dir string, cred *syscall.Credential) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		mode := st.Mode().Perm()
		ok := mode&0o001 != 0 || (sys.Uid == cred.Uid && mode&0o100 != 0) || (sys.Gid == cred.Gid && mode&0o010 != 0)
		if !ok {
			return fmt.Errorf("the embedded database runs as uid %d, which cannot enter %s (mode %v); put IDE_DATA_PATH somewhere it can reach, or set DATABASE_URL", cred.Uid, p, mode)
		}
		if p == "/" {
			return nil
		}
	}
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.opts.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := c.command(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	args := []string{"-D", c.dataDir(), "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if c.opts.Fast {
		args = append(args, "--no-sync")
	}
	if err := c.run(ctx, "initdb", args...); err != nil {
		return err
	}
	conf := []string{
		"listen_addresses = ''",
		"unix_socket_permissions = 0700",
		"max_connections = 200",
		"shared_buffers = 128MB",
		"log_min_messages = warning",
	}
	if c.opts.Fast {
		conf = append(conf, "fsync = off", "full_page_writes = off", "synchronous_commit = off")
	}
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(strings.Join(conf, "\n") + "\n")
	return err
}

func (c *Cluster) running(ctx context.Context) bool {
	return c.command(ctx, "pg_ctl", "status", "-D", c.dataDir()).Run() == nil
}

func (c *Cluster) start(ctx context.Context) error {
	if c.running(ctx) {
		// Left running by a server that was killed: adopt it, but make
		// sure its socket is where we look.
		if _, err := os.Stat(filepath.Join(c.sockDir, ".s.PGSQL.5432")); err == nil {
			return nil
		}
		_ = c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir(), "-m", "fast", "-w")
	}
	err := c.run(ctx, "pg_ctl", "start", "-D", c.dataDir(), "-w", "-t", "60",
		"-l", filepath.Join(c.opts.Dir, "postgres.log"),
		"-o", "-k "+c.sockDir+" -p 5432")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.opts.Dir, "postgres.log"))
		return fmt.Errorf("%w\n%s", err, tail(string(log), 20))
	}
	c.started = true
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) createDatabase(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("embedded database: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// URL is the connection string for database name ("" = the default one).
func (c *Cluster) URL(name string) string {
	if name == "" {
		name = c.opts.Database
	}
	return fmt.Sprintf("host=%s port=5432 user=%s dbname=%s sslmode=disable", c.sockDir, superuser, name)
}

// Stop shuts the cluster down if this process started it.
func (c *Cluster) Stop() error {
	if !c.started {
		return nil
	}
	c.started = false
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir(), "-m", "fast", "-w")
	if strings.HasPrefix(c.sockDir, os.TempDir()) {
		_ = os.RemoveAll(c.sockDir)
	}
	return err
}

// Kill stops the cluster immediately, as a crash would: for tests of
// recovery.
func (c *Cluster) Kill() error {
	return c.run(context.Background(), "pg_ctl", "stop", "-D", c.dataDir(), "-m", "immediate", "-w")
}

// Restart starts a stopped or killed cluster again.
func (c *Cluster) Restart(ctx context.Context) error {
	return c.start(ctx)
}
