package terminal_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/terminal"
	"github.com/pythonide/pyide/pkg/terminal/terminaltest"
)

// reportLatency reports p50 and p99 in milliseconds.
func reportLatency(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ds[len(ds)/2]), "p50-ms")
	b.ReportMetric(ms(ds[min(len(ds)-1, len(ds)*99/100)]), "p99-ms")
}

// BenchmarkKeystrokeEcho: a character typed at the REPL prompt, through the
// WebSocket, the hub and the container's TTY, until its echo comes back
// as a binary frame; every session types at once.
func BenchmarkKeystrokeEcho(b *testing.B) {
	for _, n := range []int{1, 60} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			e := newEnv(b, envOptions{docker: true, hub: terminal.Options{RunsPerMinute: 1000}})
			ck := e.login("prof")
			cs := make([]*wsClient, n)
			for i := range cs {
				cs[i] = e.dial(ck, fmt.Sprintf("bench%d", i))
				cs[i].send(map[string]any{"type": "repl"})
			}
			for _, c := range cs {
				c.started("")
				c.waitOutput(">>> ", waitLong)
			}
			var mu sync.Mutex
			var all []time.Duration
			var firstErr error
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Go(func() {
					ds := make([]time.Duration, 0, b.N)
					for i := range b.N {
						var err error
						if i > 0 && i%50 == 0 { // keep the line short: kill it
							err = c.trySend(map[string]any{"type": "stdin", "data": "\x15"})
						}
						start := time.Now()
						if err == nil {
							err = c.trySend(map[string]any{"type": "stdin", "data": "a"})
						}
						if err == nil {
							err = c.tryWait(waitShort, "echo", c.consume("a"))
						}
						if err != nil {
							mu.Lock()
							firstErr = err
							mu.Unlock()
							return
						}
						ds = append(ds, time.Since(start))
					}
					mu.Lock()
					all = append(all, ds...)
					mu.Unlock()
				})
			}
			wg.Wait()
			b.StopTimer()
			if firstErr != nil {
				b.Fatal(firstErr)
			}
			reportLatency(b, all)
		})
	}
}

// BenchmarkClickToFirstOutput: from the run message to the first binary
// frame of the script's output, with a warm spare container and without.
func BenchmarkClickToFirstOutput(b *testing.B) {
	for _, warm := range []bool{false, true} {
		name := "cold"
		if warm {
			name = "warm"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, envOptions{
				docker:  true,
				hub:     terminal.Options{RunsPerMinute: 100000},
				sandbox: sandbox.Options{SpareEnabled: warm, SpareDelay: time.Hour},
				files:   map[string]string{"Local/prof/ready.py": "print('ready')\n"},
			})
			prof := auth.User{Username: "prof", Role: auth.RoleProfessor}
			mounts, err := terminal.WorkspaceFiles{W: e.ws}.Mounts(prof)
			if err != nil {
				b.Fatal(err)
			}
			c := e.dial(e.login("prof"), "")
			var ds []time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if warm {
					ctx, cancel := context.WithTimeout(context.Background(), waitLong)
					err := e.mgr.Prepare(ctx, sandbox.Spec{User: prof.Username, Role: prof.Role, Mounts: mounts})
					cancel()
					if err != nil {
						b.Fatal(err)
					}
				}
				frames := c.Frames()
				b.StartTimer()
				start := time.Now()
				c.run("Local/prof/ready.py")
				c.wait(waitLong, "the first output", func(v *terminaltest.View) bool { return v.Frames() > frames })
				ds = append(ds, time.Since(start))
				b.StopTimer()
				c.waitOutput("ready", waitLong)
				c.waitOutput(">>> ", waitLong)
				c.send(map[string]any{"type": "stop"})
				c.waitEvent("exited", waitLong)
				b.StartTimer()
			}
			b.StopTimer()
			reportLatency(b, ds)
		})
	}
}
