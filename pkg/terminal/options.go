package terminal

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
)

// Session is one running program as a tab sees it: the TTY's bytes both
// ways, its size, and how it ended. (*sandbox.Session is one.)
type Session interface {
	ID() string
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Resize(ctx context.Context, cols, rows uint) error
	// Stop ends the program with reason and returns at once: it is called
	// with the tab's lock held. Done is closed once it has ended and its
	// container is gone; Exit then says how.
	Stop(reason string)
	Done() <-chan struct{}
	Exit() sandbox.Exit
}

// Sandboxes runs programs. It alone decides whether execution is
// available: the hub never asks the engine itself.
type Sandboxes interface {
	// Start runs spec, waiting in the server's line (onQueue learns the
	// position) until ctx ends. There is one session per spec.User and
	// spec.Key (a tab): Start first ends the one the key has, even when
	// ctx has ended already. A tab makes its calls one after another.
	// An error wrapping sandbox.ErrUnavailable means the engine is away.
	Start(ctx context.Context, spec sandbox.Spec, onQueue func(pos int)) (Session, error)
	// Prepare warms a spare container for spec.User; Release drops it.
	Prepare(ctx context.Context, spec sandbox.Spec) error
	Release(user string)
	// Available says, without waiting for the engine, why runs cannot
	// start now (wrapping sandbox.ErrUnavailable), or nil.
	Available() error
}

// noEngine is the Sandboxes of a server with no Docker engine configured.
type noEngine struct{}

var errNoEngine = fmt.Errorf("%w: no Docker engine is configured on the server", sandbox.ErrUnavailable)

func (noEngine) Start(context.Context, sandbox.Spec, func(int)) (Session, error) {
	return nil, errNoEngine
}
func (noEngine) Prepare(context.Context, sandbox.Spec) error { return errNoEngine }
func (noEngine) Release(string)                              {}
func (noEngine) Available() error                            { return errNoEngine }

// Options configure a Hub. Zero values take the documented defaults.
type Options struct {
	Auth *auth.Service // required
	// Sandboxes runs the code; nil means no Docker engine is configured:
	// Run answers that execution is unavailable, the rest of the IDE works.
	Sandboxes Sandboxes
	Files     Files  // required
	PublicURL string // the server's own origin, for the Origin check; "" = the request's Host
	// StudentREPL lets students open an empty REPL; staff always may.
	StudentREPL bool
	// Limits are told to the browser (GET /api/console), so that the
	// console can say which limit ended a run.
	Limits Limits
	// MaxSandboxesPerStudent is how many programs one student may run at
	// once, over all their tabs and windows; default 3. Staff have no cap.
	MaxSandboxesPerStudent int
	// OnOutput, when set, is told how many TTY bytes each read brought, for
	// the output metric.
	OnOutput func(n int)
	// OnEcho, when set, is told how long after a student's input reached
	// the server the sandbox's next output was read: the REPL's
	// responsiveness as the server sees it, without the network or the
	// browser.
	OnEcho func(d time.Duration)

	Grace           time.Duration // a dropped tab keeps its sandbox this long; default 60s
	ScrollbackBytes int           // replayed on reattach; default 64 KB
	OutputCapBytes  int64         // output per command (since the last run or input); default 4 MB
	RunsPerMinute   int           // run and repl messages per user; default 30
	// RecheckEvery is how often each socket's login session is checked, so
	// an expired session closes its sockets; default 1 minute.
	RecheckEvery time.Duration
	// PongWait is how long a silent connection lives; pings go out at 9/10
	// of it. Default 60s.
	PongWait time.Duration

	Logger *slog.Logger
	Clock  func() time.Time // for the run rate limit
}

// Defaults and fixed bounds.
const (
	DefaultGrace           = 60 * time.Second
	DefaultScrollbackBytes = 64 << 10
	DefaultOutputCapBytes  = 4 << 20
	DefaultRunsPerMinute   = 30
	// DefaultMaxSandboxesPerStudent: a REPL, a program and a spare tab.
	DefaultMaxSandboxesPerStudent = 3

	// MaxMessageBytes is the read limit per client message: a larger frame
	// closes the connection with 1009 (message too big).
	MaxMessageBytes = 128 << 10
	// MaxStdinBytes is the most one stdin message may carry; more is
	// answered with an error and the connection stays usable.
	MaxStdinBytes = 64 << 10
	// MaxTermSize bounds cols and rows of a resize.
	MaxTermSize = 1000
	// MaxTabIDBytes bounds the ?tab= id.
	MaxTabIDBytes = 64

	readChunk   = 32 << 10 // one read from the TTY
	maxFrame    = 64 << 10 // coalesced binary frame
	outQueue    = 8        // frames queued per connection: at most ~256 KB of output
	stdinQueue  = 16       // stdin messages waiting for a program that reads slowly
	writeWait   = 10 * time.Second
	controlWait = 30 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.ScrollbackBytes <= 0 {
		o.ScrollbackBytes = DefaultScrollbackBytes
	}
	if o.OutputCapBytes <= 0 {
		o.OutputCapBytes = DefaultOutputCapBytes
	}
	if o.MaxSandboxesPerStudent <= 0 {
		o.MaxSandboxesPerStudent = DefaultMaxSandboxesPerStudent
	}
	if o.RunsPerMinute <= 0 {
		o.RunsPerMinute = DefaultRunsPerMinute
	}
	if o.RecheckEvery <= 0 {
		o.RecheckEvery = time.Minute
	}
	if o.PongWait <= 0 {
		o.PongWait = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Sandboxes == nil {
		o.Sandboxes = noEngine{}
	}
	return o
}
