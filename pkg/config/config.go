// Package config builds the one validated Config that cmd/pyide wires into
// every part. Each setting is an environment variable (12-factor) and also a
// flag of `pyide serve`; a flag wins over the environment. Config never opens
// files, databases or sockets: it only parses and validates.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pythonide/pyide/pkg/datadir"
)

// Config is every setting of the server. Zero values are never used: Load
// fills defaults and Validate rejects what cannot work.
type Config struct {
	DatabaseURL  string // empty: the embedded default cluster in the data folder's private folder
	DataPath     string
	Addr         string // listen address, from PORT
	PublicURL    string // optional: the origin browsers use, when behind a proxy
	CookieSecure bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; empty: the connecting address is the client.
	TrustedProxies []netip.Prefix

	DBMinConns int32
	DBMaxConns int32

	BcryptCost       int
	SessionIdle      time.Duration
	SessionAbsolute  time.Duration
	LoginMaxFailures int
	LoginWindow      time.Duration
	MaxBodyBytes     int64

	MaxConcurrentExecutions int
	ExecutionTimeout        time.Duration // CPU time per command
	SessionCPUTimeout       time.Duration // CPU time per session, all its processes together
	MaxSandboxesPerStudent  int
	WallTimeout             time.Duration // wall-clock backstop for the script phase
	MemoryLimitMB           int
	SandboxImage            string
	SandboxRuntime          string
	SandboxUID              int
	IdleTimeout             time.Duration
	ReplAfterError          bool
	SandboxReuse            bool
	StudentREPL             bool // students may open an empty REPL
	DisconnectGrace         time.Duration
	OutputCapBytes          int64
	// TranscriptRetention: a run's console transcript is kept this long; 0
	// keeps them all.
	TranscriptRetention time.Duration

	MaxFileBytes   int64
	QuotaBytes     int64
	RevisionsKept  int
	TrashRetention time.Duration

	BackupDir      string
	BackupSchedule time.Duration
	BackupKeep     int
	MetricsToken   string

	RunsPerMinute   int
	WritesPerMinute int

	GradingConcurrency int    // grading containers at once in the background; 0: one per CPU
	DolosImage         string // the similarity report's image

	LogLevel slog.Level
}

// setting describes one variable: its environment name, flag name, help and
// how to store it.
type setting struct {
	env, flag, help string
	set             func(string) error
	def             string
}

