package course

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestPublishTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0.Add(time.Hour), t0.Add(24*time.Hour), nil)
	e.disk("Assignments/hw1/starter.py", "print('start')\n")
	alice, prof := e.as("alice"), e.as("prof")

	r := alice.do("GET", "/api/course/assignments", nil).must(t, 200)
	if len(r.list("assignments")) != 0 || r.get("now") != ts(t0) {
		t.Fatalf("a student sees an unpublished assignment, or no server time: %s", r.raw)
	}
	alice.do("GET", "/api/course/assignments/hw1", nil).must(t, 404)
	alice.do("POST", "/api/course/assignments/hw1/copy-starter", nil).must(t, 404)
	alice.readFile("Assignments/hw1/starter.py").must(t, 404)
	if e.svc.AssignmentPublished("hw1", t0) {
		t.Fatal("AssignmentPublished before publish_at")
	}
	r = prof.do("GET", "/api/course/assignments", nil).must(t, 200)
	if len(r.list("assignments")) != 1 || r.list("assignments")[0].(map[string]any)["published"] != false {
		t.Fatalf("staff should see the draft, unpublished: %s", r.raw)
	}

	e.clock.Set(t0.Add(time.Hour))
	r = alice.do("GET", "/api/course/assignments", nil).must(t, 200)
	if len(r.list("assignments")) != 1 || r.get("now") != ts(t0.Add(time.Hour)) {
		t.Fatalf("published assignment not listed: %s", r.raw)
	}
	r = alice.do("GET", "/api/course/assignments/hw1", nil).must(t, 200)
	if r.get("assignment", "open") != true || r.get("assignment", "closes_at") != ts(t0.Add(24*time.Hour)) {
		t.Fatalf("assignment view: %s", r.raw)
	}
	if got := alice.readFile("Assignments/hw1/starter.py").must(t, 200).raw; got != "print('start')\n" {
		t.Fatalf("material: %q", got)
	}
	// Material is read-only for students.
	alice.writeFile("Assignments/hw1/starter.py", "x").must(t, 403)

	// A draft again: hidden again.
	body := map[string]any{"title": "Homework hw1", "due_at": ts(t0.Add(24 * time.Hour)), "publish_at": nil}
	prof.do("PUT", "/api/course/assignments/hw1", body).must(t, 200)
	alice.do("GET", "/api/course/assignments/hw1", nil).must(t, 404)
	if n := e.auditActions("course.assignment")["course.assignment.publish"]; n != 1 {
		t.Fatalf("publish change audited %d times", n)
	}
}

func TestSubmitDeadlineAndHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	due := t0.Add(24 * time.Hour)
	e.assignment("hw1", t0, due, nil)
	alice := e.as("alice")
	e.disk("Local/alice/hw1/a.py", "v1\n")
	e.disk("Local/alice/hw1/lib/b.py", "lib\n")

	var submitted []string
	for i, content := range []string{"v1\n", "v2\n", "v3\n"} {
		e.clock.Set(t0.Add(time.Duration(i+1) * time.Hour))
		if i > 0 {
			alice.writeFile("Local/alice/hw1/a.py", content).must(t, 200)
		}
		r := alice.do("POST", "/api/course/assignments/hw1/submit",
			map[string]any{"files": []string{"Local/alice/hw1/a.py", "Local/alice/hw1/lib"}}).must(t, 201)
		if r.get("submission", "n") != float64(i+1) || r.get("submission", "late") != false || r.get("now") == nil {
			t.Fatalf("submission %d: %s", i+1, r.raw)
		}
		files := r.get("submission", "files").([]any)
		if len(files) != 2 || files[0].(map[string]any)["name"] != "a.py" || files[1].(map[string]any)["name"] != "lib/b.py" ||
			files[0].(map[string]any)["sha256"] != sha(content) {
			t.Fatalf("files of submission %d: %v", i+1, files)
		}
		submitted = append(submitted, content)
	}

	// The mirror holds the latest; every snapshot keeps its own content.
	if got := alice.readFile("Submissions/hw1/alice/a.py").must(t, 200).raw; got != "v3\n" {
		t.Fatalf("mirror: %q", got)
	}
	r := alice.do("GET", "/api/course/items/hw1/submissions/alice", nil).must(t, 200)
	subs := r.list("submissions")
	if len(subs) != 3 || subs[2].(map[string]any)["latest"] != true || subs[0].(map[string]any)["latest"] != false {
		t.Fatalf("history: %s", r.raw)
	}
	for i, want := range submitted {
		got := alice.do("GET", fmt.Sprintf("/api/course/items/hw1/submissions/alice/%d/files?path=a.py", i+1), nil).must(t, 200)
		if got.raw != want || !strings.HasPrefix(got.header.Get("Content-Type"), "text/x-python") {
			t.Fatalf("snapshot %d: %q (%s)", i+1, got.raw, got.header.Get("Content-Type"))
		}
	}
	alice.do("GET", "/api/course/items/hw1/submissions/alice/1/files?path=../../bob/1/a.py", nil).must(t, 404)
	alice.do("GET", "/api/course/items/hw1/submissions/alice/9/files?path=a.py", nil).must(t, 404)

	// A snapshot is sealed on disk and out of reach of the file API, and
	// writing the mirror leaves it alone.
	snaps, _ := filepath.Glob(filepath.Join(e.dir, ".snapshots", "hw1", "alice", "1-*"))
	if len(snaps) != 1 {
		t.Fatalf("snapshot folders: %v", snaps)
	}
	for _, p := range []string{snaps[0], filepath.Join(snaps[0], "a.py"), filepath.Join(snaps[0], "lib")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o444)
		if fi.IsDir() {
			want = 0o555
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	rel := strings.TrimPrefix(snaps[0], e.dir+"/")
	alice.readFile(rel+"/a.py").must(t, 400)
	alice.writeFile(rel+"/a.py", "tampered").must(t, 400)
	alice.writeFile("Submissions/hw1/alice/a.py", "edited in the tree").must(t, 200)
	if got := e.read(rel + "/a.py"); got != "v1\n" {
		t.Fatalf("snapshot changed: %q", got)
	}

	// After the deadline: refused with the time, and the folder is read-only.
	e.clock.Set(due)
	r = alice.do("POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/hw1/a.py"}}).must(t, 409)
	if !strings.Contains(r.raw, "deadline passed at "+ts(due)) {
		t.Fatalf("refusal: %s", r.raw)
	}
	alice.writeFile("Submissions/hw1/alice/a.py", "too late").must(t, 403)
	if e.svc.SubmissionOpen("hw1", "alice", due) || !e.svc.SubmissionOpen("hw1", "alice", due.Add(-time.Second)) {
		t.Fatal("SubmissionOpen around the deadline")
	}
	if n := e.auditActions("course.submit")["course.submit"]; n != 3 {
		t.Fatalf("%d submits audited", n)
	}
}

func TestLateCutoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	due, cutoff := t0.Add(time.Hour), t0.Add(2*time.Hour)
	e.assignment("hw2", t0, due, &cutoff)
	alice := e.as("alice")
	e.disk("Local/alice/hw2.py", "x = 1\n")
	files := map[string]any{"files": []string{"Local/alice/hw2.py"}}

	e.clock.Set(due.Add(-time.Second))
	alice.do("POST", "/api/course/assignments/hw2/submit", files).must(t, 201)
	e.clock.Set(due)
	r := alice.do("GET", "/api/course/assignments/hw2", nil).must(t, 200)
	if r.get("assignment", "open") != true || r.get("assignment", "late_now") != true {
		t.Fatalf("in the late window: %s", r.raw)
	}
	r = alice.do("POST", "/api/course/assignments/hw2/submit", files).must(t, 201)
	if r.get("submission", "late") != true || r.get("submission", "n") != float64(2) {
		t.Fatalf("late submission: %s", r.raw)
	}
	e.clock.Set(cutoff)
	r = alice.do("POST", "/api/course/assignments/hw2/submit", files).must(t, 409)
	if !strings.Contains(r.raw, ts(cutoff)) {
		t.Fatalf("refusal names the cut-off: %s", r.raw)
	}
	r = e.as("prof").do("GET", "/api/course/items/hw2/submissions", nil).must(t, 200)
	for _, s := range r.list("students") {
		row := s.(map[string]any)
		if row["username"] == "alice" && (row["late"] != true || row["n"] != float64(2) || row["submissions"] != float64(2)) {
			t.Fatalf("roster row: %v", row)
		}
	}
}

func TestSubmitRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0, t0.Add(time.Hour), nil)
	alice := e.as("alice")
	e.disk("Local/alice/ok.py", "ok\n")
	e.disk("Local/bob/secret.py", "bob's secret\n")
	e.disk("Lecture Notes/notes.py", "notes\n")
	if err := os.Symlink(filepath.Join(e.dir, "Local/bob/secret.py"), filepath.Join(e.dir, "Local/alice/link.py")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(e.dir, "Local/bob"), filepath.Join(e.dir, "Local/alice/bobdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(e.dir, "Local/alice/empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 2<<20)
	for _, tc := range []struct {
		name   string
		body   any
		status int
	}{
		{"another student's file", `{"files": ["Local/bob/secret.py"]}`, 400},
		{"course material", `{"files": ["Lecture Notes/notes.py"]}`, 400},
		{"a link to another student's file", `{"files": ["Local/alice/link.py"]}`, 400},
		{"through a linked folder", `{"files": ["Local/alice/bobdir/secret.py"]}`, 400},
		{"dot-dot", `{"files": ["Local/alice/../bob/secret.py"]}`, 400},
		{"missing", `{"files": ["Local/alice/nope.py"]}`, 404},
		{"empty folder", `{"files": ["Local/alice/empty"]}`, 400},
		{"no files", `{"files": []}`, 400},
		{"unknown field", `{"files": ["Local/alice/ok.py"], "late": false}`, 400},
		{"malformed", `{"files": [`, 400},
		{"wrong type", `{"files": "Local/alice/ok.py"}`, 400},
		{"two values", `{"files": ["Local/alice/ok.py"]} {}`, 400},
		{"oversized body", `{"files": ["` + big + `"]}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice.do("POST", "/api/course/assignments/hw1/submit", tc.body).must(t, tc.status)
		})
	}
	r := alice.do("GET", "/api/course/items/hw1/submissions/alice", nil).must(t, 200)
	if len(r.list("submissions")) != 0 {
		t.Fatalf("a refused submit left a submission: %s", r.raw)
	}
	// Nothing of bob's was copied anywhere.
	snaps, _ := filepath.Glob(filepath.Join(e.dir, ".snapshots", "*", "*", "*"))
	if len(snaps) != 0 {
		t.Fatalf("snapshots left: %v", snaps)
	}
}

func TestTestWindowAndAutoSubmit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start, end := t0.Add(time.Hour), t0.Add(3*time.Hour)
	e.test("midterm", start, end, 0, true)
	e.disk("Tests/midterm/q1.md", "Question 1\n")
	alice, bob := e.as("alice"), e.as("bob")
	ctx := context.Background()
	over := map[string]int{}
	e.svc.opts.OnTestOver = func(test, user string) { over[test+"/"+user]++ }

	// Before: metadata visible, material not, no restriction.
	r := alice.do("GET", "/api/course/tests/midterm", nil).must(t, 200)
	if r.get("test", "open") != false || r.get("test", "my_end") != ts(end) || r.get("now") != ts(t0) {
		t.Fatalf("before the window: %s", r.raw)
	}
	alice.readFile("Tests/midterm/q1.md").must(t, 404)
	alice.do("POST", "/api/course/tests/midterm/start", nil).must(t, 409)
	if slug, _, _ := e.svc.ExamRestriction("alice", t0); slug != "" {
		t.Fatalf("restricted before the test: %q", slug)
	}

	// Inside: material readable, the test folder writable, restrictions on.
	e.clock.Set(start)
	if !e.svc.TestOpen("midterm", "alice", start) || e.svc.TestOpen("midterm", "alice", start.Add(-time.Nanosecond)) {
		t.Fatal("TestOpen at the start")
	}
	alice.readFile("Tests/midterm/q1.md").must(t, 200)
	r = alice.do("POST", "/api/course/tests/midterm/start", nil).must(t, 200)
	if r.get("test", "open") != true || r.get("test", "my_start") != ts(start) {
		t.Fatalf("started: %s", r.raw)
	}
	alice.writeFile("Submissions/midterm/alice/answer.py", "first\n").must(t, 200)
	alice.writeFile("Submissions/midterm/bob/answer.py", "not mine\n").must(t, 404)
	r = alice.do("POST", "/api/course/tests/midterm/submit", nil).must(t, 201)
	if r.get("submission", "n") != float64(1) || r.get("submission", "auto") != false {
		t.Fatalf("test submit: %s", r.raw)
	}
	alice.writeFile("Submissions/midterm/alice/answer.py", "final\n").must(t, 200)
	// bob never started: he works in his folder anyway (no duration).
	e.disk("Submissions/midterm/bob/b.py", "bob's work\n")
	// A link his program made must not carry alice's answer into his submission.
	if err := os.Symlink(filepath.Join(e.dir, "Submissions/midterm/alice/answer.py"), filepath.Join(e.dir, "Submissions/midterm/bob/copied.py")); err != nil {
		t.Fatal(err)
	}
	slug, ws, repl := e.svc.ExamRestriction("alice", start.Add(time.Minute))
	if slug != "midterm" || !ws || !repl {
		t.Fatalf("ExamRestriction inside: %q %v %v", slug, ws, repl)
	}
	// A test without a duration ends for everyone at the window's end.
	for _, x := range e.as("prof").do("GET", "/api/course/items/midterm/submissions", nil).must(t, 200).list("students") {
		if row := x.(map[string]any); row["started_at"] != nil || row["ends_at"] != ts(end) {
			t.Fatalf("the roster's clock without a duration: %v", row)
		}
	}
	// Nothing is auto-submitted before the end.
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if subs, _ := e.db.SubmissionsOf(ctx, "midterm", "bob"); len(subs) != 0 {
		t.Fatalf("auto-submitted early: %v", subs)
	}
	if len(over) != 0 {
		t.Fatalf("test over for %v before its end", over)
	}

	// After: locked at once (before any tick), then auto-submitted once.
	e.clock.Set(end)
	if e.svc.TestOpen("midterm", "alice", end) || e.svc.SubmissionOpen("midterm", "alice", end) {
		t.Fatal("still open at the end")
	}
	alice.writeFile("Submissions/midterm/alice/answer.py", "after the end\n").must(t, 403)
	alice.readFile("Tests/midterm/q1.md").must(t, 404)
	alice.do("POST", "/api/course/tests/midterm/submit", nil).must(t, 409)
	if slug, _, _ := e.svc.ExamRestriction("alice", end); slug != "" {
		t.Fatalf("restricted after the test: %q", slug)
	}
	for range 2 {
		if err := e.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	subs, err := e.db.SubmissionsOf(ctx, "midterm", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || !subs[1].Auto || subs[0].Auto || subs[1].Files[0].SHA256 != sha("final\n") {
		t.Fatalf("alice's submissions: %+v", subs)
	}
	subs, _ = e.db.SubmissionsOf(ctx, "midterm", "bob")
	if len(subs) != 1 || !subs[0].Auto || len(subs[0].Files) != 1 || subs[0].Files[0].Name != "b.py" {
		t.Fatalf("bob's submissions: %+v", subs)
	}
	if subs, _ := e.db.SubmissionsOf(ctx, "midterm", "carol"); len(subs) != 0 {
		t.Fatalf("carol had no folder but got %+v", subs)
	}
	// Two ticks, one word each: their sandboxes end once.
	if want := map[string]int{"midterm/alice": 1, "midterm/bob": 1}; !maps.Equal(over, want) {
		t.Fatalf("test over = %v, want %v", over, want)
	}
	// A second service (another server, or a restart) does not submit again.
	other, err := New(ctx, Options{DB: e.db, Files: e.ws, DataPath: e.dir, Logger: quiet, Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if subs, _ := e.db.SubmissionsOf(ctx, "midterm", "alice"); len(subs) != 2 {
		t.Fatalf("submitted again: %d", len(subs))
	}
	if n := e.auditActions("course.autosubmit")["course.autosubmit"]; n != 2 {
		t.Fatalf("%d auto-submits audited", n)
	}
	_ = bob
}

func TestPerStudentDuration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start, end := t0, t0.Add(2*time.Hour)
	e.test("quiz", start, end, 30, false)
	alice, bob := e.as("alice"), e.as("bob")
	ctx := context.Background()

	e.clock.Set(t0.Add(10 * time.Minute))
	if e.svc.TestOpen("quiz", "alice", e.clock.Now()) {
		t.Fatal("open before the student started it")
	}
	r := alice.do("GET", "/api/course/tests/quiz", nil).must(t, 200)
	if r.get("test", "my_end") != nil {
		t.Fatalf("an end before starting: %s", r.raw)
	}
	r = alice.do("POST", "/api/course/tests/quiz/start", nil).must(t, 200)
	if r.get("test", "my_end") != ts(t0.Add(40*time.Minute)) || r.get("test", "open") != true {
		t.Fatalf("alice's window: %s", r.raw)
	}
	alice.writeFile("Submissions/quiz/alice/a.py", "alice\n").must(t, 200)
	if slug, ws, repl := e.svc.ExamRestriction("alice", e.clock.Now()); slug != "" || ws || repl {
		t.Fatalf("a test without restrictions restricts: %q", slug)
	}

	// Staff watching the test see who started and when each one's time ends.
	roster := func() map[string]map[string]any {
		t.Helper()
		out := map[string]map[string]any{}
		for _, x := range e.as("prof").do("GET", "/api/course/items/quiz/submissions", nil).must(t, 200).list("students") {
			row := x.(map[string]any)
			out[row["username"].(string)] = row
		}
		return out
	}
	rows := roster()
	if rows["alice"]["started_at"] != ts(t0.Add(10*time.Minute)) || rows["alice"]["ends_at"] != ts(t0.Add(40*time.Minute)) ||
		rows["bob"]["started_at"] != nil || rows["bob"]["ends_at"] != nil {
		t.Fatalf("the roster's clocks: alice %v, bob %v", rows["alice"], rows["bob"])
	}

	// Starting again changes nothing.
	e.clock.Set(t0.Add(20 * time.Minute))
	r = alice.do("POST", "/api/course/tests/quiz/start", nil).must(t, 200)
	if r.get("test", "my_start") != ts(t0.Add(10*time.Minute)) {
		t.Fatalf("restart moved the clock: %s", r.raw)
	}

	// alice's time is over; the window is not.
	e.clock.Set(t0.Add(40 * time.Minute))
	if e.svc.TestOpen("quiz", "alice", e.clock.Now()) || e.svc.SubmissionOpen("quiz", "alice", e.clock.Now()) {
		t.Fatal("alice's test still open after her duration")
	}
	alice.writeFile("Submissions/quiz/alice/a.py", "late\n").must(t, 403)
	r = alice.do("POST", "/api/course/tests/quiz/start", nil).must(t, 200)
	if r.get("test", "open") != false {
		t.Fatalf("restarting reopened it: %s", r.raw)
	}
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if subs, _ := e.db.SubmissionsOf(ctx, "quiz", "alice"); len(subs) != 1 || !subs[0].Auto {
		t.Fatalf("alice not auto-submitted at her end: %+v", subs)
	}

	// bob starts late: his end is the window's end, not start+30.
	e.clock.Set(end.Add(-15 * time.Minute))
	r = bob.do("POST", "/api/course/tests/quiz/start", nil).must(t, 200)
	if r.get("test", "my_end") != ts(end) {
		t.Fatalf("bob's end: %s", r.raw)
	}
	if rows := roster(); rows["bob"]["started_at"] != ts(end.Add(-15*time.Minute)) || rows["bob"]["ends_at"] != ts(end) {
		t.Fatalf("the roster's clock of bob: %v", rows["bob"])
	}
	e.disk("Submissions/quiz/bob/b.py", "bob\n")

	// Run does the auto-submit by itself.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	e.svc.opts.Tick = 10 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(runCtx) }()
	e.clock.Set(end)
	servertest.Eventually(t, servertest.WaitShort, "Run auto-submitting bob's test", func() bool {
		subs, err := e.db.SubmissionsOf(ctx, "quiz", "bob")
		if err != nil {
			t.Fatal(err)
		}
		return len(subs) == 1 && subs[0].Auto
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestGradingVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0, t0.Add(24*time.Hour), nil)
	alice, bob, prof := e.as("alice"), e.as("bob"), e.as("prof")
	e.disk("Local/alice/a.py", "alice's answer\n")
	e.disk("Local/bob/b.py", "bob's answer\n")
	alice.do("POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/a.py"}}).must(t, 201)
	bob.do("POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/bob/b.py"}}).must(t, 201)

	r := prof.do("GET", "/api/course/items/hw1/submissions", nil).must(t, 200)
	rows := r.list("students")
	if len(rows) != 3 {
		t.Fatalf("roster should list every student: %s", r.raw)
	}
	byName := map[string]map[string]any{}
	for _, x := range rows {
		byName[x.(map[string]any)["username"].(string)] = x.(map[string]any)
	}
	if byName["alice"]["submitted"] != true || byName["carol"]["submitted"] != false || byName["alice"]["graded"] != false ||
		byName["alice"]["started_at"] != nil || byName["alice"]["ends_at"] != nil {
		t.Fatalf("roster: %s", r.raw)
	}
	prof.do("GET", "/api/course/items/hw1/submissions/alice/1/files?path=a.py", nil).must(t, 200)

	r = prof.do("PUT", "/api/course/items/hw1/grades/alice", map[string]any{"score": 8.5, "max_score": 10, "feedback_md": "**Good**"}).must(t, 200)
	if r.get("grade", "score") != 8.5 || r.get("grade", "graded_by") != "prof" {
		t.Fatalf("grade: %s", r.raw)
	}
	// A regrade replaces it.
	prof.do("PUT", "/api/course/items/hw1/grades/alice", map[string]any{"score": 9, "max_score": 10, "feedback_md": "**Very good**"}).must(t, 200)
	prof.do("PUT", "/api/course/items/hw1/grades/bob", map[string]any{"score": 3, "max_score": 10, "feedback_md": "bob only"}).must(t, 200)

	// A student sees a grade once the item's results are released
	// (pkg/grading turns the switch).
	if r := alice.do("GET", "/api/course/grades", nil).must(t, 200); len(r.list("grades")) != 0 {
		t.Fatalf("a grade shown before release: %s", r.raw)
	}
	if err := e.db.SetReleased(context.Background(), "hw1", true, "prof", t0); err != nil {
		t.Fatal(err)
	}
	r = alice.do("GET", "/api/course/grades", nil).must(t, 200)
	gs := r.list("grades")
	if len(gs) != 1 || gs[0].(map[string]any)["score"] != float64(9) || gs[0].(map[string]any)["feedback_md"] != "**Very good**" ||
		gs[0].(map[string]any)["title"] != "Homework hw1" {
		t.Fatalf("alice's grades: %s", r.raw)
	}
	if strings.Contains(r.raw, "bob") {
		t.Fatalf("alice sees bob's grade: %s", r.raw)
	}
	if r := prof.do("GET", "/api/course/grades", nil).must(t, 200); len(r.list("grades")) != 2 {
		t.Fatalf("staff grades: %s", r.raw)
	}
	// Another student's submissions, files and grades: not even their existence.
	for _, p := range []string{
		"/api/course/items/hw1/submissions/alice",
		"/api/course/items/hw1/submissions/alice/1/files?path=a.py",
		"/api/course/items/hw1/submissions/carol",
	} {
		bob.do("GET", p, nil).must(t, 404)
	}
	bob.readFile("Submissions/hw1/alice/a.py").must(t, 404)
	bob.do("PUT", "/api/course/items/hw1/grades/bob", map[string]any{"score": 10, "max_score": 10}).must(t, 403)

	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"negative score", `{"score": -1, "max_score": 10}`, 400},
		{"zero max", `{"score": 1, "max_score": 0}`, 400},
		{"unknown field", `{"score": 1, "max_score": 10, "points": 1}`, 400},
		{"string score", `{"score": "ten", "max_score": 10}`, 400},
		{"null score keeps feedback", `{"score": null, "max_score": 10, "feedback_md": "see me"}`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prof.do("PUT", "/api/course/items/hw1/grades/carol", tc.body).must(t, tc.status)
		})
	}
	prof.do("PUT", "/api/course/items/hw1/grades/nobody", `{"score": 1, "max_score": 10}`).must(t, 404)
	prof.do("PUT", "/api/course/items/hw1/grades/prof", `{"score": 1, "max_score": 10}`).must(t, 404)
	prof.do("PUT", "/api/course/items/nope/grades/alice", `{"score": 1, "max_score": 10}`).must(t, 404)
	if n := e.auditActions("course.grade")["course.grade"]; n != 4 {
		t.Fatalf("%d grades audited", n)
	}
}

// TestGradeKeepsWhatIsNotSent: a save changes only the fields it sends. A
// grader who opened a student directly (the form not yet filled from the
// saved grade) and wrote a comment once wrote null over a score of 10.
func TestGradeKeepsWhatIsNotSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("quiz-1", t0, t0.Add(time.Hour), nil)
	prof := e.as("prof")
	grade := func(body string, status int) reply {
		t.Helper()
		return prof.do("PUT", "/api/course/items/quiz-1/grades/alice", body).must(t, status)
	}
	// A first grade needs max_score; nothing is saved without one.
	grade(`{"score": 10}`, 400)
	grade(`{"feedback_md": "first"}`, 400)
	grade(`{"score": 10, "max_score": 10}`, 200)
	// Released, so that alice reads each save as it is made.
	if err := e.db.SetReleased(context.Background(), "quiz-1", true, "prof", t0); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, body string
		score      any // nil: no score
		max        float64
		feedback   string
	}{
		{"feedback alone keeps the score", `{"feedback_md": "Well done."}`, 10.0, 10, "Well done."},
		{"an empty body changes nothing", `{}`, 10.0, 10, "Well done."},
		{"a score alone keeps the feedback", `{"score": 9.5}`, 9.5, 10, "Well done."},
		{"max_score alone keeps both", `{"max_score": 20}`, 9.5, 20, "Well done."},
		{"null takes the score away on purpose", `{"score": null}`, nil, 20, "Well done."},
		{"empty feedback is a change too", `{"score": 10, "feedback_md": ""}`, 10.0, 20, ""},
	} {
		r := grade(tc.body, 200)
		if r.get("grade", "score") != tc.score || r.get("grade", "max_score") != tc.max || r.get("grade", "feedback_md") != tc.feedback {
			t.Fatalf("%s: %s", tc.name, r.raw)
		}
		// What the student reads is what was saved.
		mine := e.as("alice").do("GET", "/api/course/grades", nil).must(t, 200).list("grades")
		if len(mine) != 1 || mine[0].(map[string]any)["score"] != tc.score {
			t.Fatalf("%s: alice reads %v", tc.name, mine)
		}
	}
	for _, tc := range []struct{ name, body string }{
		{"null max_score", `{"max_score": null}`},
		{"a string score", `{"score": "ten"}`},
		{"an unknown field", `{"points": 1}`},
	} {
		if r := grade(tc.body, 400); !strings.Contains(r.raw, "error") {
			t.Fatalf("%s: %s", tc.name, r.raw)
		}
	}
	if r := grade(`{}`, 200); r.get("grade", "score") != 10.0 {
		t.Fatalf("a refused save changed the grade: %s", r.raw)
	}
}

func TestGradesCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0, t0.Add(time.Hour), nil)
	alice, prof := e.as("alice"), e.as("prof")
	e.disk("Local/alice/a.py", "a\n")
	alice.do("POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/a.py"}}).must(t, 201)
	prof.do("PUT", "/api/course/items/hw1/grades/alice", map[string]any{"score": 7.25, "max_score": 10}).must(t, 200)
	prof.do("PUT", "/api/course/items/hw1/grades/carol", map[string]any{"score": 0, "max_score": 10}).must(t, 200)

	r := prof.do("GET", "/api/course/items/hw1/grades.csv", nil).must(t, 200)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || !strings.Contains(r.header.Get("Content-Disposition"), "hw1-grades.csv") {
		t.Fatalf("headers: %v", r.header)
	}
	want := "username,display_name,submitted_at,late,score,max_score\n" +
		"alice,Alice A," + ts(t0) + ",false,7.25,10\n" +
		"bob,Bob B,,,,\n" +
		`carol,"'=HYPERLINK(""http://evil"")",,,0,10` + "\n"
	if r.raw != want {
		t.Fatalf("CSV:\n%s\nwant:\n%s", r.raw, want)
	}
	alice.do("GET", "/api/course/items/hw1/grades.csv", nil).must(t, 403)
	if n := e.auditActions("course.grades.export")["course.grades.export"]; n != 1 {
		t.Fatalf("%d exports audited", n)
	}
}

func TestCSVCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"", ""},
		{"a=b", "a=b"},
	} {
		if got := csvCell(tc.in); got != tc.want {
			t.Errorf("csvCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStudentForbiddenOnStaffRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0, t0.Add(time.Hour), nil)
	e.test("exam", t0, t0.Add(time.Hour), 0, false)
	alice := e.as("alice")
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/course/assignments", `{"slug": "x", "title": "x", "due_at": "2026-09-02T00:00:00Z"}`},
		{"PUT", "/api/course/assignments/hw1", `{"title": "x", "due_at": "2026-09-02T00:00:00Z"}`},
		{"DELETE", "/api/course/assignments/hw1", ""},
		{"POST", "/api/course/assignments/hw1/starter", `{"from": "Local/alice/a.py"}`},
		{"POST", "/api/course/tests", `{"slug": "y", "title": "y", "starts_at": "2026-09-02T00:00:00Z", "ends_at": "2026-09-03T00:00:00Z"}`},
		{"PUT", "/api/course/tests/exam", `{"title": "x", "starts_at": "2026-09-02T00:00:00Z", "ends_at": "2026-09-03T00:00:00Z"}`},
		{"DELETE", "/api/course/tests/exam", ""},
		{"GET", "/api/course/items/hw1/submissions", ""},
		{"PUT", "/api/course/items/hw1/grades/alice", `{"score": 10, "max_score": 10}`},
		{"GET", "/api/course/items/hw1/grades.csv", ""},
		{"GET", "/api/course/items/nope/submissions", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			alice.do(tc.method, tc.path, body).must(t, 403)
		})
	}
	if r := e.as("prof").do("GET", "/api/course/assignments/hw1", nil).must(t, 200); r.get("assignment", "title") != "Homework hw1" {
		t.Fatalf("a refused edit changed the assignment: %s", r.raw)
	}
	// And without a session: 401.
	anon := &client{Client: e.Client(), e: e}
	anon.do("GET", "/api/course/assignments", nil).must(t, 401)
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	prof := e.as("prof")
	due := ts(t0.Add(time.Hour))
	e.assignment("hw1", t0, t0.Add(time.Hour), nil)
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"bad slug", "/api/course/assignments", `{"slug": "../x", "title": "x", "due_at": "` + due + `"}`, 400},
		{"upper-case slug", "/api/course/assignments", `{"slug": "HW", "title": "x", "due_at": "` + due + `"}`, 400},
		{"no title", "/api/course/assignments", `{"slug": "hw2", "due_at": "` + due + `"}`, 400},
		{"no due", "/api/course/assignments", `{"slug": "hw2", "title": "x"}`, 400},
		{"bad time", "/api/course/assignments", `{"slug": "hw2", "title": "x", "due_at": "tomorrow"}`, 400},
		{"cutoff without time", "/api/course/assignments", `{"slug": "hw2", "title": "x", "due_at": "` + due + `", "late_policy": "cutoff"}`, 400},
		{"cutoff before due", "/api/course/assignments", `{"slug": "hw2", "title": "x", "due_at": "` + due + `", "late_policy": "cutoff", "late_cutoff_at": "` + ts(t0) + `"}`, 400},
		{"unknown policy", "/api/course/assignments", `{"slug": "hw2", "title": "x", "due_at": "` + due + `", "late_policy": "lenient"}`, 400},
		{"unknown field", "/api/course/assignments", `{"slug": "hw2", "title": "x", "due_at": "` + due + `", "points": 3}`, 400},
		{"taken slug", "/api/course/assignments", `{"slug": "hw1", "title": "x", "due_at": "` + due + `"}`, 409},
		{"slug of an assignment for a test", "/api/course/tests", `{"slug": "hw1", "title": "x", "starts_at": "` + ts(t0) + `", "ends_at": "` + due + `"}`, 409},
		{"test ends before it starts", "/api/course/tests", `{"slug": "t1", "title": "x", "starts_at": "` + due + `", "ends_at": "` + ts(t0) + `"}`, 400},
		{"zero duration", "/api/course/tests", `{"slug": "t1", "title": "x", "starts_at": "` + ts(t0) + `", "ends_at": "` + due + `", "duration_minutes": 0}`, 400},
		{"malformed", "/api/course/tests", `{"slug": `, 400},
		{"oversized", "/api/course/tests", `{"slug": "t1", "title": "x", "description_md": "` + strings.Repeat("d", 2<<20) + `"}`, 413},
		{"too long description", "/api/course/assignments", `{"slug": "hw3", "title": "x", "due_at": "` + due + `", "description_md": "` + strings.Repeat("d", 200<<10) + `"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prof.do("POST", tc.path, tc.body).must(t, tc.status)
		})
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "Assignments/hw1")); err != nil || !fi.IsDir() {
		t.Fatalf("material folder: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "Submissions/hw1")); err != nil || !fi.IsDir() {
		t.Fatalf("submissions folder: %v", err)
	}
	prof.do("PUT", "/api/course/assignments/hw1", `{"slug": "other", "title": "x", "due_at": "`+due+`"}`).must(t, 400)
	prof.do("PUT", "/api/course/assignments/nope", `{"title": "x", "due_at": "`+due+`"}`).must(t, 404)
}

func TestStarterFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0, t0.Add(time.Hour), nil)
	prof, alice := e.as("prof"), e.as("alice")
	e.disk("Local/prof/starter/main.py", "print('hi')\n")
	e.disk("Local/prof/starter/data/input.csv", "a,b\n")
	e.disk("Local/prof/readme.md", "# hw1\n")

	r := prof.do("POST", "/api/course/assignments/hw1/starter", map[string]string{"from": "Local/prof/starter"}).must(t, 200)
	if len(r.list("copied")) != 2 {
		t.Fatalf("starter: %s", r.raw)
	}
	prof.do("POST", "/api/course/assignments/hw1/starter", map[string]string{"from": "Local/prof/readme.md"}).must(t, 200)
	prof.do("POST", "/api/course/assignments/hw1/starter", map[string]string{"from": "Local/prof/nope"}).must(t, 404)
	prof.do("POST", "/api/course/assignments/hw1/starter", map[string]string{"from": "../etc"}).must(t, 400)
	if got := e.read("Assignments/hw1/data/input.csv"); got != "a,b\n" {
		t.Fatalf("material: %q", got)
	}

	e.disk("Local/alice/hw1/main.py", "my own work\n")
	r = alice.do("POST", "/api/course/assignments/hw1/copy-starter", nil).must(t, 200)
	copied, skipped := fmt.Sprint(r.list("copied")), fmt.Sprint(r.list("skipped"))
	if copied != "[data/input.csv readme.md]" || skipped != "[main.py]" || r.get("folder") != "Local/alice/hw1" {
		t.Fatalf("copy-starter: %s", r.raw)
	}
	if got := alice.readFile("Local/alice/hw1/main.py").must(t, 200).raw; got != "my own work\n" {
		t.Fatalf("copy-starter overwrote the student's file: %q", got)
	}
	if got := alice.readFile("Local/alice/hw1/readme.md").must(t, 200).raw; got != "# hw1\n" {
		t.Fatalf("copied file: %q", got)
	}
	r = alice.do("POST", "/api/course/assignments/hw1/copy-starter", nil).must(t, 200)
	if len(r.list("copied")) != 0 || len(r.list("skipped")) != 3 {
		t.Fatalf("second copy: %s", r.raw)
	}
}

