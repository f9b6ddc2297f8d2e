package terminal_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/terminal"
	"github.com/pythonide/pyide/pkg/terminal/terminaltest"
)

// BenchmarkBroadcast: a professor's REPL on a real sandbox, broadcast to
// 120 followers over real WebSockets. Each iteration the professor types a
// character; echo is its round trip to his own console, follower the time
// from the keystroke until each follower has its echo (an upper bound of
// output-to-follower: it includes the TTY's echo), after-owner how much
// later than the professor each follower had it. With stalled=1 one
// follower stops reading altogether: none of the figures may change.
// followers=0 is the baseline. The followers' clients run on the same
// cores as the server, so their own reading is part of the cost measured.
func BenchmarkBroadcast(b *testing.B) {
	for _, sandbox := range []string{"docker", "fake"} {
		for _, tc := range []struct{ followers, stalled int }{{0, 0}, {120, 0}, {120, 1}} {
			b.Run(fmt.Sprintf("%s/followers=%d/stalled=%d", sandbox, tc.followers, tc.stalled), func(b *testing.B) {
				benchBroadcast(b, sandbox == "fake", tc.followers, tc.stalled)
			})
		}
	}
}

// benchBroadcast: with fake, the professor's REPL is a fake session that
// echoes at once, so the figures are the hub's and the sockets' alone.
func benchBroadcast(b *testing.B, fake bool, n, stalled int) {
	o := envOptions{docker: !fake, live: true, hub: terminal.Options{RunsPerMinute: 1000}}
	var f *fakeSandboxes
	if fake {
		f = newFakeSandboxes()
		o.sandboxes = f
	}
	e := newEnv(b, o)
	prof := e.login("prof")
	pc := e.dial(prof, "cast")
	pc.send(map[string]any{"type": "repl"})
	if fake {
		s := f.next(b)
		go func() {
			for {
				select {
				case typed := <-s.in:
					s.print(typed)
				case <-s.ending:
					return
				}
			}
		}()
		s.print(">>> ")
	}
	pc.started("")
	pc.waitOutput(">>> ", waitLong)
	st, body := e.api(prof, http.MethodPost, "/api/live/broadcast", map[string]any{"tab": "cast", "path": ""})
	if st != http.StatusOK {
		b.Fatalf("broadcast: %d %v", st, body)
	}
	id := body["broadcast"].(map[string]any)["id"].(string)
	cookies := []*http.Cookie{e.login("alice"), e.login("bob")}
	fs := make([]*wsClient, n)
	for i := range fs {
		c, st := e.dialWatch(cookies[i%2], "broadcast="+id)
		if c == nil {
			b.Fatalf("follower %d: %d", i, st)
		}
		fs[i] = c
	}
	for i := range stalled {
		fs[i].Pause()
	}
	live := fs[stalled:]
	var echo, follow, after []time.Duration
	const warmup = 20 // the REPL's and the sockets' first keystrokes are slower
	b.ResetTimer()
	for i := range b.N + warmup {
		if i == warmup {
			echo, follow, after = echo[:0], follow[:0], after[:0]
		}
		if i > 0 && i%50 == 0 { // keep the line short: kill it
			pc.send(map[string]any{"type": "stdin", "data": "\x15"})
		}
		for _, c := range live {
			c.Mark()
		}
		start := time.Now()
		pc.send(map[string]any{"type": "stdin", "data": "a"})
		pc.waitOutput("a", waitShort)
		own := time.Now()
		echo = append(echo, own.Sub(start))
		// When each follower's reader had it: read after the professor's
		// echo, so that waiting here costs his console nothing.
		for _, c := range live {
			var at time.Time
			c.wait(waitShort, "the echo on a follower", func(v *terminaltest.View) bool {
				at = v.FirstOutput()
				return !at.IsZero()
			})
			follow = append(follow, at.Sub(start))
			after = append(after, max(0, at.Sub(own)))
		}
	}
	b.StopTimer()
	report(b, "echo", echo)
	report(b, "follower", follow)
	report(b, "after-owner", after)
}

// report gives p50 and p99 of ds in milliseconds under name.
func report(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ds[len(ds)/2]), name+"-p50-ms")
	b.ReportMetric(ms(ds[min(len(ds)-1, len(ds)*99/100)]), name+"-p99-ms")
}
