package terminal_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/terminal"
)

// BenchmarkBroadcast: a professor's REPL on a real sandbox, broadcast to
// 120 followers over real WebSockets. Each iteration the professor types a
// character; echo is its round trip to his own console, follower the time
// from the keystroke until each follower has its echo (an upper bound of
// output-to-follower: it includes the TTY's echo), after-owner how much
// later than the professor each follower had it. With stalled=1 one
// follower stops reading altogether: none of the figures may change.
func BenchmarkBroadcast(b *testing.B) {
	for _, stalled := range []int{0, 1} {
		b.Run(fmt.Sprintf("followers=120/stalled=%d", stalled), func(b *testing.B) {
			benchBroadcast(b, 120, stalled)
		})
	}
}

func benchBroadcast(b *testing.B, n, stalled int) {
	e := newEnv(b, envOptions{docker: true, live: true, hub: terminal.Options{RunsPerMinute: 1000}})
	prof := e.login("prof")
	pc := e.dial(prof, "cast")
	pc.send(map[string]any{"type": "repl"})
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
	var mu sync.Mutex
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%50 == 0 { // keep the line short: kill it
			pc.send(map[string]any{"type": "stdin", "data": "\x15"})
		}
		start := time.Now()
		pc.send(map[string]any{"type": "stdin", "data": "a"})
		var wg sync.WaitGroup
		var errs []error
		arrivals := make([]time.Time, len(live))
		for j, c := range live {
			wg.Go(func() {
				if err := c.tryWait(waitShort, "the echo on a follower", c.consume("a")); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				arrivals[j] = time.Now()
			})
		}
		pc.waitOutput("a", waitShort)
		own := time.Now()
		wg.Wait()
		if len(errs) > 0 {
			b.Fatal(errs[0])
		}
		echo = append(echo, own.Sub(start))
		for _, at := range arrivals {
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
