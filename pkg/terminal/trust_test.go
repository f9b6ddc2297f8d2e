package terminal_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/terminal"
	"github.com/pythonide/pyide/pkg/workspace"
)

// course is a CourseState the test changes while sandboxes run.
type course struct {
	cur atomic.Pointer[workspace.StaticCourse]
}

func newCourse() *course {
	c := &course{}
	c.cur.Store(&workspace.StaticCourse{})
	return c
}

func (c *course) set(s workspace.StaticCourse) { c.cur.Store(&s) }

func (c *course) AssignmentPublished(slug string, now time.Time) bool {
	return c.cur.Load().AssignmentPublished(slug, now)
}
func (c *course) ItemPublished(slug string, now time.Time) bool {
	return c.cur.Load().ItemPublished(slug, now)
}
func (c *course) TestOpen(slug, user string, now time.Time) bool {
	return c.cur.Load().TestOpen(slug, user, now)
}
func (c *course) SubmissionOpen(item, user string, now time.Time) bool {
	return c.cur.Load().SubmissionOpen(item, user, now)
}
func (c *course) ExamRestriction(user string, now time.Time) (string, bool, bool) {
	return c.cur.Load().ExamRestriction(user, now)
}

// TestRestrictionEndsRunningSandboxes: a REPL opened before a restricted
// test began does not keep the student's files: when the rules change the
// hub ends it (reason reaped, with words saying why), and her empty REPL
// too; a student outside the test keeps his.
func TestRestrictionEndsRunningSandboxes(t *testing.T) {
	t.Parallel()
	c := newCourse()
	e := newEnv(t, envOptions{docker: true, files: scripts, course: c, hub: terminal.Options{StudentREPL: true}})
	alice := e.dial(e.login("alice"), "t1")
	alice.run("Local/alice/hello.py")
	alice.started("Local/alice/hello.py")
	alice.waitOutput(">>> ", waitShort)
	repl := e.dial(e.login("alice"), "t2")
	repl.send(map[string]any{"type": "repl"})
	repl.started("")
	repl.waitOutput(">>> ", waitShort)
	bob := e.dial(e.login("bob"), "t1")
	bob.run("Local/bob/b.py")
	bob.started("Local/bob/b.py")
	bob.waitOutput(">>> ", waitShort)
	// Nothing changed: a recheck ends nothing.
	e.hub.Recheck("")
	alice.roundTrip("print(x + 1)", "42")

	c.set(workspace.StaticCourse{OpenTests: map[string]bool{"midterm": true},
		Exams: map[string]workspace.Exam{"alice": {Test: "midterm", Workspace: true, REPL: true}}})
	e.hub.Recheck("")
	for _, tab := range []*wsClient{alice, repl} {
		ev := tab.waitEvent("error", waitShort)
		if msg, _ := ev["message"].(string); !strings.Contains(msg, "the files it may use have changed") {
			t.Errorf("message = %q", msg)
		}
		if ev := tab.waitEvent("exited", waitShort); ev["reason"] != sandbox.ReasonReaped {
			t.Errorf("exited = %v, want reaped", ev)
		}
	}
	bob.roundTrip("print(secret.upper())", "BOB ONLY")
	// In the test, her file outside it is not hers to run, and no REPL.
	alice.run("Local/alice/hello.py")
	if ev := alice.waitEvent("error", waitShort); !strings.Contains(ev["message"].(string), "no such file") {
		t.Errorf("running her Local file during the test: %v", ev)
	}
	repl.send(map[string]any{"type": "repl"})
	if ev := repl.waitEvent("error", waitShort); !strings.Contains(ev["message"].(string), "switched off during this test") {
		t.Errorf("an empty REPL during the test: %v", ev)
	}
}

// TestStaffRunStudentCodeReadOnly: a professor runs a student's file; it
// runs in a grading sandbox where it can change nothing (not the student's
// folder, not course material) and sees no Tests and no other student.
func TestStaffRunStudentCodeReadOnly(t *testing.T) {
	t.Parallel()
	evil := `import os
bad = []
for p in ["/home/student/x", "/course/Lecture Notes/x", "/course/Assignments/x", "/tmp/../home/student/y"]:
    try:
        open(p, "w").write("pwned")
        bad.append(p)
    except OSError:
        pass
for p in ["/course/Tests", "/course/Submissions", "/submissions"]:
    if os.path.exists(p):
        bad.append("sees " + p)
print("HOME", sorted(os.listdir("/home/student")))
print("RESULT", "UNSAFE %s" % bad if bad else "SAFE")
`
	e := newEnv(t, envOptions{docker: true, files: map[string]string{
		"Local/alice/evil.py":         evil,
		"Local/bob/secret.py":         "bob's answers\n",
		"Tests/midterm/q1.py":         "the unpublished test\n",
		"Lecture Notes/week1.py":      "print('week 1')\n",
		"Assignments/hw1/starter.py":  "print('start')\n",
		"Submissions/hw1/alice/s.py":  evil,
		"Submissions/hw1/bob/main.py": "print('bob')\n",
	}})
	for i, path := range []string{"Local/alice/evil.py", "Submissions/hw1/alice/s.py"} {
		prof := e.dial(e.login("prof"), fmt.Sprintf("t%d", i))
		prof.run(path)
		prof.started(path)
		prof.waitOutput("RESULT", waitLong)
		prof.waitOutput("\n", waitShort)
		out := prof.Output()
		if !strings.Contains(out, "RESULT SAFE") {
			t.Errorf("%s run by the professor:\n%s", path, out)
		}
		if strings.Contains(out, "secret.py") || strings.Contains(out, "main.py") {
			t.Errorf("%s sees another student's files:\n%s", path, out)
		}
	}
	if _, err := os.Stat(filepath.Join(e.data, "Lecture Notes", "x")); err == nil {
		t.Error("the student's code wrote into Lecture Notes")
	}
}