func (c *Config) settings() []setting {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	dur := func(p *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				// A bare number is seconds: EXECUTION_TIMEOUT=30 reads naturally.
				n, nerr := strconv.Atoi(v)
				if nerr != nil {
					return fmt.Errorf("not a duration (like 30s, 5m): %q", v)
				}
				d = time.Duration(n) * time.Second
			}
			*p = d
			return nil
		}
	}
	num := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("not a whole number: %q", v)
			}
			*p = n
			return nil
		}
	}
	num32 := func(p *int32) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return fmt.Errorf("not a whole number: %q", v)
			}
			*p = int32(n)
			return nil
		}
	}
	mb := func(p *int64) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("not a whole number of megabytes: %q", v)
			}
			*p = n << 20
			return nil
		}
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("not true or false: %q", v)
			}
			*p = b
			return nil
		}
	}
	// A list of CIDRs or bare addresses (one address each), comma-separated.
	prefixes := func(p *[]netip.Prefix) func(string) error {
		return func(v string) error {
			var out []netip.Prefix
			for f := range strings.SplitSeq(v, ",") {
				f = strings.TrimSpace(f)
				if f == "" {
					continue
				}
				pfx, err := netip.ParsePrefix(f)
				if err != nil {
					a, aerr := netip.ParseAddr(f)
					if aerr != nil {
						return fmt.Errorf("%q is neither an address nor a CIDR like 10.0.0.0/8", f)
					}
					pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
				}
				out = append(out, pfx.Masked())
			}
			*p = out
			return nil
		}
	}
	logLevel := func(v string) error {
		switch strings.ToLower(v) {
		case "debug":
			c.LogLevel = slog.LevelDebug
		case "info":
			c.LogLevel = slog.LevelInfo
		case "warn":
			c.LogLevel = slog.LevelWarn
		case "error":
			c.LogLevel = slog.LevelError
		default:
			return fmt.Errorf("not debug, info, warn or error: %q", v)
		}
		return nil
	}
	port := func(v string) error {
		if strings.Contains(v, ":") {
			c.Addr = v
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("not a port number: %q", v)
		}
		c.Addr = ":" + v
		return nil
	}
	return []setting{
		{"DATABASE_URL", "database-url", "PostgreSQL URL; unset: a private cluster in the data folder", str(&c.DatabaseURL), ""},
		{"IDE_DATA_PATH", "data", "folder holding workspaces, course files and (in its private folder .server) the embedded database", str(&c.DataPath), "./data"},
		{"PORT", "port", "listen port (or host:port)", port, "8080"},
		{"PUBLIC_URL", "public-url", "the URL students open, when behind a reverse proxy (used for Origin checks)", str(&c.PublicURL), ""},
		{"TRUSTED_PROXIES", "trusted-proxies", "your reverse proxies, comma-separated addresses or CIDRs: only from them is X-Forwarded-For believed (login throttling keys on the client's address); empty: the connecting address is the client", prefixes(&c.TrustedProxies), ""},
		{"COOKIE_SECURE", "cookie-secure", "mark the session cookie Secure even without TLS here (TLS ends at a proxy)", boolean(&c.CookieSecure), "false"},
		{"DB_MIN_CONNS", "db-min-conns", "smallest database pool", num32(&c.DBMinConns), "5"},
		{"DB_MAX_CONNS", "db-max-conns", "largest database pool", num32(&c.DBMaxConns), "20"},
		{"BCRYPT_COST", "bcrypt-cost", "bcrypt cost for passwords", num(&c.BcryptCost), "11"},
		{"SESSION_IDLE_TIMEOUT", "session-idle", "a login expires after this long unused", dur(&c.SessionIdle), "12h"},
		{"SESSION_MAX_AGE", "session-max-age", "a login expires after this long regardless", dur(&c.SessionAbsolute), "168h"},
		{"LOGIN_MAX_FAILURES", "login-max-failures", "failed logins per user or address before throttling", num(&c.LoginMaxFailures), "5"},
		{"LOGIN_WINDOW", "login-window", "window over which failed logins are counted", dur(&c.LoginWindow), "15m"},
		{"MAX_BODY_MB", "max-body-mb", "largest request body, in MB", mb(&c.MaxBodyBytes), "32"},
		{"MAX_CONCURRENT_EXECUTIONS", "max-concurrent-executions", "running sandboxes server-wide; more wait in a queue", num(&c.MaxConcurrentExecutions), "150"},
		{"EXECUTION_TIMEOUT", "execution-timeout", "CPU time per command (the script, or one REPL input)", dur(&c.ExecutionTimeout), "30s"},
		{"SESSION_CPU_TIMEOUT", "session-cpu-timeout", "CPU time one REPL session may use in all, every process and command together", dur(&c.SessionCPUTimeout), "10m"},
		{"MAX_SANDBOXES_PER_STUDENT", "max-sandboxes-per-student", "programs one student may run at once (tabs, windows)", num(&c.MaxSandboxesPerStudent), "3"},
		{"WALL_TIMEOUT", "wall-timeout", "wall-clock backstop for a script that never finishes", dur(&c.WallTimeout), "10m"},
		{"MEMORY_LIMIT_MB", "memory-limit-mb", "memory per sandbox, in MB (swap is the same)", num(&c.MemoryLimitMB), "128"},
		{"SANDBOX_IMAGE", "sandbox-image", "the student container image", str(&c.SandboxImage), "pyide-sandbox:latest"},
		{"SANDBOX_RUNTIME", "sandbox-runtime", "container runtime, e.g. runsc for gVisor; empty: the engine's default", str(&c.SandboxRuntime), ""},
		{"SANDBOX_REUSE", "sandbox-reuse", "a REPL that ends in an ordinary way leaves its container, reset in place (every process ended, /tmp and /dev/shm emptied, a fresh interpreter), to the same student's next Run with the same folders; false: every Run gets a new container", boolean(&c.SandboxReuse), "true"},
		{"SANDBOX_UID", "sandbox-uid", "uid of the student user inside sandboxes", num(&c.SandboxUID), "1000"},
		{"IDLE_TIMEOUT", "idle-timeout", "an untouched REPL is reaped after this long", dur(&c.IdleTimeout), "30m"},
		{"REPL_AFTER_ERROR", "repl-after-error", "keep the REPL after an uncaught exception (post-mortem, like IDLE)", boolean(&c.ReplAfterError), "false"},
		{"STUDENT_REPL", "student-repl", "students may open an empty REPL", boolean(&c.StudentREPL), "true"},
		{"DISCONNECT_GRACE", "disconnect-grace", "a dropped connection keeps its REPL this long", dur(&c.DisconnectGrace), "60s"},
		{"OUTPUT_CAP_MB", "output-cap-mb", "output per command before the rest is dropped, in MB", mb(&c.OutputCapBytes), "4"},
		{"TRANSCRIPT_RETENTION", "transcript-retention", "each run's console transcript is kept this long; 0 keeps them", dur(&c.TranscriptRetention), "4320h"},
		{"MAX_FILE_MB", "max-file-mb", "largest file, in MB", mb(&c.MaxFileBytes), "10"},
		{"QUOTA_MB", "quota-mb", "disk quota per student workspace, in MB", mb(&c.QuotaBytes), "100"},
		{"REVISIONS_KEPT", "revisions-kept", "revisions kept per text file", num(&c.RevisionsKept), "50"},
		{"TRASH_RETENTION", "trash-retention", "deleted files can be restored for this long", dur(&c.TrashRetention), "720h"},
		{"BACKUP_DIR", "backup-dir", "where scheduled backups go; empty: DATA/.server/backups", str(&c.BackupDir), ""},
		{"BACKUP_SCHEDULE", "backup-schedule", "interval between scheduled backups; 0 turns them off", dur(&c.BackupSchedule), "24h"},
		{"BACKUP_KEEP", "backup-keep", "scheduled backups kept", num(&c.BackupKeep), "7"},
		{"METRICS_TOKEN", "metrics-token", "bearer token for /metrics; empty: /metrics only from loopback", str(&c.MetricsToken), ""},
		{"RUNS_PER_MINUTE", "runs-per-minute", "Run clicks per user per minute", num(&c.RunsPerMinute), "60"},
		{"WRITES_PER_MINUTE", "writes-per-minute", "file writes per user per minute", num(&c.WritesPerMinute), "300"},
		{"GRADING_CONCURRENCY", "grading-concurrency", "grading containers at once for submissions and regrades (they wait while students' runs wait); 0: one per CPU", num(&c.GradingConcurrency), "0"},
		{"DOLOS_IMAGE", "dolos-image", "the image of the similarity report (dolos-image/build.sh)", str(&c.DolosImage), "pyide-dolos:latest"},
		{"LOG_LEVEL", "log-level", "least severe log messages written: debug (also every HTTP health check), info, warn or error", logLevel, "info"},
	}
}

