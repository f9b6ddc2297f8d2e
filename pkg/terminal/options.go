package terminal

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/store"
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

// LiveStore is what the live classroom keeps in the database
// (*store.DB is one).
type LiveStore interface {
	Audit(ctx context.Context, actor, action, target string, details map[string]any) error
	OpenHelpRequest(ctx context.Context, h store.HelpRequest) (store.HelpRequest, error)
	OpenHelpRequests(ctx context.Context) ([]store.HelpRequest, error)
	HelpRequestByID(ctx context.Context, id int64) (store.HelpRequest, error)
	TakeHelpRequest(ctx context.Context, id int64, helper string, at time.Time) (store.HelpRequest, error)
	CloseHelpRequest(ctx context.Context, id int64, by string, at time.Time) (store.HelpRequest, error)
	CloseHelpRequestsOf(ctx context.Context, username, by string, at time.Time) ([]store.HelpRequest, error)
	AddTranscript(ctx context.Context, t store.Transcript) (int64, error)
	Transcripts(ctx context.Context, username, item string, limit int) ([]store.Transcript, error)
	TranscriptByID(ctx context.Context, id int64) (store.Transcript, error)
	DeleteTranscriptsBefore(ctx context.Context, cutoff time.Time) (int64, error)
}

// LiveCourse is what the live classroom asks the course (*course.State is
// one).
type LiveCourse interface {
	// LiveRestriction names the open test that keeps username out of the
	// live classroom now, or "".
	LiveRestriction(username string, now time.Time) string
}

// SharedFiles is what a broadcast needs of the workspace (WorkspaceFiles
// is one).
type SharedFiles interface {
	// ReadFile reads the file at treePath as u may.
	ReadFile(ctx context.Context, u auth.User, treePath string) (content []byte, version string, err error)
	// CopyToLocal copies content into to's Local folder under name (or a
	// free name like it) and returns its tree path.
	CopyToLocal(ctx context.Context, to auth.User, name string, content []byte) (string, error)
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
	Files     Files // required
	// Live keeps the help queue, transcripts and the audit log of the live
	// classroom; nil switches the help queue and transcripts off.
	Live LiveStore
	// Course says who may not take part in the live classroom now (inside
	// a restricted test); nil restricts nobody.
	Course LiveCourse
	// Shared reads a broadcast's file and copies it for a follower; nil
	// leaves followers with the console only.
	Shared    SharedFiles
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
	TranscriptBytes int           // the end of each run's console kept as its transcript; default 256 KB
	// TranscriptRetention: transcripts of runs that ended longer ago are
	// deleted; 0 keeps them.
	TranscriptRetention time.Duration
	OutputCapBytes      int64 // output per command (since the last run or input); default 4 MB
	RunsPerMinute       int   // run and repl messages per user; default 30
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
	DefaultTranscriptBytes = 256 << 10
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
	if o.TranscriptBytes <= 0 {
		o.TranscriptBytes = DefaultTranscriptBytes
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
