package workspace

import (
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
)

var (
	alice = auth.User{ID: 1, Username: "alice", Role: auth.RoleStudent}
	bob   = auth.User{ID: 2, Username: "bob", Role: auth.RoleStudent}
	prof  = auth.User{ID: 3, Username: "prof", Role: auth.RoleProfessor}
	admin = auth.User{ID: 4, Username: "root", Role: auth.RoleAdmin}
	tina  = auth.User{ID: 5, Username: "tina", Role: auth.RoleTA}
)

// course: hw1 published, hw2 not; midterm open, final closed; hw1
// submissions open, hw0 locked.
var course = StaticCourse{
	Unpublished: map[string]bool{"hw2": true},
	OpenTests:   map[string]bool{"midterm": true},
	Locked:      map[string]bool{"hw0": true},
}

func TestAccessTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		path    string
		student Level // for alice
		staff   Level // for prof and admin
	}{
		{"top", "", Read, Read},
		{"local root", "Local", Read, Write},
		{"own local", "Local/alice", Write, Write},
		{"own local file", "Local/alice/hello.py", Write, Write},
		{"own local deep", "Local/alice/a/b/c d.py", Write, Write},
		{"other local", "Local/bob", None, Write},
		{"other local file", "Local/bob/hello.py", None, Write},
		{"lecture notes", "Lecture Notes", Read, Write},
		{"lecture note", "Lecture Notes/week1.pdf", Read, Write},
		{"assignments root", "Assignments", Read, Write},
		{"published assignment", "Assignments/hw1", Read, Write},
		{"published assignment file", "Assignments/hw1/starter.py", Read, Write},
		{"unpublished assignment", "Assignments/hw2", None, Write},
		{"unpublished assignment file", "Assignments/hw2/solution.py", None, Write},
		{"tests root", "Tests", Read, Write},
		{"open test", "Tests/midterm/q1.py", Read, Write},
		{"closed test", "Tests/final/q1.py", None, Write},
		{"closed test folder", "Tests/final", None, Write},
		{"submissions root", "Submissions", Read, Write},
		{"submission item", "Submissions/hw1", Read, Write},
		{"own open submission", "Submissions/hw1/alice", Write, Write},
		{"own open submission file", "Submissions/hw1/alice/main.py", Write, Write},
		{"own locked submission", "Submissions/hw0/alice/main.py", Read, Write},
		{"other submission", "Submissions/hw1/bob/main.py", None, Write},
		{"other submission folder", "Submissions/hw1/bob", None, Write},
		{"other locked submission", "Submissions/hw0/bob", None, Write},
		// Edge cases: all rejected, so None for everyone.
		{"dotdot", "Local/alice/../bob", None, None},
		{"dotdot escape", "Local/alice/../../etc/passwd", None, None},
		{"dot", "Local/./alice", None, None},
		{"absolute", "/Local/alice", None, None},
		{"absolute etc", "/etc/passwd", None, None},
		{"backslash", `Local\alice`, None, None},
		{"backslash in name", `Local/alice/a\..\b`, None, None},
		{"nul", "Local/alice/a\x00b", None, None},
		{"newline", "Local/alice/a\nb", None, None},
		{"trailing slash", "Local/alice/", None, None},
		{"double slash", "Local//alice", None, None},
		{"lowercase root", "local/alice", None, None},
		{"uppercase root", "LOCAL/alice", None, None},
		{"unknown root", "Secrets", None, None},
		{"fullwidth user", "Local/ａlice", None, None},
		{"uppercase user", "Local/Alice", None, None},
		{"zero width user", "Local/alice\u200b", None, None},
		{"bidi override", "Local/alice/txt.\u202eyp", None, None},
		{"fullwidth submission user", "Submissions/hw1/ａlice", None, None},
		{"temp name", "Local/alice/.pyide-tmp-123", None, None},
		{"trailing space", "Local/alice/a ", None, None},
		{"leading space root", " Local", None, None},
		{"long path", "Local/alice/" + strings.Repeat("a/", 510) + "x", None, None},
		{"long segment", "Local/alice/" + strings.Repeat("a", 256), None, None},
		{"decomposed unicode", "Local/alice/" + norm.NFD.String("café.py"), None, None},
		{"invalid utf8", "Local/alice/\xff.py", None, None},
		// Accepted oddities.
		{"spaces inside", "Lecture Notes/week 1 notes.pdf", Read, Write},
		{"composed unicode", "Local/alice/café.py", Write, Write},
		{"dotfile", "Local/alice/.config", Write, Write},
		{"max segment", "Local/alice/" + strings.Repeat("a", 255), Write, Write},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Access(alice, tc.path, course, now); got != tc.student {
				t.Errorf("student: Access(%q) = %v, want %v", tc.path, got, tc.student)
			}
			for _, u := range []auth.User{prof, admin} {
				if got := Access(u, tc.path, course, now); got != tc.staff {
					t.Errorf("%s: Access(%q) = %v, want %v", u.Role, tc.path, got, tc.staff)
				}
			}
		})
	}
}

