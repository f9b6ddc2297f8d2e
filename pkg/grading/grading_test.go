package grading

import (
	"encoding/csv"
	"strconv"
	"strings"
	"testing"

	"github.com/pythonide/pyide/pkg/store"
)

const solution = `def add(a, b):
    return a + b

def mul(a, b):
    return a * b
`

const wrongSolution = `def add(a, b):
    return a - b

def mul(a, b):
    return a * b
`

const mainPy = `n = int(input())
print(n * 2)
`

const testFile = `import pytest
from solution import add, mul

def test_add():
    assert add(2, 3) == 5

@pytest.mark.points(2)
def test_mul():
    assert mul(2, 3) == 6
`

// The hidden test file carries a marker a hostile program looks for.
const hiddenFile = `# SECRET-HIDDEN-MARKER
from solution import add

def test_add_negative():
    assert add(-2, -3) == -5
`

// setupItem makes hw1 with an I/O case, a visible test file and a hidden
// one (and a hidden I/O case).
func setupItem(e *env) {
	e.t.Helper()
	e.assignment("hw1")
	e.addTest("hw1", map[string]any{"kind": "io", "name": "doubles 21", "stdin": "21\n", "expected": "42\n", "points": 1})
	e.addTest("hw1", map[string]any{"kind": "io", "name": "doubles secret", "stdin": "1000\n", "expected": "2000\n",
		"points": 1, "hidden": true})
	e.addTest("hw1", map[string]any{"kind": "py", "name": "test_visible.py", "source": testFile, "points": 1})
	e.addTest("hw1", map[string]any{"kind": "py", "name": "test_hidden.py", "source": hiddenFile, "points": 1, "hidden": true})
}