func TestDeleteItem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0, t0.Add(time.Hour), nil)
	e.test("quiz", t0, t0.Add(time.Hour), 0, false)
	alice, prof := e.as("alice"), e.as("prof")
	e.disk("Local/alice/a.py", "a\n")
	alice.do("POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/a.py"}}).must(t, 201)

	r := prof.do("DELETE", "/api/course/assignments/hw1", nil).must(t, 409)
	if !strings.Contains(r.raw, "1 submissions") {
		t.Fatalf("refusal: %s", r.raw)
	}
	prof.do("DELETE", "/api/course/tests/hw1", nil).must(t, 409) // has submissions, whatever the kind
	prof.do("DELETE", "/api/course/assignments/hw1?force=true", nil).must(t, 200)
	prof.do("DELETE", "/api/course/tests/quiz", nil).must(t, 200)
	prof.do("DELETE", "/api/course/tests/quiz", nil).must(t, 404)
	alice.do("GET", "/api/course/assignments/hw1", nil).must(t, 404)
	if e.svc.SubmissionOpen("hw1", "alice", t0) {
		t.Fatal("a deleted assignment's folder is still open")
	}
	if got := e.read("Submissions/hw1/alice/a.py"); got != "a\n" {
		t.Fatalf("files should stay on disk: %q", got)
	}
	acts := e.auditActions("course.")
	if acts["course.assignment.delete"] != 1 || acts["course.test.delete"] != 1 || acts["course.assignment.create"] != 1 || acts["course.test.create"] != 1 {
		t.Fatalf("audit: %v", acts)
	}
}

func TestEditsAndRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	prof, alice := e.as("prof"), e.as("alice")
	start, end := t0.Add(-time.Hour), t0.Add(time.Hour)
	prof.do("POST", "/api/course/tests", map[string]any{"slug": "draft", "title": "Draft",
		"starts_at": ts(start), "ends_at": ts(end)}).must(t, 201)
	if r := alice.do("GET", "/api/course/tests", nil).must(t, 200); len(r.list("tests")) != 0 {
		t.Fatalf("a draft test is listed for students: %s", r.raw)
	}
	alice.do("GET", "/api/course/tests/draft", nil).must(t, 404)
	alice.do("POST", "/api/course/tests/draft/start", nil).must(t, 404)
	if e.svc.TestOpen("draft", "alice", t0) {
		t.Fatal("a draft test is open")
	}

	// Publishing and moving the end through the API take effect at once.
	body := map[string]any{"title": "Final", "publish_at": ts(start), "starts_at": ts(start), "ends_at": ts(end),
		"restrict_repl": true}
	r := prof.do("PUT", "/api/course/tests/draft", body).must(t, 200)
	if r.get("test", "title") != "Final" || r.get("test", "restrict_repl") != true {
		t.Fatalf("update: %s", r.raw)
	}
	if !e.svc.TestOpen("draft", "alice", t0) {
		t.Fatal("published test in its window is not open")
	}
	if slug, ws, repl := e.svc.ExamRestriction("alice", t0); slug != "draft" || ws || !repl {
		t.Fatalf("ExamRestriction: %q %v %v", slug, ws, repl)
	}
	body["ends_at"] = ts(t0)
	prof.do("PUT", "/api/course/tests/draft", body).must(t, 200)
	if e.svc.TestOpen("draft", "alice", t0) {
		t.Fatal("the earlier end did not take effect")
	}

	// A change made elsewhere (another server) shows after a reload.
	pub := t0
	if _, err := e.db.CreateAssignment(ctx, store.Assignment{Slug: "elsewhere", Title: "E", PublishAt: &pub,
		DueAt: t0.Add(time.Hour), LatePolicy: "none", CreatedBy: "prof"}); err != nil {
		t.Fatal(err)
	}
	if e.svc.AssignmentPublished("elsewhere", t0) {
		t.Fatal("answered from the database, not the cache")
	}
	if err := e.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if !e.svc.AssignmentPublished("elsewhere", t0) {
		t.Fatal("a tick did not refresh the cache")
	}
	acts := e.auditActions("course.test")
	if acts["course.test.update"] != 2 || acts["course.test.publish"] != 1 {
		t.Fatalf("audit: %v", acts)
	}
}

