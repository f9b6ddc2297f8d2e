package course

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pythonide/pyide/pkg/store"
)

// State is the course tables in memory. The workspace's policy asks it on
// every file request (it implements workspace.CourseState), so those
// answers never touch the database. The server loads it first, hands it to
// the workspace and to the Service, which reloads it after every write
// and on every tick.
type State struct {
	db    *store.DB
	state atomic.Pointer[state]
	// reload serialises loads so an older load never replaces a newer one.
	reload sync.Mutex
}

// NewState loads the course tables.
func NewState(ctx context.Context, db *store.DB) (*State, error) {
	s := &State{db: db}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

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
func (s *State) Reload(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	as, err := s.db.Assignments(ctx)
	if err != nil {
		return err
	}
	ts, err := s.db.Tests(ctx)
	if err != nil {
		return err
	}
	starts, err := s.db.TestStarts(ctx)
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

// AssignmentPublished implements workspace.CourseState.
func (s *State) AssignmentPublished(slug string, now time.Time) bool {
	a, ok := s.state.Load().assignments[slug]
	return ok && published(a.PublishAt, now)
}

// TestOpen implements workspace.CourseState.
func (s *State) TestOpen(slug, username string, now time.Time) bool {
	st := s.state.Load()
	t, ok := st.tests[slug]
	return ok && st.testOpen(t, username, now)
}

// SubmissionOpen implements workspace.CourseState: a student may change
// Submissions/<item>/<self> while the assignment takes submissions or the
// test is open for them. An unknown item is closed.
func (s *State) SubmissionOpen(item, username string, now time.Time) bool {
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
func (s *State) ExamRestriction(username string, now time.Time) (testSlug string, restrictWorkspace, restrictREPL bool) {
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

// LiveRestriction names the test that keeps username out of the live
// classroom right now (asking for help, following a broadcast, being
// joined): an open test with a restriction that does not allow it. It is
// "" when none applies. Staff and teaching assistants are never restricted.
func (s *State) LiveRestriction(username string, now time.Time) string {
	st := s.state.Load()
	blocked := ""
	for _, t := range st.tests {
		if (!t.RestrictWorkspace && !t.RestrictREPL) || t.AllowLive || !st.testOpen(t, username, now) {
			continue
		}
		if blocked == "" || t.Slug < blocked {
			blocked = t.Slug
		}
	}
	return blocked
}

// ItemPublished implements workspace.CourseState: students may know of an
// assignment or test from its publish time on; drafts and folders of no
// item look like names that do not exist.
func (s *State) ItemPublished(slug string, now time.Time) bool {
	_, m, ok := s.state.Load().find(slug)
	return ok && published(m.publishAt, now)
}