// TestTestsAreStaffOnly: the tests of an item, their CRUD and their
// checks; a student reaches none of it, and a check of theirs names no
// hidden test.
func TestTestsAreStaffOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	setupItem(e)
	r := e.must(e.do("prof", "GET", "/api/course/items/hw1/grading/tests", nil), 200)
	tests := decode[[]Test](t, r, "tests")
	if len(tests) != 4 || tests[0].Name != "doubles 21" || !tests[3].Hidden || tests[3].Source != hiddenFile {
		t.Fatalf("tests: %+v", tests)
	}
	for _, p := range []string{"/api/course/items/hw1/grading/tests", "/api/course/items/hw1/grading/results",
		"/api/course/items/hw1/grading/results.csv", "/api/course/items/hw1/grading/rubric",
		"/api/course/items/hw1/grading/regrade", "/api/course/items/hw1/grading/similarity"} {
		if r := e.do("alice", "GET", p, nil); r.Status != 403 || strings.Contains(r.Raw, "SECRET") {
			t.Errorf("GET %s as a student: %d %s", p, r.Status, r.Raw)
		}
	}
	if r := e.do("alice", "POST", "/api/course/items/hw1/grading/tests", map[string]any{"kind": "io", "name": "x"}); r.Status != 403 {
		t.Errorf("a student made a test: %d", r.Status)
	}
	// Bad input says what is wrong; a name is unique per item.
	for _, bad := range []map[string]any{
		{"kind": "sh", "name": "x"},
		{"kind": "py", "name": "tests.txt", "source": "x"},
		{"kind": "py", "name": "t.py", "source": "  "},
		{"kind": "io", "name": "", "expected": "1"},
		{"kind": "io", "name": "n", "points": -1},
		{"kind": "io", "name": "n", "cpu_seconds": 600},
		{"kind": "io", "name": "n", "main_file": "../x.py"},
		{"kind": "io", "name": "n", "unknown": 1},
	} {
		if r := e.do("prof", "POST", "/api/course/items/hw1/grading/tests", bad); r.Status != 400 {
			t.Errorf("%v: %d %s", bad, r.Status, r.Raw)
		}
	}
	if r := e.do("prof", "POST", "/api/course/items/hw1/grading/tests", map[string]any{"kind": "io", "name": "doubles 21"}); r.Status != 409 {
		t.Errorf("a second test of the same name: %d", r.Status)
	}
	// Update keeps the kind; delete.
	id := tests[0].ID
	e.must(e.do("prof", "PUT", "/api/course/items/hw1/grading/tests/"+itoa(id),
		map[string]any{"name": "doubles 21", "stdin": "21\n", "expected": "42\n", "points": 3}), 200)
	if r := e.do("prof", "PUT", "/api/course/items/hw1/grading/tests/"+itoa(id), map[string]any{"kind": "py", "name": "a.py", "source": "x"}); r.Status != 400 {
		t.Errorf("kind changed: %d", r.Status)
	}
	e.must(e.do("prof", "DELETE", "/api/course/items/hw1/grading/tests/"+itoa(id), nil), 204)
	e.must(e.do("prof", "DELETE", "/api/course/items/hw1/grading/tests/"+itoa(id), nil), 404)
	// Without Docker a check says so, in words.
	e.write("alice", map[string]string{"Local/alice/hw1/solution.py": solution})
	if r := e.do("alice", "POST", "/api/course/items/hw1/check", map[string]any{"files": []string{"Local/alice/hw1"}}); r.Status != 503 {
		t.Errorf("check without Docker: %d %s", r.Status, r.Raw)
	}
	// A student checks only their own files; a draft item is unknown.
	if r := e.do("alice", "POST", "/api/course/items/hw1/check", map[string]any{"files": []string{"Local/bob"}}); r.Status != 400 {
		t.Errorf("check of another's files: %d %s", r.Status, r.Raw)
	}
	if r := e.do("alice", "POST", "/api/course/items/nope/check", map[string]any{"files": []string{"Local/alice/hw1"}}); r.Status != 404 {
		t.Errorf("check of an unknown item: %d", r.Status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestCheckAndGrade: a student checks (visible tests only, expected vs
// actual), submits; the submission is graded with every test; nothing
// shows before release; the professor overrides, adds rubric lines and
// feedback, releases; the student sees the released result without the
// hidden tests' content; the CSV has a column per test.
func TestCheckAndGrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	setupItem(e)
	e.write("alice", map[string]string{"Local/alice/hw1/solution.py": wrongSolution, "Local/alice/hw1/main.py": mainPy})

	r := e.must(e.do("alice", "POST", "/api/course/items/hw1/check", map[string]any{"files": []string{"Local/alice/hw1"}}), 200)
	ch := decode[Check](t, r, "check")
	got := byName(ch.Tests)
	if len(ch.Tests) != 3 || ch.Hidden != 2 || strings.Contains(r.Raw, "SECRET") || strings.Contains(r.Raw, "secret") {
		t.Fatalf("a student's check: %s", r.Raw)
	}
	if io := got["doubles 21"]; !io.Passed || io.Actual != "42\n" || io.Expected != "42\n" {
		t.Errorf("I/O case: %+v", io)
	}
	if add := got["test_visible.py::test_add"]; add.Passed || !strings.Contains(add.Reason, "assert -1 == 5") {
		t.Errorf("a failing test: %+v", add)
	}
	if m := got["test_visible.py::test_mul"]; !m.Passed || m.Points != 2 {
		t.Errorf("a passing test with points: %+v", m)
	}
	if ch.Score != 3 || ch.MaxScore != 4 {
		t.Errorf("check score %v / %v", ch.Score, ch.MaxScore)
	}

	// Staff's check runs the hidden tests too.
	r = e.must(e.do("prof", "POST", "/api/course/items/hw1/check", map[string]any{"files": []string{"Local/alice/hw1"}}), 200)
	if ch := decode[Check](t, r, "check"); len(ch.Tests) != 5 {
		t.Errorf("staff's check: %d tests", len(ch.Tests))
	}

	// Submit the right one: graded with every test.
	e.write("alice", map[string]string{"Local/alice/hw1/solution.py": solution})
	e.must(e.do("alice", "POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/alice/hw1"}}), 201)
	res := e.waitRun("hw1", "alice", 1)
	if res.Run.Score != 6 || res.Run.MaxScore != 6 || len(res.Run.Tests) != 5 || res.Run.Cause != "submit" {
		t.Fatalf("the grading of a submission: %+v", res.Run)
	}
	if *res.Score != 6 || *res.MaxScore != 6 || res.Released {
		t.Errorf("score %v/%v released %v", *res.Score, *res.MaxScore, res.Released)
	}

	// Before release the student sees nothing of it.
	r = e.must(e.do("alice", "GET", "/api/course/items/hw1/grading/results/alice", nil), 200)
	if mine := decode[Result](t, r, "result"); mine.Released || mine.Score != nil || mine.Run != nil {
		t.Fatalf("before release: %s", r.Raw)
	}
	if r := e.do("bob", "GET", "/api/course/items/hw1/grading/results/alice", nil); r.Status != 404 {
		t.Errorf("another student's result: %d", r.Status)
	}

	// A teaching assistant grades: she reads the results before release and
	// marks rubric lines, but writes no test, rubric line or release.
	r = e.must(e.do("tina", "GET", "/api/course/items/hw1/grading/results/alice", nil), 200)
	if ta := decode[Result](t, r, "result"); ta.Run == nil || ta.Score == nil || *ta.Score != 6 || ta.Proposed == nil {
		t.Errorf("a teaching assistant's view before release: %s", r.Raw)
	}
	e.must(e.do("tina", "GET", "/api/course/items/hw1/grading/results", nil), 200)
	for _, w := range []struct{ method, path string }{
		{"POST", "/api/course/items/hw1/grading/rubric"},
		{"PUT", "/api/course/items/hw1/grading/release"},
		{"POST", "/api/course/items/hw1/grading/regrade"},
		{"GET", "/api/course/items/hw1/grading/tests"},
	} {
		if r := e.do("tina", w.method, w.path, map[string]any{"points": -1, "comment": "x", "released": true}); r.Status != 403 {
			t.Errorf("a teaching assistant: %s %s = %d, want 403", w.method, w.path, r.Status)
		}
	}

	// Override, rubric and feedback; then release.
	line := e.must(e.do("prof", "POST", "/api/course/items/hw1/grading/rubric", map[string]any{"points": -1, "comment": "no docstrings"}), 201)
	lineID := int64(line.Body["line"].(map[string]any)["id"].(float64))
	r = e.must(e.do("tina", "PUT", "/api/course/items/hw1/grading/marks/alice", map[string]any{"ids": []int64{lineID}}), 200)
	if res := decode[Result](t, r, "result"); *res.Score != 5 || *res.Proposed != 5 {
		t.Errorf("with a rubric line: %+v", res)
	}
	e.must(e.do("prof", "PUT", "/api/course/items/hw1/grades/alice", map[string]any{"score": 5.5, "max_score": 6,
		"feedback_md": "Good work, =but document it"}), 200)
	e.must(e.do("prof", "PUT", "/api/course/items/hw1/grading/release", map[string]any{"released": true}), 200)

	r = e.must(e.do("alice", "GET", "/api/course/items/hw1/grading/results/alice", nil), 200)
	mine := decode[Result](t, r, "result")
	if !mine.Released || *mine.Score != 5.5 || mine.FeedbackMD == "" || len(mine.Rubric) != 1 || mine.Run == nil {
		t.Fatalf("after release: %s", r.Raw)
	}
	if strings.Contains(r.Raw, "SECRET") || strings.Contains(r.Raw, "1000") || strings.Contains(r.Raw, "test_add_negative") ||
		strings.Contains(r.Raw, "doubles secret") || mine.Proposed != nil || mine.Runs != nil {
		t.Errorf("a hidden test's content reached the student: %s", r.Raw)
	}
	r = e.must(e.do("alice", "GET", "/api/course/results", nil), 200)
	if list := decode[[]Result](t, r, "results"); len(list) != 1 || *list[0].Score != 5.5 {
		t.Errorf("my results: %s", r.Raw)
	}
	r = e.must(e.do("alice", "GET", "/api/course/grades", nil), 200)
	if !strings.Contains(r.Raw, `"score":5.5`) {
		t.Errorf("the released grade is missing from /grades: %s", r.Raw)
	}

	// The CSV: a column per test, the feedback, no formula.
	r = e.must(e.do("prof", "GET", "/api/course/items/hw1/grading/results.csv", nil), 200)
	rows, err := csv.NewReader(strings.NewReader(r.Raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := strings.Join(rows[0], "|")
	for _, col := range []string{"test: doubles 21", "test: test_hidden.py::test_add_negative", "feedback", "override"} {
		if !strings.Contains(head, col) {
			t.Errorf("CSV header lacks %q: %s", col, head)
		}
	}
	var alice []string
	for _, row := range rows {
		if row[0] == "alice" {
			alice = row
		}
	}
	if alice == nil || alice[5] != "5.5" || alice[len(alice)-1] != "Good work, =but document it" {
		t.Errorf("alice's row: %v", alice)
	}
}

// TestRegradeAll: every latest submission is graded again, with progress;
// the earlier runs stay as they were.
func TestRegradeAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	setupItem(e)
	for _, u := range []string{"alice", "bob"} {
		e.write(u, map[string]string{"Local/" + u + "/hw1/solution.py": solution, "Local/" + u + "/hw1/main.py": mainPy})
		e.must(e.do(u, "POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/" + u + "/hw1"}}), 201)
	}
	before := e.waitRun("hw1", "bob", 1)
	e.waitRun("hw1", "alice", 1)
	// The professor makes a test harder: the regrade uses it.
	e.addTest("hw1", map[string]any{"kind": "io", "name": "no input", "stdin": "", "expected": "0\n", "points": 1})
	r := e.must(e.do("prof", "POST", "/api/course/items/hw1/grading/regrade", nil), 202)
	if rg := decode[Regrade](t, r, "regrade"); rg.Total != 2 {
		t.Fatalf("regrade: %s", r.Raw)
	}
	after := e.waitRun("hw1", "bob", 2)
	if after.Run.Cause != "regrade" || after.Run.MaxScore != 7 || after.Run.Score != 6 {
		t.Errorf("the regrade's run: %+v", after.Run)
	}
	if after.Runs[1].ID != before.Run.ID || after.Runs[1].Score != before.Run.Score || after.Runs[1].MaxScore != 6 {
		t.Errorf("the earlier run changed: %+v vs %+v", after.Runs[1], before.Run)
	}
	e.waitRun("hw1", "alice", 2)
	r = e.must(e.do("prof", "GET", "/api/course/items/hw1/grading/regrade", nil), 200)
	if rg := decode[Regrade](t, r, "regrade"); rg.Done != 2 || rg.FinishedAt == nil || rg.Failed != 0 {
		t.Errorf("progress: %s", r.Raw)
	}
	var n int
	if err := e.db.WithTx(t.Context(), func(tx *store.DB) error {
		runs, err := tx.RunsOf(t.Context(), "hw1", "alice")
		n = len(runs)
		return err
	}); err != nil || n != 2 {
		t.Errorf("alice's runs: %d %v", n, err)
	}
}
