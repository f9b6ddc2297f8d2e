package course

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/store"
)

// Concurrent submits of one student are numbered 1..n without gaps or
// duplicates, and each keeps its own snapshot.
func TestConcurrentSubmits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0, t0.Add(time.Hour), nil)
	alice := e.as("alice")
	e.disk("Local/alice/a.py", "a\n")
	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = alice.do("POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/a.py"}}).status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 201 {
			t.Fatalf("submit %d: %d", i, s)
		}
	}
	subs, err := e.db.SubmissionsOf(context.Background(), "hw1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, s := range subs {
		if s.N != i+1 || seen[s.Snapshot] {
			t.Fatalf("submission %d: n=%d snapshot=%s", i, s.N, s.Snapshot)
		}
		seen[s.Snapshot] = true
	}
	if len(subs) != n {
		t.Fatalf("%d submissions, want %d", len(subs), n)
	}
}

// BenchmarkCourseState is what the policy pays on every file request: a
// course of 20 assignments and 10 tests, 200 students who started them.
func BenchmarkCourseState(b *testing.B) {
	st := &state{assignments: map[string]store.Assignment{}, tests: map[string]store.Test{}, starts: map[string]map[string]time.Time{}}
	pub := t0.Add(-time.Hour)
	dur := 60
	for i := range 20 {
		slug := fmt.Sprintf("hw%d", i)
		st.assignments[slug] = store.Assignment{Slug: slug, PublishAt: &pub, DueAt: t0.Add(time.Duration(i) * time.Hour), LatePolicy: "none"}
	}
	for i := range 10 {
		slug := fmt.Sprintf("test%d", i)
		st.tests[slug] = store.Test{Slug: slug, PublishAt: &pub, StartsAt: t0, EndsAt: t0.Add(3 * time.Hour),
			DurationMinutes: &dur, RestrictWorkspace: true, RestrictREPL: true}
		st.starts[slug] = map[string]time.Time{}
		for u := range 200 {
			st.starts[slug][fmt.Sprintf("student%d", u)] = t0
		}
	}
	s := &Service{}
	s.state.Store(st)
	now := t0.Add(30 * time.Minute)
	b.Run("SubmissionOpen", func(b *testing.B) {
		for b.Loop() {
			s.SubmissionOpen("hw7", "student42", now)
			s.SubmissionOpen("test3", "student42", now)
		}
	})
	b.Run("TestOpen", func(b *testing.B) {
		for b.Loop() {
			s.TestOpen("test3", "student42", now)
		}
	})
	b.Run("ExamRestriction", func(b *testing.B) {
		for b.Loop() {
			s.ExamRestriction("student42", now)
		}
	})
}

// BenchmarkSubmit is one student's submit of three small files through
// the real server: snapshot, database row, mirror, audit.
func BenchmarkSubmit(b *testing.B) {
	e := newEnv(b)
	e.assignment("hw1", t0, t0.Add(time.Hour), nil)
	alice := e.as("alice")
	for _, f := range []string{"a.py", "b.py", "data.csv"} {
		e.disk("Local/alice/hw1/"+f, strings.Repeat("x = 1\n", 500))
	}
	body := map[string]any{"files": []string{"Local/alice/hw1"}}
	for b.Loop() {
		alice.do("POST", "/api/course/assignments/hw1/submit", body).must(b, 201)
	}
}
