package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// TestSessionCPUBudget: a thread spinning behind the REPL prompt, kept
// company by keystrokes (each Enter used to start a fresh per-command
// budget), and a forked child that raised its own RLIMIT_CPU, both end
// when the session's total CPU budget is spent (reason timeout).
func TestSessionCPUBudget(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{CPUSeconds: 2, SessionCPU: 8})
	tests := []struct{ name, code string }{
		{"spinning thread and Enter", "import threading\ndef spin():\n    while True:\n        pass\nthreading.Thread(target=spin, daemon=True).start()\nprint('spinning')\n"},
		// Two children share the one CPU: each stays under its own
		// RLIMIT_CPU long after the session's total is spent.
		{"children with a raised rlimit", `import os, resource, signal
for _ in range(2):
    if os.fork() == 0:
        signal.setitimer(signal.ITIMER_PROF, 0)
        s, h = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (h, h))
        os.setsid()
        while True:
            pass
print('spinning')
`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := sandboxtest.Workspace(t, map[string]string{"spin.py": tt.code})
			s, c := start(t, m, homeSpec(t, fmt.Sprintf("spinner%d", i), dir, "/home/student/spin.py"))
			c.waitFor(t, ">>> ", waitLong)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					case <-time.After(300 * time.Millisecond):
						_, _ = s.Write([]byte("\r"))
					}
				}
			}()
			began := time.Now()
			ex := waitExit(t, s, waitCPU)
			close(stop)
			wg.Wait()
			if ex.Reason != sandbox.ReasonTimeout {
				t.Errorf("exit = %+v, want timeout; output:\n%s", ex, c.String())
			}
			// About the 8 s budget at one CPU; far from the many minutes
			// a per-command budget reset by each Enter would allow.
			if took := time.Since(began); took > time.Minute {
				t.Errorf("the session ended only after %v", took)
			}
		})
	}
}

// TestPerUserCap: a student may have MaxSessions sessions at once, however
// many tabs ask at the same time; the error names the limit; a session of
// the same tab replaces its predecessor and does not count; once one ends
// another may start.
func TestPerUserCap(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	dir := sandboxtest.Workspace(t, nil)
	spec := func(key string) sandbox.Spec {
		sp := homeSpec(t, "tabby", dir, "")
		sp.Key, sp.MaxSessions = key, 3
		return sp
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	type result struct {
		s   *sandbox.Session
		err error
	}
	results := make(chan result, 8)
	for i := range 8 {
		go func() {
			s, err := m.Start(ctx, spec(fmt.Sprintf("tab%d", i)), nil)
			results <- result{s, err}
		}()
	}
	var live []*sandbox.Session
	refused := 0
	for range 8 {
		r := <-results
		var le *sandbox.LimitError
		switch {
		case r.err == nil:
			live = append(live, r.s)
			t.Cleanup(func() { r.s.Stop(sandbox.ReasonStopped); <-r.s.Done() })
		case errors.As(r.err, &le):
			refused++
			if le.Max != 3 || !strings.Contains(le.Error(), "3 programs running") {
				t.Errorf("limit error %q", le)
			}
		default:
			t.Fatalf("Start: %v", r.err)
		}
	}
	if len(live) != 3 || refused != 5 {
		t.Fatalf("%d started, %d refused; want 3 and 5", len(live), refused)
	}
	// The same tab again replaces its session.
	again, err := m.Start(ctx, live[0].Spec(), nil)
	if err != nil {
		t.Fatalf("a run in a tab that has one: %v", err)
	}
	t.Cleanup(func() { again.Stop(sandbox.ReasonStopped); <-again.Done() })
	// One ends: another tab may start.
	live[1].Stop(sandbox.ReasonStopped)
	s, err := m.Start(ctx, spec("tab-new"), nil)
	if err != nil {
		t.Fatalf("after one stopped: %v", err)
	}
	t.Cleanup(func() { s.Stop(sandbox.ReasonStopped); <-s.Done() })
	// Another student is not affected.
	other := homeSpec(t, "other", sandboxtest.Workspace(t, nil), "")
	other.MaxSessions = 3
	o, err := m.Start(ctx, other, nil)
	if err != nil {
		t.Fatalf("another student: %v", err)
	}
	t.Cleanup(func() { o.Stop(sandbox.ReasonStopped); <-o.Done() })
}