// TestLiveRestriction: inside a restricted test the live classroom is off
// for a student unless the test allows it (allow_live, set through the
// item API); outside it, or in a test without restrictions, it is on.
func TestLiveRestriction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start, end := t0.Add(time.Hour), t0.Add(3*time.Hour)
	e.test("final", start, end, 0, true)
	e.test("quiz", start, end, 0, false)
	inside := start.Add(time.Minute)
	if got := e.svc.LiveRestriction("alice", t0); got != "" {
		t.Errorf("before the test: %q", got)
	}
	if got := e.svc.LiveRestriction("alice", inside); got != "final" {
		t.Errorf("inside a restricted test: %q, want final", got)
	}
	body := map[string]any{"title": "Test final", "publish_at": ts(t0.Add(-time.Hour)), "starts_at": ts(start), "ends_at": ts(end),
		"restrict_workspace": true, "restrict_repl": true, "allow_live": true}
	r := e.as("prof").do("PUT", "/api/course/tests/final", body).must(t, 200)
	if r.get("test", "allow_live") != true {
		t.Fatalf("allow_live not kept: %s", r.raw)
	}
	if r := e.as("alice").do("GET", "/api/course/tests/final", nil).must(t, 200); r.get("test", "allow_live") != true {
		t.Errorf("a student does not see allow_live: %s", r.raw)
	}
	if got := e.svc.LiveRestriction("alice", inside); got != "" {
		t.Errorf("inside a test that allows the live classroom: %q", got)
	}
	e.as("alice").do("PUT", "/api/course/tests/final", body).must(t, 403)
}

// TestTeachingAssistantGrades: a teaching assistant sees the roster and
// submissions and grades, but changes no course item.
func TestTeachingAssistantGrades(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.assignment("hw1", t0.Add(-time.Hour), t0.Add(24*time.Hour), nil)
	tina := e.as("tina")
	tina.do("GET", "/api/course/items/hw1/submissions", nil).must(t, 200)
	tina.do("GET", "/api/course/items/hw1/submissions/alice", nil).must(t, 200)
	r := tina.do("PUT", "/api/course/items/hw1/grades/alice", map[string]any{"score": 7, "max_score": 10, "feedback_md": "ok"}).must(t, 200)
	if r.get("grade", "graded_by") != "tina" {
		t.Errorf("graded by %v", r.get("grade", "graded_by"))
	}
	tina.do("GET", "/api/course/items/hw1/grades.csv", nil).must(t, 200)
	tina.do("POST", "/api/course/assignments", map[string]any{"slug": "hw9", "title": "x", "due_at": ts(t0.Add(time.Hour))}).must(t, 403)
	tina.do("DELETE", "/api/course/assignments/hw1", nil).must(t, 403)
	e.as("alice").do("GET", "/api/course/items/hw1/submissions", nil).must(t, 403)
}
