package terminal_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/terminal"
	"github.com/pythonide/pyide/pkg/terminal/terminaltest"
)

// TestConsoleSettings: the console learns before any run whether its user
// may open an empty REPL, and the limits that can end a run, in numbers.
func TestConsoleSettings(t *testing.T) {
	t.Parallel()
	limits := terminal.Limits{MemoryMB: 128, CPUSeconds: 30, SessionCPUSeconds: 300, IdleSeconds: 1800}
	for _, tc := range []struct {
		name        string
		studentREPL bool
		user        string
		repl        bool
	}{
		{"a student, REPL switched off", false, "alice", false},
		{"a student, REPL switched on", true, "alice", true},
		{"staff always", false, "prof", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{hub: terminal.Options{StudentREPL: tc.studentREPL, Limits: limits}})
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/console", nil)
			req.AddCookie(e.login(tc.user))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got terminal.Settings
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /api/console: %d, %v", resp.StatusCode, err)
			}
			if got.REPL != tc.repl || got.Limits != limits {
				t.Errorf("settings = %+v, want repl %v and %+v", got, tc.repl, limits)
			}
		})
	}
	e := newEnv(t, envOptions{})
	if code := e.request(&http.Cookie{Name: "x"}, http.MethodGet, "/api/console"); code != http.StatusUnauthorized {
		t.Errorf("without a login: %d, want 401", code)
	}
}

// TestStartedNamesFolders: the started event maps each folder inside the
// sandbox to its tree path, so a traceback's /home/student/x.py can be
// shown as Local/alice/x.py.
func TestStartedNamesFolders(t *testing.T) {
	t.Parallel()
	e := dockerEnv(t, terminal.Options{}, sandbox.Options{})
	c := e.dial(e.login("alice"), "")
	c.run("Local/alice/boom.py")
	ev := c.waitEvent("started", waitLong)
	folders, _ := ev["folders"].(map[string]any)
	if folders["/home/student"] != "Local/alice" || folders["/course/Lecture Notes"] != "Lecture Notes" {
		t.Errorf("started folders = %v", ev["folders"])
	}
	c.waitOutput(`File "/home/student/boom.py", line 2`, waitShort)
}

// TestNoticeBeforeReap: a session ended from outside (an administrator, a
// test's end) is explained to its tab before its exited event; a session
// no tab runs is not.
func TestNoticeBeforeReap(t *testing.T) {
	t.Parallel()
	e := dockerEnv(t, terminal.Options{StudentREPL: true}, sandbox.Options{})
	c := e.dial(e.login("alice"), "")
	c.send(map[string]any{"type": "repl"})
	id := c.started("")
	c.waitOutput(">>> ", waitShort)
	const why = "An administrator ended your program."
	if !e.hub.Notice(id, why) {
		t.Fatal("Notice found no tab running the session")
	}
	if e.hub.Notice("no-such-session", why) {
		t.Error("Notice found a tab for an unknown session")
	}
	if _, err := e.mgr.Reap(t.Context(), sandbox.Filter{Session: id}); err != nil {
		t.Fatal(err)
	}
	if ev := c.waitEvent("exited", waitLong); ev["reason"] != sandbox.ReasonReaped {
		t.Errorf("exited = %v, want reaped", ev)
	}
	evs := c.Events()
	said := slices.IndexFunc(evs, func(ev terminaltest.Event) bool { return ev.Type() == "error" && ev.Str("message") == why })
	ended := slices.IndexFunc(evs, func(ev terminaltest.Event) bool { return ev.Type() == "exited" })
	if said < 0 || said > ended {
		t.Errorf("the notice is not before the exit: %v", evs)
	}
}
