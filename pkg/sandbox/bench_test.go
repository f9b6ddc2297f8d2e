package sandbox_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
)

// clickToFirstOutput measures Start until the script's first output byte:
// what a student waits for after pressing Run.
func clickToFirstOutput(b *testing.B, m *sandbox.Manager, spec sandbox.Spec, wantWarm bool) (time.Duration, *sandbox.Session) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	t0 := time.Now()
	s, err := m.Start(ctx, spec, nil)
	if err != nil {
		b.Fatalf("Start: %v", err)
	}
	startMu.Lock()
	startTimes = append(startTimes, time.Since(t0))
	startMu.Unlock()
	p := make([]byte, 256)
	if _, err := s.Read(p); err != nil {
		b.Fatalf("Read: %v", err)
	}
	d := time.Since(t0)
	if s.Warm() != wantWarm {
		b.Errorf("warm = %v, want %v", s.Warm(), wantWarm)
	}
	return d, s
}

// startTimes are how long Start itself took (the server's share of a click).
var (
	startMu    sync.Mutex
	startTimes []time.Duration
)

func stopAll(ss []*sandbox.Session) {
	for _, s := range ss {
		s.Stop(sandbox.ReasonStopped)
	}
	for _, s := range ss {
		<-s.Done()
	}
}

func benchSingle(b *testing.B, warm bool) {
	m := sandboxtest.NewManager(b, sandbox.Options{SpareEnabled: warm})
	dir := sandboxtest.Workspace(b, map[string]string{"hi.py": "print('hi')\n"})
	spec := homeSpec(b, "bench", dir, "/home/student/hi.py")
	var all []time.Duration
	for b.Loop() {
		if warm {
			b.StopTimer()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			if err := m.Prepare(ctx, spec); err != nil {
				b.Fatal(err)
			}
			cancel()
			b.StartTimer()
		}
		d, s := clickToFirstOutput(b, m, spec, warm)
		all = append(all, d)
		b.StopTimer()
		stopAll([]*sandbox.Session{s})
		b.StartTimer()
	}
	report(b, all)
}

func BenchmarkColdStart(b *testing.B) { benchSingle(b, false) }
func BenchmarkWarmStart(b *testing.B) { benchSingle(b, true) }

// benchClicks has 30 students press Run at the same moment.
func benchClicks(b *testing.B, warm bool) {
	const students = 30
	m := sandboxtest.NewManager(b, sandbox.Options{SpareEnabled: warm})
	specs := make([]sandbox.Spec, students)
	for i := range specs {
		dir := sandboxtest.Workspace(b, map[string]string{"hi.py": "print('hi')\n"})
		specs[i] = homeSpec(b, fmt.Sprintf("student%02d", i), dir, "/home/student/hi.py")
	}
	var all []time.Duration
	for b.Loop() {
		b.StopTimer()
		if warm {
			var wg sync.WaitGroup
			for _, sp := range specs {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
					defer cancel()
					if err := m.Prepare(ctx, sp); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.StartTimer()
		var mu sync.Mutex
		var wg sync.WaitGroup
		var ss []*sandbox.Session
		for _, sp := range specs {
			wg.Go(func() {
				d, s := clickToFirstOutput(b, m, sp, warm)
				mu.Lock()
				all = append(all, d)
				ss = append(ss, s)
				mu.Unlock()
			})
		}
		wg.Wait()
		b.StopTimer()
		stopAll(ss)
		b.StartTimer()
	}
	report(b, all)
}

func BenchmarkColdClicks30(b *testing.B) { benchClicks(b, false) }
func BenchmarkWarmClicks30(b *testing.B) { benchClicks(b, true) }

// report gives click-to-first-output percentiles, and those of Start
// returning (the server-side part, before the runner's own work).
func report(b *testing.B, all []time.Duration) {
	startMu.Lock()
	starts := startTimes
	startTimes = nil
	startMu.Unlock()
	if len(all) == 0 {
		return
	}
	pct := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(all, 0.5), "p50-ms")
	b.ReportMetric(pct(all, 0.99), "p99-ms")
	b.ReportMetric(pct(starts, 0.5), "start-p50-ms")
	b.ReportMetric(pct(starts, 0.99), "start-p99-ms")
	b.ReportMetric(0, "ns/op")
}
