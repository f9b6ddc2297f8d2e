// Package course owns assignments, timed tests, submissions and grades: the
// /api/course endpoints, the immutable submission snapshots, the auto-submit
// at the end of a test, and the time rules the workspace policy asks about
// on every file request (it implements workspace.CourseState).
//
// It must never let a student see another student's submission or grade,
// never change or delete a snapshot once written, and never follow a
// symbolic link while reading or writing the data folder. The server's
// clock is the only authority on time: every answer carries "now".
//
// # Files on disk
//
//	Assignments/<slug>/                  material; created with the assignment
//	Tests/<slug>/                        material; students read it only inside their window
//	Submissions/<slug>/<user>/           an assignment: a copy of the latest submission;
//	                                     a test: the folder the student works in
//	.snapshots/<slug>/<user>/<n>-<time>/ every submission, sealed (folders 0555, files 0444),
//	                                     outside the tree the file API and the sandboxes reach
//
// # Rules
//
// An item with publish_at null is a draft; students see an item from
// publish_at on. An assignment takes submissions until due_at, or, with
// late_policy "cutoff", until late_cutoff_at with late=true. A test is open
// for a student in [starts_at, ends_at); with duration_minutes, only once the
// student has started it, until min(start+duration, ends_at). At a
// student's end their test folder is snapshotted (auto=true) by Run, and
// SubmissionOpen answers false from that instant whether or not Run has
// done so. A student sees a grade of theirs once staff release the item's
// results (pkg/grading owns the switch).
//
// Assignments and tests are two kinds of one thing, an item: items.go
// lists, shows, creates, replaces and deletes both, and decides who may
// know of one; assignments.go and tests.go hold only what differs (a
// deadline and a late policy; a window, a duration counted from a
// student's start, and exam restrictions).
//
// # API (all JSON under /api/course; errors are {"error": msg})
//
// Every answer about items carries "now" (RFC 3339, the server's time).
// "staff" is a professor or admin; others get 403. Reading submissions, the
// roster and grading are open to teaching assistants too ("teaching").
//
//	GET    /assignments                      {now, assignments: [Assignment]} (students: published only)
//	POST   /assignments                      staff; AssignmentInput → {now, assignment}; 201
//	GET    /assignments/{slug}               {now, assignment}; students: 404 unless published
//	PUT    /assignments/{slug}               staff; AssignmentInput (slug ignored) → {now, assignment}
//	DELETE /assignments/{slug}[?force=true]  staff; 409 if it has submissions unless force; files stay on disk
//	POST   /assignments/{slug}/starter       staff; {from: tree path} → copied into Assignments/<slug>/ (replacing)
//	POST   /assignments/{slug}/copy-starter  the material into Local/<me>/<slug>/ → {copied: [..], skipped: [..]}
//	POST   /assignments/{slug}/submit        {files: [tree paths under Local/<me>]} → {now, submission}; 201
//	GET    /tests, POST /tests, GET|PUT|DELETE /tests/{slug}   as for assignments, with TestInput
//	POST   /tests/{slug}/start               starts the student's clock → {now, test} (with my_start, my_end)
//	POST   /tests/{slug}/submit              snapshots Submissions/<slug>/<me>/ → {now, submission}; 201
//	GET    /items/{slug}/submissions         teaching; {now, item, kind, students: [RosterEntry]} (a test's
//	                                         rows say when each student started and when their time ends)
//	GET    /items/{slug}/submissions/{user}  staff, or the student themself: {now, submissions: [Submission]}
//	GET    /items/{slug}/submissions/{user}/{n}/files?path=P   the bytes of one file of a snapshot
//	PUT    /items/{slug}/grades/{user}       teaching; {score, max_score, feedback_md} → {now, grade}; a field
//	                                         left out keeps its saved value (score null clears it)
//	GET    /grades                           {now, grades: [Grade]}: a student their own, staff everyone's (a student sees a grade once released)
//	GET    /items/{slug}/grades.csv          teaching; username, display_name, submitted_at, late, score, max_score
//
// Submitted files are named relative to the folder that holds all the
// chosen paths: [Local/a/hw1/a.py, Local/a/hw1/lib/b.py] → a.py, lib/b.py;
// [Local/a/hw1] → hw1/… .
package course

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// Tree is what the course needs of the files tree; *workspace.Workspace
// provides it. Every file the course reads or writes in the tree goes
// through it; the course writes only its own sealed snapshots itself.
type Tree interface {
	EnsureItemFolders(root, slug string) error
	EnsureSubmissionFolder(item, user string) error
	FilesUnder(rel string) ([]workspace.FileEntry, error)
	OpenRegular(rel string) (*os.File, fs.FileInfo, error)
	Lstat(rel string) (fs.FileInfo, error)
	Folders(rel string) []string
	CopyInto(ctx context.Context, u auth.User, from, to string, overwrite bool, limit int64) (workspace.CopyResult, error)
	ReplaceSubmission(ctx context.Context, item, user string, files []workspace.SourceFile) error
}

