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
// done so. A student sees a grade of theirs as soon as it is saved.
//
// # API (all JSON under /api/course; errors are {"error": msg})
//
// Every answer about items carries "now" (RFC 3339, the server's time).
// "staff" is a professor or admin; others get 403.
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
//	GET    /items/{slug}/submissions         staff; {now, item, kind, students: [RosterEntry]}
//	GET    /items/{slug}/submissions/{user}  staff, or the student themself: {now, submissions: [Submission]}
//	GET    /items/{slug}/submissions/{user}/{n}/files?path=P   the bytes of one file of a snapshot
//	PUT    /items/{slug}/grades/{user}       staff; {score, max_score, feedback_md} → {now, grade}
//	GET    /grades                           {now, grades: [Grade]}: a student their own, staff everyone's
//	GET    /items/{slug}/grades.csv          staff; username, display_name, submitted_at, late, score, max_score
//
// Submitted files are named relative to the folder that holds all the
// chosen paths: [Local/a/hw1/a.py, Local/a/hw1/lib/b.py] → a.py, lib/b.py;
// [Local/a/hw1] → hw1/… .
package course

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// Options configure a Service. Zero values take the defaults.
type Options struct {
	DB       *store.DB
	DataPath string
	Logger   *slog.Logger
	Clock    func() time.Time
	// Tick is how often Run reloads the course tables and auto-submits
	// tests that ended; default 5 s.
	Tick time.Duration
	// SandboxUID owns what the server writes into the tree when it runs as
	// root (mirrors, starter copies); default workspace.DefaultSandboxUID.
	SandboxUID int
	// OnTestOver, when set, is told once per student whose test time is
	// over, after their folder was auto-submitted: the server ends their
	// sandboxes, which were started with the test's mounts and
	// restrictions (and the test folder writable).
	OnTestOver func(test, user string)
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

// Service is the course: its cached tables, its files and its API.
type Service struct {
	opts  Options
	disk  *disk
	state atomic.Pointer[state]
	// reload serialises loads so an older load never replaces a newer one.
	reload sync.Mutex
	// autoDone remembers, per test, who was auto-submitted, so Run asks the
	// database only about students it has not seen done.
	autoMu   sync.Mutex
	autoDone map[string]map[string]bool
	// mirrors serialises writes to one student's Submissions folder.
	mirrors [32]sync.Mutex
}

var _ workspace.CourseState = (*Service)(nil)

// New opens the data folder and loads the course tables.
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.DB == nil || opts.DataPath == "" {
		return nil, errors.New("course: DB and DataPath are required")
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
	if opts.SandboxUID <= 0 {
		opts.SandboxUID = workspace.DefaultSandboxUID
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
	if err := os.MkdirAll(opts.DataPath, 0o755); err != nil {
		return nil, fmt.Errorf("course: %w", err)
	}
	root, err := os.OpenRoot(opts.DataPath)
	if err != nil {
		return nil, fmt.Errorf("course: %w", err)
	}
	s := &Service{opts: opts, autoDone: map[string]map[string]bool{},
		disk: newDisk(root, opts.SandboxUID)}
	// Only the server reads snapshots; the file API cannot name them and
	// no sandbox mounts them.
	if r, err := s.disk.tree(false).MkdirAll(snapshotsDir, 0o700); err != nil {
		root.Close()
		return nil, fmt.Errorf("course: %w", err)
	} else {
		r.Close()
	}
	if err := s.Reload(ctx); err != nil {
		root.Close()
		return nil, fmt.Errorf("course: loading: %w", err)
	}
	return s, nil
}

// Close releases the data folder.
func (s *Service) Close() error { return s.disk.srv.Root().Close() }

func (s *Service) now() time.Time { return s.opts.Clock() }

// state is an immutable copy of the (small) course tables: the policy asks
// about it on every file request, so those answers never touch the
// database.
type state struct {
	assignments map[string]store.Assignment
	tests       map[string]store.Test
	starts      map[string]map[string]time.Time // test → user → started
}

// Reload reads the course tables into memory. Every write through the
// service calls it; Run calls it on every tick for anything else.
func (s *Service) Reload(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	as, err := s.opts.DB.Assignments(ctx)
	if err != nil {
		return err
	}
	ts, err := s.opts.DB.Tests(ctx)
	if err != nil {
		return err
	}
	starts, err := s.opts.DB.TestStarts(ctx)
	if err != nil {
		return err
	}
	st := &state{assignments: map[string]store.Assignment{}, tests: map[string]store.Test{},
		starts: map[string]map[string]time.Time{}}
	for _, a := range as {
		st.assignments[a.Slug] = a
	}
	for _, t := range ts {
		st.tests[t.Slug] = t
	}
	for _, x := range starts {
		if st.starts[x.Test] == nil {
			st.starts[x.Test] = map[string]time.Time{}
		}
		st.starts[x.Test][x.Username] = x.StartedAt
	}
	s.state.Store(st)
	return nil
}

// reloadAfterWrite refreshes the cache after a write; a failure is logged
// (the write happened) and the next tick retries.
func (s *Service) reloadAfterWrite(ctx context.Context) {
	if err := s.Reload(context.WithoutCancel(ctx)); err != nil {
		s.opts.Logger.Error("course: reloading after a write", "error", err)
	}
}

func published(at *time.Time, now time.Time) bool { return at != nil && !now.Before(*at) }

// assignmentOpen says whether an assignment takes submissions at now, and
// whether they are late.
func assignmentOpen(a store.Assignment, now time.Time) (open, late bool) {
	switch {
	case !published(a.PublishAt, now):
		return false, false
	case now.Before(a.DueAt):
		return true, false
	case a.LatePolicy == "cutoff" && a.LateCutoffAt != nil && now.Before(*a.LateCutoffAt):
		return true, true
	}
	return false, false
}

// closesAt is when an assignment stops taking submissions.
func closesAt(a store.Assignment) time.Time {
	if a.LatePolicy == "cutoff" && a.LateCutoffAt != nil {
		return *a.LateCutoffAt
	}
	return a.DueAt
}

// window is a student's part of a test: [start, end). ok is false when the
// test has a duration and the student has not started it.
func (st *state) window(t store.Test, user string) (start, end time.Time, ok bool) {
	if t.DurationMinutes == nil {
		return t.StartsAt, t.EndsAt, true
	}
	started, ok := st.starts[t.Slug][user]
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	end = started.Add(time.Duration(*t.DurationMinutes) * time.Minute)
	if t.EndsAt.Before(end) {
		end = t.EndsAt
	}
	return started, end, true
}

// testOpen says whether the test is open for user at now.
func (st *state) testOpen(t store.Test, user string, now time.Time) bool {
	if !published(t.PublishAt, now) || now.Before(t.StartsAt) {
		return false
	}
	start, end, ok := st.window(t, user)
	return ok && !now.Before(start) && now.Before(end)
}

// AssignmentPublished implements workspace.CourseState.
func (s *Service) AssignmentPublished(slug string, now time.Time) bool {
	a, ok := s.state.Load().assignments[slug]
	return ok && published(a.PublishAt, now)
}

// TestOpen implements workspace.CourseState.
func (s *Service) TestOpen(slug, username string, now time.Time) bool {
	st := s.state.Load()
	t, ok := st.tests[slug]
	return ok && st.testOpen(t, username, now)
}

// SubmissionOpen implements workspace.CourseState: a student may change
// Submissions/<item>/<self> while the assignment takes submissions or the
// test is open for them. An unknown item is closed.
func (s *Service) SubmissionOpen(item, username string, now time.Time) bool {
	st := s.state.Load()
	if a, ok := st.assignments[item]; ok {
		open, _ := assignmentOpen(a, now)
		return open
	}
	if t, ok := st.tests[item]; ok {
		return st.testOpen(t, username, now)
	}
	return false
}

// ExamRestriction tells whether username is inside a test with
// restrictions right now: the test's slug and which restrictions apply
// (several open tests combine). It is "" when none applies. Callers ask it
// for students only; staff are never restricted.
func (s *Service) ExamRestriction(username string, now time.Time) (testSlug string, restrictWorkspace, restrictREPL bool) {
	st := s.state.Load()
	for _, t := range st.tests {
		if (!t.RestrictWorkspace && !t.RestrictREPL) || !st.testOpen(t, username, now) {
			continue
		}
		if testSlug == "" || t.Slug < testSlug {
			testSlug = t.Slug // the same answer every call, whatever the map order
		}
		restrictWorkspace = restrictWorkspace || t.RestrictWorkspace
		restrictREPL = restrictREPL || t.RestrictREPL
	}
	return testSlug, restrictWorkspace, restrictREPL
}

// Run reloads the tables and auto-submits ended tests every Tick until ctx
// ends. It is idempotent: running it twice, or on two servers, submits
// each student's test once.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Tick)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Error("course: tick", "error", err)
		}
		select {
		case <-ctx.Done():
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
	return s.autoSubmitEnded(ctx)
}