// TestAccessTA: a teaching assistant reads everything staff see (students'
// files, drafts, tests) and writes only their own Local folder; a path that
// does not parse is none for them too.
func TestAccessTA(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		path string
		want Level
	}{
		{"top", "", Read},
		{"local root", "Local", Read},
		{"own local", "Local/tina", Write},
		{"own local file", "Local/tina/notes.py", Write},
		{"student local", "Local/alice", Read},
		{"student local file", "Local/alice/hello.py", Read},
		{"lecture notes", "Lecture Notes/week1.pdf", Read},
		{"assignments root", "Assignments", Read},
		{"published assignment", "Assignments/hw1/starter.py", Read},
		{"draft assignment", "Assignments/hw2/solution.py", Read},
		{"closed test", "Tests/final/q1.py", Read},
		{"open test", "Tests/midterm/q1.py", Read},
		{"submissions root", "Submissions", Read},
		{"student submission", "Submissions/hw1/alice/main.py", Read},
		{"locked submission", "Submissions/hw0/bob/main.py", Read},
		{"own submission folder", "Submissions/hw1/tina", Read},
		{"dotdot", "Local/tina/../alice", None},
		{"backslash", `Local\tina`, None},
		{"unknown root", "Secrets", None},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Access(tina, tc.path, course, now); got != tc.want {
				t.Errorf("ta: Access(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
	// A restriction of a student's test never reaches a teaching assistant.
	exam := StaticCourse{Exams: map[string]Exam{"tina": {Test: "midterm", Workspace: true, REPL: true}}}
	if got := Access(tina, "Local/alice/hello.py", exam, now); got != Read {
		t.Errorf("ta under an exam entry: %v, want read", got)
	}
	if got := Access(auth.User{Username: "", Role: auth.RoleTA}, "Local/alice", course, now); got != None {
		t.Errorf("a teaching assistant without a name: %v, want none", got)
	}
}

func TestAccessOtherStudentMirror(t *testing.T) {
	t.Parallel()
	// The same table seen from bob: alice's places are closed to him.
	now := time.Now()
	for p, want := range map[string]Level{
		"Local/alice/hello.py":     None,
		"Local/bob/hello.py":       Write,
		"Submissions/hw1/alice/x":  None,
		"Submissions/hw1/bob/x":    Write,
		"Submissions/hw0/bob/main": Read,
	} {
		if got := Access(bob, p, course, now); got != want {
			t.Errorf("bob: Access(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestAccessFailsClosed(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, u := range []auth.User{
		{Username: "eve", Role: "guest"},
		{Username: "", Role: auth.RoleStudent},
		{},
	} {
		for _, p := range []string{"", "Local", "Local/eve", "Lecture Notes/x", "Submissions/hw1/eve"} {
			want := None
			if p == "" && u.Role == auth.RoleStudent {
				want = Read
			}
			if got := Access(u, p, course, now); got != want {
				t.Errorf("%+v: Access(%q) = %v, want %v", u, p, got, want)
			}
		}
	}
}

// windowCourse opens a test and locks a submission by time, to show the
// policy asks the course state with the time it was given.
type windowCourse struct{ open, close time.Time }

func (w windowCourse) AssignmentPublished(string, time.Time) bool { return true }
func (w windowCourse) TestOpen(_, _ string, now time.Time) bool {
	return !now.Before(w.open) && now.Before(w.close)
}
func (w windowCourse) SubmissionOpen(_, _ string, now time.Time) bool { return now.Before(w.close) }
func (w windowCourse) ItemPublished(string, time.Time) bool           { return true }
func (w windowCourse) ExamRestriction(string, time.Time) (string, bool, bool) {
	return "", false, false
}

func TestAccessFollowsTime(t *testing.T) {
	t.Parallel()
	open := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	st := windowCourse{open: open, close: open.Add(2 * time.Hour)}
	for _, tc := range []struct {
		at         time.Time
		test, subm Level
	}{
		{open.Add(-time.Minute), None, Write},
		{open, Read, Write},
		{open.Add(2*time.Hour - time.Second), Read, Write},
		{open.Add(2 * time.Hour), None, Read},
	} {
		if got := Access(alice, "Tests/exam/q.py", st, tc.at); got != tc.test {
			t.Errorf("test at %v: %v, want %v", tc.at, got, tc.test)
		}
		if got := Access(alice, "Submissions/exam/alice/q.py", st, tc.at); got != tc.subm {
			t.Errorf("submission at %v: %v, want %v", tc.at, got, tc.subm)
		}
	}
}

func TestPathShape(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path                 string
		managed, foldersOnly bool
		owner                string
	}{
		{"", true, true, ""},
		{"Local", true, true, ""},
		{"Local/alice", true, false, "alice"},
		{"Local/alice/x.py", false, false, "alice"},
		{"Lecture Notes", true, false, ""},
		{"Lecture Notes/week1", false, false, ""},
		{"Assignments", true, true, ""},
		{"Assignments/hw1", true, false, ""},
		{"Assignments/hw1/data", false, false, ""},
		{"Tests/midterm", true, false, ""},
		{"Submissions", true, true, ""},
		{"Submissions/hw1", true, true, ""},
		{"Submissions/hw1/alice", true, false, "alice"},
		{"Submissions/hw1/alice/a.py", false, false, "alice"},
	} {
		p := MustPath(tc.path)
		if p.Managed() != tc.managed || p.FoldersOnly() != tc.foldersOnly || p.Owner() != tc.owner {
			t.Errorf("%q: managed %v foldersOnly %v owner %q; want %v %v %q", tc.path,
				p.Managed(), p.FoldersOnly(), p.Owner(), tc.managed, tc.foldersOnly, tc.owner)
		}
		if p.String() != tc.path {
			t.Errorf("%q round-trips as %q", tc.path, p.String())
		}
	}
	if !MustPath("Local/alice/a/b").Within(MustPath("Local/alice")) || MustPath("Local/alicex").Within(MustPath("Local/alice")) {
		t.Error("Within is wrong")
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"hello.py": true, "week 1.pdf": true, "..": false, ".": false, "a/b": false,
		"": false, "a\x00": false, " a": false, "a\\b": false, ".pyide-tmp-x": false,
		// A half-written file of an atomic write is never addressable.
		fstree.TempName(): false,
	} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", name, err, ok)
		}
		if err := CheckName(name); err != nil && !errors.Is(err, ErrBadPath) {
			t.Errorf("CheckName(%q) error %v does not wrap ErrBadPath", name, err)
		}
	}
}

// FuzzParsePath asserts that any accepted path stays inside its root when
// joined to a data folder, has one spelling (idempotent) and is clean.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"", "Local/alice/a.py", "Local/../etc", "/etc/passwd", "Lecture Notes/w 1.pdf",
		"Submissions/x/alice/../../bob", `Local\alice`, "Local/ａlice", "Local/alice/./x", "Tests/t/\u202e",
		"Local/alice/" + norm.NFD.String("é")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		got := p.String()
		if got != s {
			t.Fatalf("accepted %q but it reads back as %q", s, got)
		}
		again, err := ParsePath(got)
		if err != nil || again.String() != got {
			t.Fatalf("not idempotent: %q -> %q (%v)", got, again.String(), err)
		}
		if got == "" {
			return
		}
		const data = "/data"
		joined := path.Join(data, got)
		if joined != data+"/"+got {
			t.Fatalf("%q is not clean: joins as %q", got, joined)
		}
		root := data + "/" + p.Seg(0)
		if joined != root && !strings.HasPrefix(joined, root+"/") {
			t.Fatalf("%q escapes its root %q", got, root)
		}
		if !isRoot(p.Seg(0)) || len(got) > MaxPathBytes || !norm.NFC.IsNormalString(got) || strings.ContainsAny(got, "\\\x00") {
			t.Fatalf("accepted a path it must reject: %q", got)
		}
		if u, ok := p.userSegment(); ok && !userRe.MatchString(u) {
			t.Fatalf("accepted a user folder that is no user name: %q", got)
		}
	})
}
