package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/moby/moby/client"
)

// Clock is injected so idle reaping and timeouts can be tested without waiting.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Options configure a Manager. Zero values take the defaults documented per field.
type Options struct {
	// Client is used when set; otherwise one is built from Host (or DOCKER_HOST).
	Client *client.Client
	Host   string

	Image   string // default pyide-sandbox:latest
	Runtime string // optional OCI runtime, e.g. runsc

	MemoryMB  int64 // memory and memory+swap, default 128
	NanoCPUs  int64 // default 1e9 (one CPU)
	PidsLimit int64 // default 64
	TmpfsMB   int64 // size of /tmp, default 64
	ShmMB     int64 // size of /dev/shm, default 16

	CPUSeconds int           // CPU budget per command (script or one REPL input), default 30
	CPUMargin  time.Duration // server backstop fires at CPUSeconds+CPUMargin, default 2s
	// SessionCPU is the CPU time a whole session may use, every process of
	// it together, however many commands it runs (default 600): typing a
	// line cannot keep a spinning thread alive past it. It is also each
	// process's RLIMIT_CPU.
	SessionCPU     int
	WallTimeout    time.Duration // script phase with no output and no input, default 10m
	IdleTimeout    time.Duration // no input for this long ends a REPL (reason idle), default 30m
	MaxConcurrent  int           // running sessions server-wide; 0 = unlimited
	ReplAfterError bool

	SandboxUID int // default 1000; never 0, never this server's own uid
	SandboxGID int // default 1000; never 0, never this server's own gid

	// MountRoot is the folder every mount source must lie under (the
	// files tree). Without it no folder may be mounted.
	MountRoot string

	// ServerID is the label pyide.server (default "pyide"): Reconcile
	// removes only this server's leftovers, so two servers (or parallel
	// tests) sharing one engine never remove each other's sandboxes.
	ServerID string

	Logger *slog.Logger
	Clock  Clock

	SpareEnabled bool
	// SpareDelay is how long after a Start the user's next spare is asked
	// for (default 20ms). Short, so that a quick second click finds the
	// spare on its way and claims it rather than start cold; spares wait
	// for a SpareLaunches slot, so a class clicking together does not flood
	// the engine. (At N=60, 200ms gave a cold p50 of 611 ms, 20ms 456 ms.)
	SpareDelay time.Duration
	// SpareLaunches is how many spares the engine may be creating at once
	// (default twice the CPUs). A burst of spares (a class connecting, or clicking
	// Run together) then waits here rather than in the engine, where it
	// would delay the one container a student is actually waiting for.
	SpareLaunches int

	// WatchInterval is how often each session checks its CPU, wall and idle
	// limits (default 500ms); MaintainInterval how often the manager
	// reconciles and drops stale spares (default 30s).
	WatchInterval    time.Duration
	MaintainInterval time.Duration

	// Inspect makes a Manager that only looks: no reconcile at start and
	// no maintenance loop, so a CLI can list a running server's sandboxes
	// without removing them as strangers.
	Inspect bool

	// NoReuse turns container reuse off: each Run then gets a container of
	// its own (a spare or a new one) and the container ends with the REPL.
	// With reuse (the default) the container runs the image's supervisor,
	// and when a REPL ends in an ordinary way (finished, error, stopped,
	// replaced by the next Run) the same container is reset in place and
	// becomes the user's next spare: no engine call on the Run path. A
	// container that hit a limit, or whose reset fails or takes too long,
	// is removed, never reused.
	NoReuse bool

	// OverQuota, when set, is asked while a session runs, soon after its
	// container wrote to a file (every QuotaInterval at most), whether the
	// user's files are over their disk quota; the session then ends
	// (reason quota). It may take a while (it measures); it runs on the
	// session's own goroutine.
	OverQuota func(spec Spec) bool
	// QuotaInterval is how often a session looks for writes (default
	// 100ms): what a program writes in that time is the most a student can
	// go over before it is stopped.
	QuotaInterval time.Duration

	// OnStart, when set, is told about every Start: warm or cold, how long
	// it took once out of the queue, and its error. OnExit is told every
	// session's exit reason. The server turns both into metrics.
	OnStart func(warm bool, took time.Duration, err error)
	OnExit  func(reason string)
}

func (o Options) withDefaults() (Options, error) {
	if o.Image == "" {
		o.Image = "pyide-sandbox:latest"
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 128
	}
	if o.NanoCPUs == 0 {
		o.NanoCPUs = 1_000_000_000
	}
	if o.PidsLimit == 0 {
		o.PidsLimit = 64
	}
	if o.TmpfsMB == 0 {
		o.TmpfsMB = 64
	}
	if o.ShmMB == 0 {
		o.ShmMB = 16
	}
	if o.CPUSeconds == 0 {
		o.CPUSeconds = 30
	}
	if o.CPUMargin == 0 {
		o.CPUMargin = 2 * time.Second
	}
	if o.SessionCPU == 0 {
		o.SessionCPU = 600
	}
	if o.WallTimeout == 0 {
		o.WallTimeout = 10 * time.Minute
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.SandboxUID == 0 {
		o.SandboxUID = 1000
	}
	if o.SandboxGID == 0 {
		o.SandboxGID = 1000
	}
	if o.ServerID == "" {
		o.ServerID = "pyide"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.SpareDelay == 0 {
		o.SpareDelay = 20 * time.Millisecond
	}
	if o.SpareLaunches == 0 {
		o.SpareLaunches = 2 * runtime.NumCPU()
	}
	if o.WatchInterval == 0 {
		o.WatchInterval = 500 * time.Millisecond
	}
	if o.QuotaInterval == 0 {
		o.QuotaInterval = 100 * time.Millisecond
	}
	if o.MaintainInterval == 0 {
		o.MaintainInterval = 30 * time.Second
	}
	root, err := realRoot(o.MountRoot)
	if err != nil {
		return o, err
	}
	o.MountRoot = root
	if err := checkSandboxUser(o.SandboxUID, o.SandboxGID, os.Geteuid(), os.Getegid()); err != nil {
		return o, err
	}
	switch {
	case o.MemoryMB < 16:
		return o, errors.New("sandbox: MemoryMB must be at least 16")
	case o.SpareLaunches < 0:
		return o, errors.New("sandbox: SpareLaunches must not be negative")
	case o.MaxConcurrent < 0:
		return o, errors.New("sandbox: MaxConcurrent must not be negative")
	case o.CPUSeconds < 1:
		return o, errors.New("sandbox: CPUSeconds must be positive")
	}
	return o, nil
}

// checkSandboxUser refuses a sandbox user that is root or shares the
// server's uid or gid: a student's program would then have the server's
// own rights over its private files (database, admin socket) if it ever
// reached them.
func checkSandboxUser(uid, gid, serverUID, serverGID int) error {
	switch {
	case uid <= 0 || gid <= 0:
		return errors.New("sandbox: the sandbox uid and gid must not be root")
	case uid == serverUID || gid == serverGID:
		return fmt.Errorf("sandbox: the sandbox user %d:%d must not be this server's own uid or gid (%d:%d): run the server as a dedicated user (or as root), or set SANDBOX_UID to another uid",
			uid, gid, serverUID, serverGID)
	}
	return nil
}