// Load reads defaults, then the environment, then flags from args. It returns
// a Config that passed Validate.
func Load(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("pyide serve", flag.ContinueOnError)
	var errs []error
	for _, s := range c.settings() {
		if err := s.set(s.def); err != nil {
			panic("config: bad default for " + s.env + ": " + err.Error())
		}
		if v := getenv(s.env); v != "" {
			if err := s.set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
			}
		}
		fs.Func(s.flag, s.help+" ($"+s.env+")", s.set)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if abs, err := filepath.Abs(c.DataPath); err == nil {
		c.DataPath = abs
	}
	if c.BackupDir == "" {
		c.BackupDir = datadir.Layout{Root: c.DataPath}.Backups()
	}
	return c, c.Validate()
}

// retired are variables pyide once read and no longer does.
var retired = []string{
	"IDE_SECRET_KEY", // nothing ever used the key
}

// Retired lists the retired variables the environment still sets, so the
// server can say they are ignored.
func Retired(getenv func(string) string) []string {
	var set []string
	for _, name := range retired {
		if getenv(name) != "" {
			set = append(set, name)
		}
	}
	return set
}

// Validate rejects settings that cannot work, naming each one.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(c.DataPath != "", "IDE_DATA_PATH must be set")
	check(c.DBMinConns >= 0 && c.DBMaxConns >= 1 && c.DBMinConns <= c.DBMaxConns, "DB_MIN_CONNS must be between 0 and DB_MAX_CONNS (>= 1)")
	check(c.BcryptCost >= 10 && c.BcryptCost <= 16, "BCRYPT_COST must be between 10 and 16")
	check(c.SessionIdle >= time.Minute, "SESSION_IDLE_TIMEOUT must be at least 1m")
	check(c.SessionAbsolute >= c.SessionIdle, "SESSION_MAX_AGE must be at least SESSION_IDLE_TIMEOUT")
	check(c.LoginMaxFailures >= 1, "LOGIN_MAX_FAILURES must be at least 1")
	check(c.LoginWindow >= time.Second, "LOGIN_WINDOW must be at least 1s")
	check(c.MaxBodyBytes >= 1<<20, "MAX_BODY_MB must be at least 1")
	check(c.MaxConcurrentExecutions >= 1, "MAX_CONCURRENT_EXECUTIONS must be at least 1")
	check(c.ExecutionTimeout >= time.Second, "EXECUTION_TIMEOUT must be at least 1s")
	check(c.WallTimeout >= c.ExecutionTimeout, "WALL_TIMEOUT must be at least EXECUTION_TIMEOUT")
	check(c.SessionCPUTimeout >= c.ExecutionTimeout, "SESSION_CPU_TIMEOUT must be at least EXECUTION_TIMEOUT")
	check(c.MaxSandboxesPerStudent >= 1, "MAX_SANDBOXES_PER_STUDENT must be at least 1")
	check(c.MemoryLimitMB >= 32, "MEMORY_LIMIT_MB must be at least 32")
	check(c.SandboxImage != "", "SANDBOX_IMAGE must be set")
	check(c.SandboxUID > 0, "SANDBOX_UID must not be 0: sandboxes never run as root")
	check(c.IdleTimeout >= time.Minute, "IDLE_TIMEOUT must be at least 1m")
	check(c.DisconnectGrace >= time.Second, "DISCONNECT_GRACE must be at least 1s")
	check(c.OutputCapBytes >= 1<<20, "OUTPUT_CAP_MB must be at least 1")
	check(c.TranscriptRetention == 0 || c.TranscriptRetention >= time.Hour, "TRANSCRIPT_RETENTION must be 0 (keep) or at least 1h")
	check(c.MaxFileBytes >= 1<<20, "MAX_FILE_MB must be at least 1")
	check(c.QuotaBytes >= c.MaxFileBytes, "QUOTA_MB must be at least MAX_FILE_MB")
	check(c.RevisionsKept >= 1, "REVISIONS_KEPT must be at least 1")
	check(c.BackupSchedule == 0 || c.BackupSchedule >= time.Minute, "BACKUP_SCHEDULE must be 0 (off) or at least 1m")
	check(c.BackupKeep >= 1, "BACKUP_KEEP must be at least 1")
	check(c.RunsPerMinute >= 1 && c.WritesPerMinute >= 1, "RUNS_PER_MINUTE and WRITES_PER_MINUTE must be at least 1")
	check(c.GradingConcurrency >= 0, "GRADING_CONCURRENCY must not be negative")
	return errors.Join(errs...)
}

// Usage lists every variable with its default, for `pyide serve -h` and docs.
func Usage() string {
	var b strings.Builder
	var c Config
	for _, s := range c.settings() {
		fmt.Fprintf(&b, "  %-27s --%-26s %s (default %q)\n", s.env, s.flag, s.help, s.def)
	}
	return b.String()
}

// Environ is os.Getenv, named for call sites that pass it to Load.
func Environ(key string) string { return os.Getenv(key) }
