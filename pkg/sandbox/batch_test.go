package sandbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// TestBatch runs a program that reads its input to the end and prints:
// cold, then warm; a flood is cut at the limit; a hang is ended at the
// timeout; and every container is gone afterwards.
func TestBatch(t *testing.T) {
	t.Parallel()
	m := sandboxtest.NewManager(t, sandbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	prog := `import sys
data = sys.stdin.read()
if data == "flood":
    sys.stdout.write("x" * 1000000)
elif data == "hang":
    while True: pass
elif data == "oom":
    a = []
    while True: a.append(bytearray(1 << 20))
else:
    print("got", len(data), "bytes")
`
	b, err := m.NewBatches(sandbox.BatchOptions{Name: "grader", Cmd: []string{"python3", "-c", prog}, Warm: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tests := []struct {
		name, input string
		check       func(t *testing.T, r sandbox.BatchResult)
	}{
		{"plain", strings.Repeat("a", 100000), func(t *testing.T, r sandbox.BatchResult) {
			if string(r.Stdout) != "got 100000 bytes\n" || r.ExitCode != 0 || r.TimedOut {
				t.Errorf("got %+v", r)
			}
		}},
		{"flood", "flood", func(t *testing.T, r sandbox.BatchResult) {
			if len(r.Stdout) != 1000 || !r.Truncated {
				t.Errorf("flood: %d bytes, truncated %v", len(r.Stdout), r.Truncated)
			}
		}},
		{"hang", "hang", func(t *testing.T, r sandbox.BatchResult) {
			if !r.TimedOut {
				t.Errorf("hang: not timed out: %+v", r)
			}
		}},
		{"oom", "oom", func(t *testing.T, r sandbox.BatchResult) {
			if !r.OOM && r.ExitCode == 0 {
				t.Errorf("oom: %+v", r)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := b.Run(ctx, []byte(tc.input), 1000, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
	// A warm one is waiting again by now, or soon.
	deadline := time.Now().Add(waitShort)
	for {
		r, err := b.Run(ctx, []byte("x"), 1000, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Warm {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no warm batch container")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
