package course

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the code answers now")

// TestItemsContract pins the item endpoints of both kinds, byte for byte
// in meaning: every status, every JSON body (keys and values), what
// OnChange was told and what was audited, along one scenario. The front
// end, the e2e suite and outside tools rely on these answers (see the
// package doc); a change that alters one shows up as a diff of
// testdata/items_api.golden. Rewrite it with -update only when the change
// is meant.
func TestItemsContract(t *testing.T) {
	e := newEnv(t)
	var out strings.Builder
	step := func(who, method, path string, body any) {
		t.Helper()
		r := e.as(who).do(method, path, body)
		fmt.Fprintf(&out, "### %s %s %s\n%d\n%s\n", who, method, path, r.status, canonical(t, r.raw))
		if ch := e.changes.take(); len(ch) > 0 {
			fmt.Fprintf(&out, "changed: %q\n", ch)
		}
	}
	at := func(d time.Duration) string { return ts(t0.Add(d)) }

	// Assignments: create, the rules each checks, a draft.
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "hw1", "title": "Homework 1",
		"description_md": "Do **it**.", "publish_at": at(-time.Hour), "due_at": at(24 * time.Hour),
		"late_policy": "cutoff", "late_cutoff_at": at(48 * time.Hour)})
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "draft1", "title": "Draft", "due_at": at(72 * time.Hour)})
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "hw1", "title": "Again", "due_at": at(time.Hour)})
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "Bad Slug", "title": "x", "due_at": at(time.Hour)})
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "x1", "title": "", "due_at": at(time.Hour)})
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "x1", "title": "x"})
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "x1", "title": "x", "due_at": at(time.Hour), "late_policy": "maybe"})
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "x1", "title": "x", "due_at": at(time.Hour), "late_policy": "cutoff"})
	step("prof", "POST", "/api/course/assignments", map[string]any{"slug": "x1", "title": "x", "due_at": at(time.Hour),
		"late_cutoff_at": at(2 * time.Hour)})
	step("prof", "POST", "/api/course/assignments", `{"slug": "x1", "title": "x", "due_at": "tomorrow"}`)
	step("prof", "POST", "/api/course/assignments", `{"slug": "x1", "title": 5, "due_at": "2026-09-02T00:00:00Z"}`)
	step("prof", "POST", "/api/course/assignments", `{"slug": "x1", "title": "x", "publish_at": 5, "due_at": "2026-09-02T00:00:00Z"}`)
	step("prof", "POST", "/api/course/assignments", `{"slug": "x1", "title": "x", "due_at": "2026-09-02T00:00:00Z", "points": 3}`)
	step("alice", "POST", "/api/course/assignments", map[string]any{"slug": "x2", "title": "x", "due_at": at(time.Hour)})

	// Tests: create, the rules each checks, a draft; slugs are shared
	// with assignments.
	step("prof", "POST", "/api/course/tests", map[string]any{"slug": "quiz", "title": "Quiz", "description_md": "Quick.",
		"publish_at": at(-time.Hour), "starts_at": at(time.Hour), "ends_at": at(3 * time.Hour), "duration_minutes": 30,
		"restrict_workspace": true, "restrict_repl": true})
	step("prof", "POST", "/api/course/tests", map[string]any{"slug": "exam2", "title": "Exam 2",
		"starts_at": at(0), "ends_at": at(2 * time.Hour)})
	step("prof", "POST", "/api/course/tests", map[string]any{"slug": "hw1", "title": "Clash", "starts_at": at(0), "ends_at": at(time.Hour)})
	step("prof", "POST", "/api/course/tests", map[string]any{"slug": "t1", "title": "x", "starts_at": at(time.Hour), "ends_at": at(time.Hour)})
	step("prof", "POST", "/api/course/tests", map[string]any{"slug": "t1", "title": "x", "starts_at": at(0), "ends_at": at(time.Hour),
		"duration_minutes": 0})
	step("prof", "POST", "/api/course/tests", map[string]any{"slug": "t1", "title": "x"})
	step("prof", "POST", "/api/course/tests", `{"slug": "t1", "title": "x", "duration_minutes": "ten"}`)
	step("prof", "POST", "/api/course/tests", `{"slug": 1, "title": "x"}`)
	step("prof", "POST", "/api/course/tests", `{"slug": "t1", "title": "x", "due_at": "2026-09-02T00:00:00Z"}`)
	step("alice", "POST", "/api/course/tests", map[string]any{"slug": "t2", "title": "x", "starts_at": at(0), "ends_at": at(time.Hour)})

	// Lists and items, as staff and as a student; the kinds do not mix.
	for _, who := range []string{"prof", "alice"} {
		step(who, "GET", "/api/course/assignments", nil)
		step(who, "GET", "/api/course/tests", nil)
		step(who, "GET", "/api/course/assignments/hw1", nil)
		step(who, "GET", "/api/course/assignments/draft1", nil)
		step(who, "GET", "/api/course/assignments/quiz", nil)
		step(who, "GET", "/api/course/tests/quiz", nil)
		step(who, "GET", "/api/course/tests/exam2", nil)
		step(who, "GET", "/api/course/tests/hw1", nil)
		step(who, "GET", "/api/course/tests/nope", nil)
	}

	// Updates.
	step("prof", "PUT", "/api/course/assignments/hw1", map[string]any{"slug": "other", "title": "x", "due_at": at(time.Hour)})
	step("prof", "PUT", "/api/course/assignments/hw1", map[string]any{"title": "Homework One", "description_md": "Do it.",
		"publish_at": at(-time.Hour), "due_at": at(26 * time.Hour), "late_policy": "cutoff", "late_cutoff_at": at(50 * time.Hour)})
	step("prof", "PUT", "/api/course/assignments/draft1", map[string]any{"title": "Draft", "due_at": at(72 * time.Hour),
		"publish_at": at(0)})
	step("prof", "PUT", "/api/course/assignments/nope", map[string]any{"title": "x", "due_at": at(time.Hour)})
	step("prof", "PUT", "/api/course/assignments/quiz", map[string]any{"title": "x", "due_at": at(time.Hour)})
	step("prof", "PUT", "/api/course/assignments/hw1", map[string]any{"title": "x"})
	step("prof", "PUT", "/api/course/tests/quiz", map[string]any{"title": "Quiz 1", "description_md": "Quick.",
		"publish_at": at(-time.Hour), "starts_at": at(time.Hour), "ends_at": at(4 * time.Hour), "duration_minutes": 30,
		"restrict_workspace": true, "restrict_repl": false})
	step("prof", "PUT", "/api/course/tests/exam2", map[string]any{"title": "Exam 2", "publish_at": at(-time.Minute),
		"starts_at": at(0), "ends_at": at(2 * time.Hour)})
	step("prof", "PUT", "/api/course/tests/quiz", map[string]any{"slug": "other", "title": "x", "starts_at": at(0), "ends_at": at(time.Hour)})
	step("prof", "PUT", "/api/course/tests/nope", map[string]any{"title": "x", "starts_at": at(0), "ends_at": at(time.Hour)})
	step("prof", "PUT", "/api/course/tests/hw1", map[string]any{"title": "x", "starts_at": at(0), "ends_at": at(time.Hour)})
	step("alice", "PUT", "/api/course/tests/quiz", map[string]any{"title": "x", "starts_at": at(0), "ends_at": at(time.Hour)})

	// A student's view of a test as it runs, and a submission of each kind.
	step("alice", "POST", "/api/course/tests/quiz/start", nil)
	e.clock.Set(t0.Add(90 * time.Minute))
	step("alice", "GET", "/api/course/tests", nil)
	step("alice", "POST", "/api/course/tests/quiz/start", nil)
	step("alice", "POST", "/api/course/tests/quiz/start", nil)
	step("bob", "GET", "/api/course/tests/quiz", nil)
	step("prof", "GET", "/api/course/tests/quiz", nil)
	e.disk("Submissions/quiz/alice/q.py", "answer\n")
	step("alice", "POST", "/api/course/tests/quiz/submit", nil)
	step("bob", "POST", "/api/course/tests/quiz/submit", nil)
	step("alice", "POST", "/api/course/tests/exam2/start", nil)
	step("alice", "POST", "/api/course/assignments/quiz/submit", map[string]any{"files": []string{"Local/alice/x.py"}})
	e.clock.Set(t0.Add(3 * time.Hour))
	e.disk("Local/alice/hw1/a.py", "a\n")
	step("alice", "POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/hw1/a.py"}})
	step("alice", "GET", "/api/course/assignments/hw1", nil)

	// Deletes: of the right kind only, with submissions only by force.
	step("prof", "DELETE", "/api/course/tests/quiz", nil)
	step("prof", "DELETE", "/api/course/assignments/quiz", nil)
	step("prof", "DELETE", "/api/course/tests/quiz?force=true", nil)
	step("prof", "DELETE", "/api/course/assignments/draft1", nil)
	step("prof", "DELETE", "/api/course/tests/exam2", nil)
	step("prof", "DELETE", "/api/course/tests/nope", nil)
	step("alice", "DELETE", "/api/course/assignments/hw1", nil)
	step("prof", "GET", "/api/course/assignments", nil)
	step("prof", "GET", "/api/course/tests", nil)

	entries, err := e.db.AuditLog(context.Background(), "course.", 1000)
	if err != nil {
		t.Fatal(err)
	}
	out.WriteString("### audit\n")
	for i := len(entries) - 1; i >= 0; i-- {
		a := entries[i]
		d, _ := json.Marshal(a.Details)
		fmt.Fprintf(&out, "%s %s %s %s\n", a.Actor, a.Action, a.Target, d)
	}

	golden := filepath.Join("testdata", "items_api.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != string(want) {
		t.Errorf("the item API answers differently from %s (go test -run TestItemsContract -update rewrites it):\n%s",
			golden, lineDiff(string(want), got))
	}
}

// canonical is a JSON body with sorted keys and the times the database
// sets (updated_at) blanked; anything else is returned as it is.
func canonical(t *testing.T, raw string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return raw
	}
	var blank func(v any)
	blank = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				if k == "updated_at" {
					x[k] = "<db time>"
					continue
				}
				blank(y)
			}
		case []any:
			for _, y := range x {
				blank(y)
			}
		}
	}
	blank(v)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lineDiff names the first lines that differ, with a little context.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			from := max(0, i-3)
			return fmt.Sprintf("line %d:\n  context: %q\n  want:    %q\n  got:     %q", i+1, g[from:min(i, len(g))], wl, gl)
		}
	}
	return "(no difference)"
}
