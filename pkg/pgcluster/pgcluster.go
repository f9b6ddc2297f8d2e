// Package pgcluster runs a private PostgreSQL cluster from the machine's own
// server binaries: the embedded default of `pyide serve` when DATABASE_URL is
// unset, and the throw-away clusters of tests. The cluster listens only on a
// unix socket inside its own folder, never on TCP, and lets no connection in
// without the superuser's password (scram-sha-256), which it keeps in its
// folder readable by the caller alone: a local account that reaches the
// socket still cannot get in. It never uses `trust` authentication, and
// upgrades a cluster made with it. When the caller is root, the cluster runs
// as an unprivileged system user, because initdb and postgres refuse to run
// as root.
package pgcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
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
	// Logger says when an old cluster is upgraded; default: silent.
	Logger *slog.Logger
}

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	opts     Options
	bin      string
	sockDir  string
	cred     *syscall.Credential
	uid      int
	password string
	started  bool // started by us, so Stop stops it
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
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
	_, err = os.Stat(filepath.Join(c.dataDir(), "PG_VERSION"))
	fresh := errors.Is(err, os.ErrNotExist)
	if err := c.loadPassword(fresh); err != nil {
		return nil, err
	}
	if fresh {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	if err := c.requirePassword(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if err := c.createDatabase(ctx, opts.Database); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// SystemUser is the unprivileged account that owns and runs a cluster when
// the caller is root: runAs, or "postgres" when it exists, else "nobody".
func SystemUser(runAs string) (*user.User, error) {
	name := runAs
	if name == "" {
		name = "postgres"
		if _, err := user.Lookup(name); err != nil {
			name = "nobody"
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root, the embedded database needs an unprivileged system user to own it: %w (create one, e.g. `useradd --system postgres`)", err)
	}
	return u, nil
}

func (c *Cluster) dropRoot() error {
	u, err := SystemUser(c.opts.RunAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	c.uid = uid
	return nil
}

// passwordFile keeps the superuser's password. It belongs to the caller
// (the server), not to the cluster's user: postgres keeps only its hash.
func (c *Cluster) passwordFile() string { return filepath.Join(c.opts.Dir, "password") }

// loadPassword reads the superuser's password, or makes one for a new
// cluster or one that still trusts (the upgrade sets it).
func (c *Cluster) loadPassword(fresh bool) error {
	b, err := os.ReadFile(c.passwordFile())
	if err == nil {
		c.password = strings.TrimSpace(string(b))
		if c.password == "" {
			return fmt.Errorf("the embedded database's password file %s is empty; restore it from a backup of the folder, or set the password by hand (ALTER ROLE %s PASSWORD …) and write it there", c.passwordFile(), superuser)
		}
		// Only the server may read it, whatever an editor left behind.
		return os.Chmod(c.passwordFile(), 0o600)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the embedded database's password: %w", err)
	}
	if !fresh && !c.trusts() {
		return fmt.Errorf("the embedded database in %s asks for a password, but its password file %s is missing; restore the file, or set DATABASE_URL", c.opts.Dir, c.passwordFile())
	}
	// Hex: it goes into a key=value connection string unquoted.
	b = make([]byte, 24)
	_, _ = rand.Read(b)
	c.password = hex.EncodeToString(b)
	f, err := os.OpenFile(c.passwordFile(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing the embedded database's password: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(c.password + "\n"); err != nil {
		return err
	}
	return f.Sync()
}

// hbaConf lets in only connections that give the password.
const hbaConf = `# Written by pyide. The cluster listens only on its unix socket, and every
# connection must give the superuser's password (kept in ../password): no
# local account gets in without it, not even the one that runs PostgreSQL.
local all all scram-sha-256
`

// hbaTrusts reports whether a pg_hba.conf lets anyone in without a password.
func hbaTrusts(conf string) bool {
	for _, line := range strings.Split(conf, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if slices.Contains(strings.Fields(line), "trust") {
			return true
		}
	}
	return false
}

func (c *Cluster) trusts() bool {
	b, err := os.ReadFile(filepath.Join(c.dataDir(), "pg_hba.conf"))
	return err == nil && hbaTrusts(string(b))
}

// writeHBA replaces pg_hba.conf with hbaConf, owned by the cluster's user.
func (c *Cluster) writeHBA() error {
	p := filepath.Join(c.dataDir(), "pg_hba.conf")
	tmp := p + ".pyide-new"
	if err := os.WriteFile(tmp, []byte(hbaConf), 0o600); err != nil {
		return err
	}
	if c.cred != nil {
		if err := os.Chown(tmp, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return err
		}
	}
	return os.Rename(tmp, p)
}

// requirePassword upgrades a cluster made with trust authentication (as
// pyide did before): while trust still lets it in, it gives the superuser
// its password, then asks every connection for it from now on. Each step
// may be repeated, so a crash half-way is mended on the next start.
func (c *Cluster) requirePassword(ctx context.Context) error {
	if !c.trusts() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("embedded database: %w", err)
	}
	defer conn.Close(ctx)
	// The password is hex, so it needs no quoting; scram even where an old
	// server's default was md5.
	if _, err := conn.Exec(ctx, "SET password_encryption = 'scram-sha-256'"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE "+superuser+" PASSWORD '"+c.password+"'"); err != nil {
		return fmt.Errorf("embedded database: setting the password: %w", err)
	}
	if err := c.writeHBA(); err != nil {
		return fmt.Errorf("embedded database: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	c.opts.Logger.Info("embedded database: it trusted every local connection; it now asks for the password kept in its folder",
		"folder", c.opts.Dir, "password_file", c.passwordFile())
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
	// initdb reads the password from a file, as the cluster's user: a copy
	// that user may read, gone as soon as initdb is done.
	pwfile := filepath.Join(c.opts.Dir, "initdb-password")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if c.cred != nil {
		if err := os.Chown(pwfile, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return err
		}
	}
	args := []string{"-D", c.dataDir(), "-U", superuser, "--auth=scram-sha-256", "--pwfile=" + pwfile, "--encoding=UTF8", "--locale=C"}
	if c.opts.Fast {
		args = append(args, "--no-sync")
	}
	if err := c.run(ctx, "initdb", args...); err != nil {
		return err
	}
	// One definition of who may connect, for new and upgraded clusters.
	if err := c.writeHBA(); err != nil {
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
	return fmt.Sprintf("host=%s port=5432 user=%s password=%s dbname=%s sslmode=disable", c.sockDir, superuser, c.password, name)
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

// StopLeftover stops a cluster that a killed server left running in dir
// (runAs as in Options), so that its folder can be moved. Where none runs it
// does nothing.
func StopLeftover(ctx context.Context, dir, runAs string) error {
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	bin, err := FindBinaries()
	if err != nil {
		return err
	}
	c := &Cluster{opts: Options{Dir: dir, RunAs: runAs}, bin: bin}
	if os.Geteuid() == 0 {
		if err := c.dropRoot(); err != nil {
			return err
		}
	}
	if !c.running(ctx) {
		return nil
	}
	return c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir(), "-m", "fast", "-w")
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
