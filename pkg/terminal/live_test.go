package terminal_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/terminal"
	"github.com/pythonide/pyide/pkg/terminal/terminaltest"
)

// The live classroom on real sandboxes: the help queue and a helper's
// join (read-only, the keyboard with the student's consent, taken back),
// a professor's broadcast that students follow and try, transcripts, and
// the rules that keep it safe.

func liveEnv(t *testing.T, course terminal.LiveCourse) *env {
	t.Helper()
	return newEnv(t, envOptions{docker: true, files: liveScripts, live: true, liveCourse: course})
}

var liveScripts = map[string]string{
	"Local/alice/hello.py":      "x = 41\nprint('hello from', __name__)\n",
	"Local/alice/hw1/main.py":   "print('answer', 6 * 7)\n",
	"Local/prof/demo.py":        "def square(n):\n    return n * n\nprint('demo ready')\n",
	"Local/alice/secret.py":     "print('mine')\n",
	"Local/bob/nothing.py":      "print('bob')\n",
	"Lecture Notes/placeholder": "",
}

// liveBlock is a course whose restricted students are listed (by name, the
// test that restricts them); it changes as a test would begin.
type liveBlock struct {
	mu      sync.Mutex
	blocked map[string]string
}

func (b *liveBlock) LiveRestriction(user string, _ time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked[user]
}

func (b *liveBlock) set(user, test string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.blocked == nil {
		b.blocked = map[string]string{}
	}
	b.blocked[user] = test
}

func askHelp(t *testing.T, e *env, ck *http.Cookie, tab, path string) int64 {
	t.Helper()
	st, body := e.api(ck, http.MethodPost, "/api/live/help", map[string]any{"tab": tab, "path": path, "message": "my loop never ends"})
	if st != http.StatusCreated {
		t.Fatalf("ask for help: %d %v", st, body)
	}
	req, _ := body["request"].(map[string]any)
	id, _ := req["id"].(float64)
	return int64(id)
}