// TestStudentSandboxCap: a student's tabs together may run only so many
// programs; the next one is told the limit in plain words; staff are not
// capped.
func TestStudentSandboxCap(t *testing.T) {
	t.Parallel()
	e := dockerEnv(t, terminal.Options{MaxSandboxesPerStudent: 2}, sandbox.Options{})
	ck := e.login("alice")
	for _, id := range []string{"t1", "t2"} {
		c := e.dial(ck, id)
		c.run("Local/alice/hello.py")
		c.started("Local/alice/hello.py")
		c.waitOutput(">>> ", waitShort)
	}
	third := e.dial(ck, "t3")
	third.run("Local/alice/hello.py")
	if ev := third.waitEvent("error", waitShort); !strings.Contains(ev["message"].(string), "2 programs running") {
		t.Errorf("the third program: %v", ev)
	}
	e.writeFile("Local/prof/p.py", "print('prof')\n")
	pk := e.login("prof")
	for _, id := range []string{"p1", "p2", "p3"} {
		c := e.dial(pk, id)
		c.run("Local/prof/p.py")
		c.started("Local/prof/p.py")
		c.waitOutput(">>> ", waitShort)
	}
}

// TestQuotaFromInsideTheSandbox: a program that writes past the student's
// quota through the bind mount (15 files of 900 KB against 2 MB) is
// stopped (reason quota), and what it wrote past the quota is not kept, as
// a disk with the quota would have refused it; the console names what was
// taken back; files from before are untouched; she can write again within
// her quota.
func TestQuotaFromInsideTheSandbox(t *testing.T) {
	t.Parallel()
	const quota = 2 << 20
	e := newEnv(t, envOptions{docker: true, quota: quota, files: map[string]string{
		"Local/alice/fill.py": `import os
for i in range(15):
    with open(f"/home/student/big{i}.bin", "wb") as f:
        f.write(os.urandom(900 * 1024))
print("wrote them all")
`,
		"Local/alice/write.py": `open("/home/student/more.txt", "w").write("more")
print("WRITE OK")
`,
		"Local/alice/notes.txt": "written before the run\n",
	}})
	ck := e.login("alice")
	c := e.dial(ck, "t1")
	c.run("Local/alice/fill.py")
	c.started("Local/alice/fill.py")
	ev := c.waitEvent("error", waitLong)
	msg, _ := ev["message"].(string)
	if !strings.Contains(msg, "more than your storage quota") || !strings.Contains(msg, "was not kept: Local/alice/big") {
		t.Errorf("message = %q", msg)
	}
	if ev := c.waitEvent("exited", waitShort); ev["reason"] != sandbox.ReasonQuota {
		t.Errorf("exited = %v, want quota", ev)
	}
	used, err := e.ws.DiskUsage("alice")
	if err != nil {
		t.Fatal(err)
	}
	if used > quota {
		t.Errorf("%d bytes kept against a quota of %d", used, quota)
	}
	if b, err := os.ReadFile(filepath.Join(e.data, "Local/alice/notes.txt")); err != nil || string(b) != "written before the run\n" {
		t.Errorf("a file from before the run: %q %v", b, err)
	}
	// Room is made by deleting for good; then she can write again.
	if r := e.request(ck, "DELETE", "/api/files?path="+url.QueryEscape("Local/alice/big0.bin")); r != 200 {
		t.Fatalf("deleting big0.bin: %d", r)
	}
	if r := e.request(ck, "DELETE", "/api/files/trash"); r != 200 {
		t.Fatalf("emptying the trash: %d", r)
	}
	c.run("Local/alice/write.py")
	c.started("Local/alice/write.py")
	c.waitOutput("WRITE OK", waitShort)
}

// TestQuotaHoldWhileOver: while a student's files are over the quota (an
// old data folder, a quota lowered by the admin), her programs get her
// folders read-only and the file API refuses to grow them.
func TestQuotaHoldWhileOver(t *testing.T) {
	t.Parallel()
	const quota = 1 << 20
	e := newEnv(t, envOptions{docker: true, quota: quota, files: map[string]string{
		"Local/alice/old.bin": strings.Repeat("x", quota+1),
		"Local/alice/write.py": `try:
    open("/home/student/more.txt", "w").write("more")
    print("WRITE OK")
except OSError as e:
    print("WRITE REFUSED", e.strerror)
`,
	}})
	ck := e.login("alice")
	c := e.dial(ck, "t1")
	c.run("Local/alice/write.py")
	c.started("Local/alice/write.py")
	c.waitOutput("WRITE REFUSED", waitShort)
	if r := e.put(ck, "Local/alice/new.py", "x = 1\n"); r != 413 {
		t.Errorf("saving a new file while over the quota: %d", r)
	}
}
