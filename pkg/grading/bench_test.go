package grading

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/store"
)

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkCheck is a student's Check on the warm path (a grading
// container waits, as it does between two clicks): the whole request, from
// the click to the results, with an I/O case and a test file of two tests.
func BenchmarkCheck(b *testing.B) {
	e := newEnv(b, true)
	setupItem(e)
	e.write("alice", map[string]string{"Local/alice/hw1/solution.py": solution, "Local/alice/hw1/main.py": mainPy})
	var all []time.Duration
	for b.Loop() {
		b.StopTimer()
		for e.check.Ready() == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		b.StartTimer()
		began := time.Now()
		r := e.do("alice", "POST", "/api/course/items/hw1/check", map[string]any{"files": []string{"Local/alice/hw1"}})
		all = append(all, time.Since(began))
		if r.Status != 200 || !strings.Contains(r.Raw, `"score":4`) {
			b.Fatalf("check: %d %s", r.Status, r.Raw)
		}
	}
	b.ReportMetric(float64(percentile(all, 0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(percentile(all, 0.99).Milliseconds()), "p99-ms")
}

// student is one of the class clicking Run while a regrade runs: a warm
// spare, a think time of 2 to 8 s, then Run and the time to the program's
// first output.
func student(ctx context.Context, b *testing.B, m *sandbox.Manager, spec sandbox.Spec, rec func(time.Duration)) {
	if err := m.Prepare(ctx, spec); err != nil && ctx.Err() == nil {
		b.Errorf("prepare %s: %v", spec.User, err)
	}
	for {
		t := time.NewTimer(2*time.Second + rand.N(6*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		began := time.Now()
		s, err := m.Start(context.WithoutCancel(ctx), spec, nil)
		if err != nil {
			b.Errorf("start %s: %v", spec.User, err)
			return
		}
		var out []byte
		p := make([]byte, 4096)
		for !bytes.Contains(out, []byte("hello")) {
			n, err := s.Read(p)
			out = append(out, p[:n]...)
			if err != nil {
				break
			}
		}
		if bytes.Contains(out, []byte("hello")) {
			rec(time.Since(began))
		} else {
			b.Errorf("%s: no output: %q", spec.User, out)
		}
		// The script ends in its REPL; the next Run replaces it, as the
		// IDE's does (a REPL left open would hold its place for good).
		s.Stop(sandbox.ReasonStopped)
		<-s.Done()
	}
}

// BenchmarkRegradeClass regrades 120 submissions of an item with 10 tests
// (six I/O cases, a test file of four tests) on this machine, while 30
// students click Run (warm spares, 2-8 s between clicks, as pyide-load);
// it reports the regrade's total time and the students' click-to-output
// p50 and p99, before the regrade (alone) and during it.
func BenchmarkRegradeClass(b *testing.B) {
	const submissions, class = 120, 30
	e := newEnv(b, true)
	ctx := context.Background()
	e.assignment("big")
	sol := "def add(a, b):\n    return a + b\n"
	main := "import sys\nnums = [int(x) for x in sys.stdin.read().split()]\nprint(sum(nums))\n"
	for i := range submissions {
		name := fmt.Sprintf("s%03d", i)
		e.AddUser(store.User{Username: name, Role: auth.RoleStudent}, "pw")
		if err := e.ws.EnsureUserDirs(name); err != nil {
			b.Fatal(err)
		}
		e.users[name] = e.Login(name, "pw")
		e.write(name, map[string]string{"Local/" + name + "/big/solution.py": sol, "Local/" + name + "/big/main.py": main})
		e.must(e.do(name, "POST", "/api/course/assignments/big/submit", map[string]any{"files": []string{"Local/" + name + "/big"}}), 201)
	}
	for i := range 6 {
		e.addTest("big", map[string]any{"kind": "io", "name": fmt.Sprintf("case %d", i), "stdin": fmt.Sprintf("%d %d\n", i, i),
			"expected": fmt.Sprintf("%d\n", 2*i)})
	}
	e.addTest("big", map[string]any{"kind": "py", "name": "test_add.py", "source": "from solution import add\n\n" +
		"def test_a():\n    assert add(1, 2) == 3\n\ndef test_b():\n    assert add(-1, 1) == 0\n\n" +
		"def test_c():\n    assert add('a', 'b') == 'ab'\n\ndef test_d():\n    assert add([1], [2]) == [1, 2]\n"})

	// The class: its homes under the data folder, each with a program.
	specs := make([]sandbox.Spec, class)
	for i := range class {
		name := fmt.Sprintf("c%02d", i)
		home := filepath.Join(e.dir, "class", name)
		if err := os.MkdirAll(home, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "hello.py"), []byte("print('hello')\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		_ = os.Lchown(home, 1000, 1000)
		mnt, err := sandbox.Bind(home, "/home/student", false)
		if err != nil {
			b.Fatal(err)
		}
		specs[i] = sandbox.Spec{User: name, Role: auth.RoleStudent, Key: "tab", File: "/home/student/hello.py",
			Mounts: []sandbox.Mount{mnt}}
	}
	var mu sync.Mutex
	var phase string
	clicks := map[string][]time.Duration{}
	rec := func(d time.Duration) { mu.Lock(); clicks[phase] = append(clicks[phase], d); mu.Unlock() }
	setPhase := func(p string) { mu.Lock(); phase = p; mu.Unlock() }
	setPhase("alone")
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, spec := range specs {
		wg.Go(func() { student(cctx, b, e.m, spec, rec) })
	}
	time.Sleep(30 * time.Second) // the class alone: the baseline

	setPhase("regrade")
	for b.Loop() {
		began := time.Now()
		nextLog := began.Add(10 * time.Second)
		e.must(e.do("prof", "POST", "/api/course/items/big/grading/regrade", nil), 202)
		for {
			r := e.must(e.do("prof", "GET", "/api/course/items/big/grading/regrade", nil), 200)
			rg := decode[Regrade](b, r, "regrade")
			if time.Now().After(nextLog) {
				b.Logf("regrade: %d of %d after %v", rg.Done, rg.Total, time.Since(began).Round(time.Second))
				nextLog = nextLog.Add(10 * time.Second)
			}
			if rg.FinishedAt != nil {
				if rg.Failed > 0 {
					b.Errorf("%d of %d submissions were not graded", rg.Failed, rg.Total)
				}
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		took := time.Since(began)
		b.ReportMetric(took.Seconds(), "regrade-s")
	}
	stop()
	wg.Wait()
	// Every run passed every test.
	r := e.must(e.do("prof", "GET", "/api/course/items/big/grading/results", nil), 200)
	for _, s := range decode[[]Summary](b, r, "students") {
		if s.Run != nil && (s.Run.Score != 10 || s.Run.MaxScore != 10) {
			b.Errorf("%s: %v / %v", s.Username, s.Run.Score, s.Run.MaxScore)
		}
	}
	for _, p := range []string{"alone", "regrade"} {
		b.ReportMetric(float64(percentile(clicks[p], 0.5).Milliseconds()), "click-p50-ms-"+p)
		b.ReportMetric(float64(percentile(clicks[p], 0.99).Milliseconds()), "click-p99-ms-"+p)
		b.ReportMetric(float64(len(clicks[p])), "clicks-"+p)
	}
}
