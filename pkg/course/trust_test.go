package course

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRestrictionReachesRunningSandboxes: what the policy grants shrinks
// when a student starts a restricted test, when a window opens, or when an
// item changes; the server is told each time (OnChange), so it can end the
// sandboxes started under the old rules.
func TestRestrictionReachesRunningSandboxes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.assignment("hw1", t0.Add(-time.Hour), t0.Add(48*time.Hour), nil)
	if got := e.changes.take(); !slices.Equal(got, []string{""}) {
		t.Fatalf("creating an item: told %q, want everyone", got)
	}
	// A timed test: alice's start restricts alice at once.
	e.test("quiz", t0.Add(-time.Minute), t0.Add(2*time.Hour), 30, true)
	e.changes.take()
	e.as("alice").do("POST", "/api/course/tests/quiz/start", nil).must(t, 200)
	if got := e.changes.take(); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("alice starting the quiz: told %q, want alice", got)
	}
	// A window test opening: everyone, on the tick that passes its start.
	e.test("midterm", t0.Add(time.Hour), t0.Add(3*time.Hour), 0, true)
	e.changes.take()
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.changes.take(); len(got) != 0 {
		t.Fatalf("a tick with no boundary passed: told %q", got)
	}
	e.clock.Set(t0.Add(30 * time.Minute))
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.changes.take(); !slices.Equal(got, []string{""}) {
		t.Fatalf("alice's quiz time ending: told %q, want everyone", got)
	}
	if b, ok := e.svc.nextBoundary(e.clock.Now()); !ok || !b.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next boundary = %v %v, want the midterm's start %v", b, ok, t0.Add(time.Hour))
	}
	e.clock.Set(t0.Add(time.Hour))
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.changes.take(); !slices.Equal(got, []string{""}) {
		t.Fatalf("the midterm window opening: told %q, want everyone", got)
	}
}

// TestExamHoldsSubmissionFiles: during a restricted test a student cannot
// open what she submitted for other items; the test's own stay reachable.
func TestExamHoldsSubmissionFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0.Add(-time.Hour), t0.Add(48*time.Hour), nil)
	alice := e.as("alice")
	alice.writeFile("Local/alice/notes.py", "my notes\n").must(t, 200)
	alice.do("POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/notes.py"}}).must(t, 201)
	e.test("midterm", t0.Add(time.Hour), t0.Add(3*time.Hour), 0, true)
	file := func(item string) reply {
		return alice.do("GET", fmt.Sprintf("/api/course/items/%s/submissions/alice/1/files?path=%s", item, url.QueryEscape("notes.py")), nil)
	}
	file("hw1").must(t, 200)
	e.clock.Set(t0.Add(90 * time.Minute))
	if err := e.svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	file("hw1").must(t, 403)
	alice.do("GET", "/api/course/items/hw1/submissions/alice", nil).must(t, 403)
	alice.readFile("Submissions/hw1/alice/notes.py").must(t, 404)
	// Staff are never held.
	e.as("prof").do("GET", "/api/course/items/hw1/submissions/alice/1/files?path=notes.py", nil).must(t, 200)
	e.clock.Set(t0.Add(4 * time.Hour))
	file("hw1").must(t, 200)
}

// TestDraftsInvisible: an unpublished item's folder answers exactly like a
// name that does not exist, in every listing, zip and probe.
func TestDraftsInvisible(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0.Add(-time.Hour), t0.Add(48*time.Hour), nil)
	e.assignment("secret-draft", t0.Add(24*time.Hour), t0.Add(48*time.Hour), nil)
	e.test("final-exam", t0.Add(24*time.Hour), t0.Add(26*time.Hour), 0, false)
	e.as("prof").do("PUT", "/api/course/tests/final-exam", map[string]any{"title": "Final", "publish_at": nil,
		"starts_at": ts(t0.Add(24 * time.Hour)), "ends_at": ts(t0.Add(26 * time.Hour))}).must(t, 200)
	alice := e.as("alice")
	l := alice.do("GET", "/api/files?path=Submissions", nil).must(t, 200)
	for _, entry := range l.list("entries") {
		name := entry.(map[string]any)["name"]
		if name == "secret-draft" || name == "final-exam" {
			t.Errorf("a draft is listed: %v", name)
		}
	}
	for _, p := range []string{"Submissions/secret-draft", "Submissions/final-exam", "Submissions/secret-draft/alice"} {
		draft := alice.do("GET", "/api/files?path="+url.QueryEscape(p), nil)
		none := alice.do("GET", "/api/files?path="+url.QueryEscape(p+"-nonexistent"), nil)
		if draft.status != 404 || none.status != 404 || draft.body["error"] != fmt.Sprint("no such file or folder: ", p) {
			t.Errorf("%s: %d %s; a made-up name: %d %s", p, draft.status, draft.raw, none.status, none.raw)
		}
		if z := alice.do("GET", "/api/files/download?path="+url.QueryEscape(p), nil); z.status != 404 {
			t.Errorf("zip of %s: %d", p, z.status)
		}
	}
	z := alice.do("GET", "/api/files/download?path=Submissions", nil).must(t, 200)
	if strings.Contains(z.raw, "secret-draft") || strings.Contains(z.raw, "final-exam") {
		t.Error("the zip of Submissions names a draft")
	}
	// Published, it appears.
	e.clock.Set(t0.Add(25 * time.Hour))
	alice.do("GET", "/api/files?path=Submissions/secret-draft", nil).must(t, 200)
}
