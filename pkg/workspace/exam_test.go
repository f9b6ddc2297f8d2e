package workspace

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// examCourse is StaticCourse plus one restricted test in progress for alice.
type examCourse struct{ StaticCourse }

func (examCourse) ExamRestriction(username string, _ time.Time) (string, bool, bool) {
	if username == "alice" {
		return "midterm", true, true
	}
	return "", false, false
}

func TestExamRestriction(t *testing.T) {
	st := examCourse{StaticCourse{OpenTests: map[string]bool{"midterm": true}}}
	now := time.Now()
	tests := []struct {
		name string
		path string
		want Level
	}{
		{"own workspace hidden", "Local/alice/notes.py", None},
		{"lecture notes hidden", "Lecture Notes/week1.pdf", None},
		{"assignments hidden", "Assignments/hw1/starter.py", None},
		{"the test's material", "Tests/midterm/q1.py", Read},
		{"another test", "Tests/final/q1.py", None},
		{"own work for the test", "Submissions/midterm/alice/answer.py", Write},
		{"the test's submissions folder lists", "Submissions/midterm", Read},
		{"another item's submission", "Submissions/hw1/alice/main.py", None},
		{"roots still list", "Tests", Read},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Access(alice, tc.path, st, now); got != tc.want {
				t.Fatalf("alice during the restricted midterm, %s: %v, want %v", tc.path, got, tc.want)
			}
		})
	}
	// bob is not in a restricted test: his workspace is his.
	if got := Access(bob, "Local/bob/x.py", st, now); got != Write {
		t.Fatalf("bob outside the test: %v", got)
	}
	// Staff are never restricted.
	if got := Access(prof, "Local/alice/notes.py", st, now); got != Write {
		t.Fatalf("professor during alice's test: %v", got)
	}
}

func TestExamMounts(t *testing.T) {
	t.Parallel()
	st := examCourse{StaticCourse{OpenTests: map[string]bool{"midterm": true}}}
	ev := newEnv(t, func(o *Options) { o.Course = st })
	ev.disk("Submissions/midterm/alice/answer.py", "print(42)\n")
	ev.disk("Local/alice/notes.py", "print('notes')\n")
	ms, err := ev.ws.Mounts(alice)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range ms {
		rel, _ := filepath.Rel(ev.ws.absData, m.Source)
		got[m.Target] = fmt.Sprintf("%s ro=%v", rel, m.ReadOnly)
	}
	want := map[string]string{
		"/home/student":         "Submissions/midterm/alice ro=false",
		"/course/Tests/midterm": "Tests/midterm ro=true",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alice's mounts during a restricted test:\n%v\nwant\n%v", got, want)
	}
	tg, err := ev.ws.RunTarget(alice, "Submissions/midterm/alice/answer.py")
	if err != nil || tg.File != "/home/student/answer.py" {
		t.Fatalf("container path of the test work: %q %v", tg.File, err)
	}
	if _, err := ev.ws.RunTarget(alice, "Local/alice/notes.py"); err == nil {
		t.Fatal("the workspace must be out of reach during a restricted test")
	}
	if _, err := ev.ws.RunTarget(alice, ""); err == nil || !strings.Contains(err.Error(), "switched off during this test") {
		t.Fatalf("the empty REPL during a test that switches it off: %v", err)
	}
	if _, err := ev.ws.RunTarget(bob, ""); err != nil {
		t.Fatalf("bob is not in the test: %v", err)
	}
}