func auditActions(t *testing.T, e *env) []string {
	t.Helper()
	entries, err := e.db.AuditLog(context.Background(), "live.", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range entries {
		out = append(out, a.Action+" "+a.Actor+" "+a.Target)
	}
	return out
}

func TestHelpJoinReadOnlyKeyboardGrantAndTakeBack(t *testing.T) {
	t.Parallel()
	e := liveEnv(t, nil)
	alice, tina, bob := e.login("alice"), e.login("tina"), e.login("bob")
	student := e.dial(alice, "t1")
	student.run("Local/alice/hello.py")
	student.started("Local/alice/hello.py")
	student.waitOutput(">>> ", waitLong)

	id := askHelp(t, e, alice, "t1", "Local/alice/hello.py")
	if st, _ := e.api(alice, http.MethodPost, "/api/live/help", map[string]any{"tab": "t1", "path": "", "message": ""}); st != http.StatusConflict {
		t.Errorf("a second open request: %d, want 409", st)
	}
	st, q := e.api(tina, http.MethodGet, "/api/live/help", nil)
	reqs, _ := q["requests"].([]any)
	if st != http.StatusOK || len(reqs) != 1 {
		t.Fatalf("the queue: %d %v", st, q)
	}
	if r := reqs[0].(map[string]any); r["username"] != "alice" || r["path"] != "Local/alice/hello.py" || r["message"] != "my loop never ends" || r["live"] != true {
		t.Errorf("the queue shows %v", r)
	}
	if st, q := e.api(bob, http.MethodGet, "/api/live/help", nil); st != http.StatusOK || len(q["requests"].([]any)) != 0 {
		t.Errorf("another student sees the queue: %d %v", st, q)
	}
	query := fmt.Sprintf("help=%d", id)
	if c, st := e.dialWatch(tina, query); c != nil || st != http.StatusForbidden {
		t.Errorf("joined before taking the request: %d", st)
	}
	if st, _ := e.api(bob, http.MethodPost, fmt.Sprintf("/api/live/help/%d/take", id), nil); st != http.StatusForbidden {
		t.Errorf("a student took a request: %d", st)
	}
	if st, _ := e.api(tina, http.MethodPost, fmt.Sprintf("/api/live/help/%d/take", id), nil); st != http.StatusOK {
		t.Fatalf("take: %d", st)
	}
	if c, st := e.dialWatch(bob, query); c != nil || st != http.StatusForbidden {
		t.Errorf("a student joined another's console: %d", st)
	}
	ta, st := e.dialWatch(tina, query)
	if ta == nil {
		t.Fatalf("join: %d", st)
	}
	// The scrollback first, then what follows as it happens.
	ta.waitOutput("hello from __main__", waitShort)
	if ev := student.waitEvent("watchers", waitShort); fmt.Sprint(ev["names"]) != "[tina]" || ev["typing"] != "" {
		t.Errorf("the student is told %v, want tina watching", ev)
	}
	student.roundTrip("print(x + 1)", "42")
	ta.waitOutput("42", waitShort)

	// Read-only: typing, running and stopping are refused.
	ta.stdin("print('sneaky')\r")
	if ev := ta.waitEvent("error", waitShort); !strings.Contains(ev.Str("message"), "read-only") {
		t.Errorf("typing without a grant: %v", ev)
	}
	for _, m := range []map[string]any{{"type": "run", "path": "Local/alice/secret.py"}, {"type": "stop"}, {"type": "repl"}} {
		ta.send(m)
		if ev := ta.waitEvent("error", waitShort); !strings.Contains(ev.Str("message"), "read-only") {
			t.Errorf("%v from a watcher: %v", m, ev)
		}
	}

	// The keyboard, with consent.
	ta.send(map[string]any{"type": "ask_keyboard"})
	if ev := student.waitEvent("keyboard_request", waitShort); ev["by"] != "tina" {
		t.Errorf("keyboard_request = %v", ev)
	}
	student.send(map[string]any{"type": "keyboard", "grant": true})
	if ev := ta.waitEvent("keyboard", waitShort); ev["granted"] != true {
		t.Fatalf("keyboard = %v", ev)
	}
	if ev := student.waitEvent("watchers", waitShort); ev["typing"] != "tina" {
		t.Errorf("the student is not told who types: %v", ev)
	}
	ta.stdin("print('from', 'the ta')\r")
	student.waitOutput("from the ta", waitShort)
	ta.waitOutput("from the ta", waitShort)
	// Both type while it is granted.
	student.roundTrip("print(x * 2)", "82")

	// Taken back at once.
	student.send(map[string]any{"type": "keyboard", "grant": false})
	if ev := ta.waitEvent("keyboard", waitShort); ev["granted"] != false {
		t.Fatalf("keyboard after take-back = %v", ev)
	}
	ta.stdin("print('again')\r")
	if ev := ta.waitEvent("error", waitShort); !strings.Contains(ev.Str("message"), "read-only") {
		t.Errorf("typing after take-back: %v", ev)
	}
	student.roundTrip("print('still mine')", "still mine")
	if strings.Contains(student.Output(), "again") {
		t.Error("a helper's keystrokes reached the program after the take-back")
	}

	// Ending the request closes the helper's view.
	if st, _ := e.api(bob, http.MethodDelete, fmt.Sprintf("/api/live/help/%d", id), nil); st != http.StatusNotFound {
		t.Errorf("another student ended the request: %d", st)
	}
	if st, _ := e.api(alice, http.MethodDelete, fmt.Sprintf("/api/live/help/%d", id), nil); st != http.StatusNoContent {
		t.Fatalf("end: %d", st)
	}
	if code := closeCode(ta.waitClosed(waitShort)); code != terminal.CloseWatchEnded {
		t.Errorf("the helper's view closed with %d, want %d", code, terminal.CloseWatchEnded)
	}
	student.wait(waitShort, "nobody watching", func(v *terminaltest.View) bool {
		ev, ok := v.Next("watchers")
		return ok && fmt.Sprint(ev["names"]) == "[]"
	})
	if c, st := e.dialWatch(tina, query); c != nil || st != http.StatusNotFound {
		t.Errorf("joined an ended request: %d", st)
	}
	eventually(t, waitShort, "the audit log", func() bool {
		got := auditActions(t, e)
		for _, want := range []string{"live.help_ask alice alice", "live.help_take tina alice", "live.join tina alice",
			"live.keyboard_grant alice tina", "live.keyboard_revoke alice tina", "live.leave tina alice", "live.help_end alice alice"} {
			if !slices.Contains(got, want) {
				return false
			}
		}
		return true
	})
}

// TestJoinEndsWithTheRules: a join ends when the student logs out or the
// helper's account is disabled; an exam-restricted student cannot ask for
// help, follow or be joined, and a test that begins ends the joins.
func TestJoinEndsWithTheRules(t *testing.T) {
	t.Parallel()
	exam := &liveBlock{}
	e := liveEnv(t, exam)
	alice, tina, bob := e.login("alice"), e.login("tina"), e.login("bob")
	student := e.dial(alice, "t1")
	join := func(id int64) *wsClient {
		t.Helper()
		if st, _ := e.api(tina, http.MethodPost, fmt.Sprintf("/api/live/help/%d/take", id), nil); st != http.StatusOK {
			t.Fatalf("take: %d", st)
		}
		c, st := e.dialWatch(tina, fmt.Sprintf("help=%d", id))
		if c == nil {
			t.Fatalf("join: %d", st)
		}
		student.waitEvent("watchers", waitShort)
		return c
	}

	// A test begins: the join ends, and nothing new may start.
	ta := join(askHelp(t, e, alice, "t1", ""))
	exam.set("alice", "final")
	e.hub.Recheck("alice")
	if code := closeCode(ta.waitClosed(waitShort)); code != terminal.CloseWatchEnded {
		t.Errorf("a test began: the view closed with %d", code)
	}
	if st, _ := e.api(alice, http.MethodPost, "/api/live/help", map[string]any{"tab": "t1", "path": "", "message": ""}); st != http.StatusForbidden {
		t.Errorf("asking for help in a restricted test: %d", st)
	}
	st, q := e.api(tina, http.MethodGet, "/api/live/help", nil)
	id := int64(q["requests"].([]any)[0].(map[string]any)["id"].(float64))
	if c, st2 := e.dialWatch(tina, fmt.Sprintf("help=%d", id)); c != nil || st != http.StatusOK || st2 != http.StatusForbidden {
		t.Errorf("joined a student in a restricted test: %d", st2)
	}
	exam.set("alice", "")
	if st, _ := e.api(alice, http.MethodDelete, fmt.Sprintf("/api/live/help/%d", id), nil); st != http.StatusNoContent {
		t.Fatalf("end: %d", st)
	}

	// The student logs out: the join ends.
	ta = join(askHelp(t, e, alice, "t1", ""))
	e.logout(alice)
	if code := closeCode(ta.waitClosed(waitShort)); code != terminal.CloseWatchEnded {
		t.Errorf("student logged out: the view closed with %d", code)
	}
	eventually(t, waitShort, "the request ended at logout", func() bool {
		_, q := e.api(tina, http.MethodGet, "/api/live/help", nil)
		return len(q["requests"].([]any)) == 0
	})

	// The helper's account is disabled: the join ends.
	alice = e.login("alice")
	student = e.dial(alice, "t1")
	ta = join(askHelp(t, e, alice, "t1", ""))
	if err := e.auth.SetDisabled(context.Background(), "tina", true); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(ta.waitClosed(waitShort)); code != terminal.CloseSessionEnded {
		t.Errorf("helper disabled: the view closed with %d", code)
	}
	_ = bob
}

func TestBroadcastFollowAndTry(t *testing.T) {
	t.Parallel()
	exam := &liveBlock{}
	e := liveEnv(t, exam)
	prof, alice, bob := e.login("prof"), e.login("alice"), e.login("bob")
	pc := e.dial(prof, "p1")
	if st, _ := e.api(alice, http.MethodPost, "/api/live/broadcast", map[string]any{"tab": "t1", "path": ""}); st != http.StatusForbidden {
		t.Errorf("a student started a broadcast: %d", st)
	}
	pc.run("Local/prof/demo.py")
	pc.started("Local/prof/demo.py")
	pc.waitOutput(">>> ", waitLong)
	st, body := e.api(prof, http.MethodPost, "/api/live/broadcast", map[string]any{"tab": "p1", "path": "Local/prof/demo.py"})
	if st != http.StatusOK {
		t.Fatalf("start the broadcast: %d %v", st, body)
	}
	id := body["broadcast"].(map[string]any)["id"].(string)
	st, list := e.api(alice, http.MethodGet, "/api/live/broadcasts", nil)
	if casts, _ := list["broadcasts"].([]any); st != http.StatusOK || len(casts) != 1 || casts[0].(map[string]any)["path"] != "Local/prof/demo.py" {
		t.Fatalf("broadcasts: %d %v", st, list)
	}
	follower, st := e.dialWatch(alice, "broadcast="+id)
	if follower == nil {
		t.Fatalf("follow: %d", st)
	}
	follower.waitOutput("demo ready", waitShort)
	pc.roundTrip("print(square(12))", "144")
	follower.waitOutput("144", waitShort)
	follower.stdin("print('x')\r")
	if ev := follower.waitEvent("error", waitShort); !strings.Contains(ev.Str("message"), "read-only") {
		t.Errorf("a follower typed: %v", ev)
	}
	// The file, and "Try it myself": a copy in her Local folder, run in
	// her own sandbox.
	st, f := e.api(alice, http.MethodGet, "/api/live/broadcasts/"+id+"/file", nil)
	if st != http.StatusOK || !strings.Contains(f["content"].(string), "def square") || f["path"] != "Local/prof/demo.py" {
		t.Fatalf("the broadcast's file: %d %v", st, f)
	}
	st, tried := e.api(alice, http.MethodPost, "/api/live/broadcasts/"+id+"/try", nil)
	if st != http.StatusCreated || tried["path"] != "Local/alice/demo.py" {
		t.Fatalf("try it: %d %v", st, tried)
	}
	if st, tried := e.api(alice, http.MethodPost, "/api/live/broadcasts/"+id+"/try", nil); st != http.StatusCreated || tried["path"] != "Local/alice/demo-2.py" {
		t.Errorf("trying again overwrote the first copy: %d %v", st, tried)
	}
	// Only the professor's own work is shown: not a student's file he runs.
	if st, body := e.api(prof, http.MethodPost, "/api/live/broadcast", map[string]any{"tab": "p1", "path": "Local/alice/secret.py"}); st != http.StatusOK {
		t.Fatalf("broadcast another file: %d %v", st, body)
	}
	pc.run("Local/alice/secret.py")
	pc.started("Local/alice/secret.py")
	if _, f := e.api(bob, http.MethodGet, "/api/live/broadcasts/"+id+"/file", nil); f["content"] != "" {
		t.Errorf("a student's file was shown to the class: %v", f)
	}
	if st, _ := e.api(bob, http.MethodPost, "/api/live/broadcasts/"+id+"/try", nil); st != http.StatusConflict {
		t.Errorf("a student's file was copied to another: %d", st)
	}
	pc.run("Local/prof/demo.py")
	pc.started("Local/prof/demo.py")
	pc.waitOutput(">>> ", waitLong)
	pc.roundTrip("print(square(12))", "144")
	own := e.dial(alice, "t1")
	own.run("Local/alice/demo.py")
	own.started("Local/alice/demo.py")
	own.waitOutput("demo ready", waitLong)
	own.roundTrip("print(square(5))", "25")

	// A restricted student follows nothing.
	exam.set("bob", "final")
	if c, st := e.dialWatch(bob, "broadcast="+id); c != nil || st != http.StatusForbidden {
		t.Errorf("followed during a restricted test: %d", st)
	}
	if _, list := e.api(bob, http.MethodGet, "/api/live/broadcasts", nil); len(list["broadcasts"].([]any)) != 0 {
		t.Errorf("a restricted student sees broadcasts: %v", list)
	}
	if st, _ := e.api(bob, http.MethodGet, "/api/live/broadcasts/"+id+"/file", nil); st != http.StatusForbidden {
		t.Errorf("a restricted student read the broadcast's file: %d", st)
	}

	// Stopping ends the followers' views; so does a logout.
	if st, _ := e.api(prof, http.MethodDelete, "/api/live/broadcast", nil); st != http.StatusNoContent {
		t.Fatalf("stop: %d", st)
	}
	if code := closeCode(follower.waitClosed(waitShort)); code != terminal.CloseWatchEnded {
		t.Errorf("broadcast stopped: the view closed with %d", code)
	}
	_, body = e.api(prof, http.MethodPost, "/api/live/broadcast", map[string]any{"tab": "p1", "path": ""})
	id = body["broadcast"].(map[string]any)["id"].(string)
	follower, _ = e.dialWatch(alice, "broadcast="+id)
	if follower == nil {
		t.Fatal("follow again")
	}
	follower.waitOutput("144", waitShort) // the scrollback
	e.logout(prof)
	if code := closeCode(follower.waitClosed(waitShort)); code != terminal.CloseWatchEnded {
		t.Errorf("professor logged out: the view closed with %d", code)
	}
	if _, list := e.api(alice, http.MethodGet, "/api/live/broadcasts", nil); len(list["broadcasts"].([]any)) != 0 {
		t.Errorf("a broadcast outlived the logout: %v", list)
	}
}

func TestTranscripts(t *testing.T) {
	t.Parallel()
	e := liveEnv(t, nil)
	alice, bob, tina := e.login("alice"), e.login("bob"), e.login("tina")
	c := e.dial(alice, "t1")
	c.run("Local/alice/hw1/main.py")
	c.started("Local/alice/hw1/main.py")
	c.waitOutput("answer 42", waitLong)
	c.waitOutput(">>> ", waitShort)
	c.roundTrip("print('typed', 'later')", "typed later")
	c.stdin("exit()\r")
	c.waitEvent("exited", waitShort)
	var list []any
	eventually(t, waitShort, "the transcript", func() bool {
		_, body := e.api(alice, http.MethodGet, "/api/live/transcripts?item=hw1", nil)
		list, _ = body["transcripts"].([]any)
		return len(list) == 1
	})
	tr := list[0].(map[string]any)
	if tr["path"] != "Local/alice/hw1/main.py" || tr["item"] != "hw1" || tr["reason"] != sandbox.ReasonFinished {
		t.Errorf("transcript = %v", tr)
	}
	url := fmt.Sprintf("/api/live/transcripts/%d", int64(tr["id"].(float64)))
	st, out := e.raw(alice, url)
	if st != http.StatusOK || !strings.Contains(string(out), "answer 42") || !strings.Contains(string(out), "typed later") {
		t.Errorf("her transcript: %d %q", st, out)
	}
	if st, out := e.raw(tina, url); st != http.StatusOK || !strings.Contains(string(out), "answer 42") {
		t.Errorf("a teaching assistant grading: %d %q", st, out)
	}
	if st, _ := e.raw(bob, url); st != http.StatusNotFound {
		t.Errorf("another student read her transcript: %d", st)
	}
	if st, _ := e.api(bob, http.MethodGet, "/api/live/transcripts?user=alice", nil); st != http.StatusNotFound {
		t.Errorf("another student listed her transcripts: %d", st)
	}
	if st, body := e.api(tina, http.MethodGet, "/api/live/transcripts?user=alice&item=hw1", nil); st != http.StatusOK || len(body["transcripts"].([]any)) != 1 {
		t.Errorf("staff's list: %d %v", st, body)
	}
}

// TestStalledWatcherDropped: a watcher that stops reading is dropped, told
// so, and resumes from the scrollback; the owner and the other watchers go
// on as if it were not there.
func TestStalledWatcherDropped(t *testing.T) {
	t.Parallel()
	f := newFakeSandboxes()
	e := newEnv(t, envOptions{sandboxes: f, files: liveScripts, live: true, hub: terminal.Options{OutputCapBytes: 1 << 30}})
	prof := e.login("prof")
	pc := e.dial(prof, "p1")
	pc.run("Local/prof/demo.py")
	s := f.next(t)
	pc.started("Local/prof/demo.py")
	_, body := e.api(prof, http.MethodPost, "/api/live/broadcast", map[string]any{"tab": "p1", "path": "Local/prof/demo.py"})
	id := body["broadcast"].(map[string]any)["id"].(string)
	alice, bob := e.login("alice"), e.login("bob")
	stalled, _ := e.dialWatch(alice, "broadcast="+id)
	live, _ := e.dialWatch(bob, "broadcast="+id)
	if stalled == nil || live == nil {
		t.Fatal("follow")
	}
	resume := stalled.Pause()
	line := strings.Repeat("x", 1000) + "\r\n"
	for i := range 16000 { // 16 MB: more than the sockets and the watcher's buffer hold
		s.print(fmt.Sprintf("%04d", i) + line)
		if i%100 == 0 {
			pc.waitOutput(fmt.Sprintf("%04d", i), waitShort)
			live.waitOutput(fmt.Sprintf("%04d", i), waitShort)
		}
	}
	s.print("the end\r\n")
	pc.waitOutput("the end", waitShort)
	live.waitOutput("the end", waitShort)
	// Told, and back from the scrollback, which ends with the end.
	resume()
	stalled.waitEvent("behind", waitShort)
	stalled.waitOutput("the end", waitShort)
	if live.Look(func(v *terminaltest.View) {}); len(live.Events()) > 0 && slices.ContainsFunc(live.Events(), func(ev terminaltest.Event) bool { return ev.Type() == "behind" }) {
		t.Error("a watcher that kept up was told it fell behind")
	}
	// One that stops reading for good is disconnected and resumes from
	// the scrollback.
	again, _ := e.dialWatch(alice, "broadcast="+id)
	if again == nil {
		t.Fatal("resume")
	}
	again.waitOutput("the end", waitShort)
}