// Options configure a Service. Zero values take the defaults.
type Options struct {
	DB *store.DB
	// State is the course tables the workspace's policy also reads
	// (NewState); nil: New loads its own.
	State *State
	// Files is the files tree (required).
	Files    Tree
	DataPath string
	Logger   *slog.Logger
	Clock    func() time.Time
	// Tick is how often Run reloads the course tables and auto-submits
	// tests that ended; default 5 s.
	Tick time.Duration
	// OnTestOver, when set, is told once per student whose test time is
	// over, after their folder was auto-submitted: the server ends their
	// sandboxes, which were started with the test's mounts and
	// restrictions (and the test folder writable).
	OnTestOver func(test, user string)
	// OnChange, when set, is told that what the policy grants may have
	// changed for user ("" for everyone): a student started a test, an
	// item was created, changed or deleted, or a time boundary passed (a
	// test window opened, a deadline passed). The server then ends the
	// sandboxes that now hold more than the policy grants: a restriction
	// holds for sandboxes already running, not only for new ones.
	OnChange func(user string)
	// OnSubmit, when set, is told of every submission once it is recorded
	// (a student's, or an automatic one at a test's end): the grader
	// grades its snapshot.
	OnSubmit func(sub store.Submission)
	// Limits of one submission.
	MaxFiles     int   // default 200
	MaxFileBytes int64 // default 10 MB
	MaxBytes     int64 // all files together; default 50 MB
}

// Defaults.
const (
	DefaultTick         = 5 * time.Second
	DefaultMaxFiles     = 200
	DefaultMaxFileBytes = 10 << 20
	DefaultMaxBytes     = 50 << 20
	snapshotsDir        = ".snapshots"
)

// Service is the course: its cached tables, its snapshots and its API.
type Service struct {
	*State
	opts Options
	// snaps is the folder of sealed snapshots, the one place the course
	// writes itself.
	snaps *snapshots
	// autoDone remembers, per test, who was auto-submitted, so Run asks the
	// database only about students it has not seen done.
	autoMu   sync.Mutex
	autoDone map[string]map[string]bool
	// lastTick is when Tick last looked for boundaries that passed.
	lastTick time.Time
}

var _ workspace.CourseState = (*State)(nil)

// New opens the snapshots folder and, without opts.State, loads the
// course tables.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.DB == nil || opts.DataPath == "" || opts.Files == nil {
		return nil, errors.New("course: DB, DataPath and Files are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Tick <= 0 {
		opts.Tick = DefaultTick
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.State == nil {
		st, err := NewState(ctx, opts.DB)
		if err != nil {
			return nil, err
		}
		opts.State = st
	}
	snaps, err := openSnapshots(opts.DataPath)
	if err != nil {
		return nil, fmt.Errorf("course: %w", err)
	}
	return &Service{State: opts.State, opts: opts, snaps: snaps, autoDone: map[string]map[string]bool{}}, nil
}

// Close releases the snapshots folder.
func (s *Service) Close() error { return s.snaps.close() }

func (s *Service) now() time.Time { return s.opts.Clock() }

// reloadAfterWrite refreshes the cache after a write that may change what
// the policy grants user ("" everyone); a failure is logged (the write
// happened) and the next tick retries.
func (s *Service) reloadAfterWrite(ctx context.Context, user string) {
	if err := s.Reload(context.WithoutCancel(ctx)); err != nil {
		s.opts.Logger.Error("course: reloading after a write", "error", err)
	}
	s.changed(user)
}

func published(at *time.Time, now time.Time) bool { return at != nil && !now.Before(*at) }

// Run reloads the tables and auto-submits ended tests every Tick until ctx
// ends. It is idempotent: running it twice, or on two servers, submits
// each student's test once.
func (s *Service) Run(ctx context.Context) error {
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Error("course: tick", "error", err)
		}
		// Wake at the next boundary (a test window opening, a deadline)
		// rather than up to a Tick after it: restrictions start on time.
		wait := s.opts.Tick
		if b, ok := s.nextBoundary(s.now()); ok && b.Sub(s.now()) < wait {
			wait = max(b.Sub(s.now())+time.Millisecond, time.Millisecond)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Tick is one round of Run.
func (s *Service) Tick(ctx context.Context) error {
	if err := s.Reload(ctx); err != nil {
		return err
	}
	now := s.now()
	if !s.lastTick.IsZero() && s.boundaryPassed(s.lastTick, now) {
		s.changed("")
	}
	s.lastTick = now
	return s.autoSubmitEnded(ctx)
}

// changed tells the server that the policy may grant user ("" everyone)
// less than before.
func (s *Service) changed(user string) {
	if s.opts.OnChange != nil {
		s.opts.OnChange(user)
	}
}

// boundaries are the times at which what the policy grants changes by
// itself: publish times, deadlines, test windows and students' ends.
func (st *state) boundaries(yield func(time.Time) bool) {
	for _, a := range st.assignments {
		for _, b := range []*time.Time{a.PublishAt, &a.DueAt, a.LateCutoffAt} {
			if b != nil && !yield(*b) {
				return
			}
		}
	}
	for _, t := range st.tests {
		for _, b := range []*time.Time{t.PublishAt, &t.StartsAt, &t.EndsAt} {
			if b != nil && !yield(*b) {
				return
			}
		}
		for user := range st.starts[t.Slug] {
			if _, end, ok := st.window(t, user); ok && !yield(end) {
				return
			}
		}
	}
}

// boundaryPassed reports whether a boundary lies in (from, to].
func (s *Service) boundaryPassed(from, to time.Time) bool {
	passed := false
	s.state.Load().boundaries(func(b time.Time) bool {
		passed = b.After(from) && !b.After(to)
		return !passed
	})
	return passed
}

// nextBoundary is the first boundary after now.
func (s *Service) nextBoundary(now time.Time) (time.Time, bool) {
	var next time.Time
	s.state.Load().boundaries(func(b time.Time) bool {
		if b.After(now) && (next.IsZero() || b.Before(next)) {
			next = b
		}
		return true
	})
	return next, !next.IsZero()
}
