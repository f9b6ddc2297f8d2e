package sandbox_test

import (
	"strings"
	"testing"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

func TestScriptThenREPL(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	s, c, _ := startScript(t, m, "alice", "x = 41\nif __name__ == '__main__':\n    print('hello from', __name__)\n")
	c.waitFor(t, "hello from __main__", waitShort)
	c.waitFor(t, ">>> ", waitShort)
	c.roundTrip(t, "print(x + 1)", "42")
	if strings.Contains(c.String(), "cpu_seconds") {
		t.Errorf("the control line leaked into the output: %q", c.String())
	}
	c.send(t, "exit(0)")
	if ex := waitExit(t, s, waitShort); ex != (sandbox.Exit{Code: 0, Reason: sandbox.ReasonFinished}) {
		t.Errorf("exit = %+v, want 0 finished", ex)
	}
}
