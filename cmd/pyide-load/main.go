// Command pyide-load simulates a whole class against a PythonIDE server and
// publishes the numbers: N students log in at once, open the IDE's
// WebSocket, save and run files, type at the REPL at a human pace, now and
// then run something heavy or hostile, and leave. It measures what they
// would feel (login, click to first output warm and cold, keystroke round
// trip, save) and what the machine pays (server and database CPU and
// memory, sandbox memory, containers left behind), runs the naive
// `docker run` per click at the same N for comparison, and writes
// result.json, a one-page report.html and a text summary.
//
// It must never: talk to a server that is not on loopback (it logs in as
// hundreds of users), use a Docker engine that is not local, remove a
// container it did not create (the server's sandboxes are only counted),
// or outlive its -timeout.
//
// Usage: pyide-load -n 60 -duration 3m   (make bench-class N=60)
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// bellGrace is how long an action in progress at the end of class may
// still take.
const bellGrace = time.Minute

type options struct {
	n         int
	duration  time.Duration
	timeout   time.Duration
	server    string
	out       string
	baseline  bool
	seed      uint64
	bin       string
	passwords string
	data      string
	image     string
	think     thinkRange
	ab        bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 60, "students")
	flag.DurationVar(&o.duration, "duration", 3*time.Minute, "length of the class, from the first login")
	flag.DurationVar(&o.timeout, "timeout", 0, "hard limit for the whole run (default: duration + 20m)")
	flag.StringVar(&o.server, "server", "", "URL of a running server on loopback; default: build and start one with a temporary data folder and the embedded database")
	flag.StringVar(&o.out, "out", "", "folder for results (default artifacts/load/n<N>-<time>/)")
	flag.BoolVar(&o.baseline, "baseline", true, "also measure the naive docker run per click at the same N")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed for the students' behaviour")
	flag.StringVar(&o.bin, "bin", "", "pyide binary to run (default: go build ./cmd/pyide)")
	flag.StringVar(&o.passwords, "passwords", "", "with -server: existing accounts, a username,password CSV (the first N are used)")
	flag.StringVar(&o.data, "data", "", "with -server: its IDE_DATA_PATH, to create the students with `pyide user import` (DATABASE_URL from the environment)")
	o.think = thinkRange{2 * time.Second, 8 * time.Second}
	flag.Var(&o.think, "think", "each student's pause between two actions, drawn evenly from `LO-HI` (e.g. 6s-24s for a calmer class)")
	flag.StringVar(&o.image, "image", "", "sandbox image for the baseline (default $SANDBOX_IMAGE or pyide-sandbox:latest)")
	flag.BoolVar(&o.ab, "ab", false, "run the class twice, the same students and seed: first with a new container per Run (SANDBOX_REUSE=false), then with containers reused, and compare")
	flag.Parse()
	if o.n < 1 || o.duration <= 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if o.timeout == 0 {
		o.timeout = o.duration + 20*time.Minute
	}
	if o.image == "" {
		o.image = os.Getenv("SANDBOX_IMAGE")
	}
	if o.image == "" {
		o.image = "pyide-sandbox:latest"
	}
	if o.out == "" {
		o.out = filepath.Join("artifacts", "load", fmt.Sprintf("n%d-%s", o.n, time.Now().Format("20060102-150405")))
	}
	var code int
	var err error
	if o.ab {
		code, err = runAB(o)
	} else {
		_, code, err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pyide-load:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s pyide-load: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// run is the whole class; its exit code is 1 when containers were left
// behind (the one outcome that must never pass silently).
func run(o options) (*Result, int, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, 1, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	docker, err := localDocker(ctx)
	if err != nil {
		return nil, 1, err
	}
	defer docker.Close()
	r := newResult(o)
	tag, names := studentNames(o.n)
	cs, err := openClassServer(ctx, o, names, &r)
	if errors.Is(err, errNoRoster) {
		return nil, 2, err
	}
	if err != nil {
		return nil, 1, err
	}
	defer cs.close()
	base, err := loopbackURL(cs.url)
	if err != nil {
		return nil, 1, err
	}
	logf("server at %s; results in %s", base, o.out)
	if limit, err := strconv.Atoi(cmp.Or(os.Getenv("MAX_CONCURRENT_EXECUTIONS"), "150")); err == nil && cs.srv != nil && o.n > limit {
		logf("warning: N=%d is above MAX_CONCURRENT_EXECUTIONS=%d: students past the cap wait in the queue for a REPL that never ends (run_no_started)", o.n, limit)
	}

	rec := newRecorder()
	rec.setCutoff(ctx)
	cl := &class{
		base: base, origin: base.String(), rec: rec, think: o.think,
		hc: &http.Transport{MaxIdleConns: o.n + 16, MaxIdleConnsPerHost: o.n + 16, IdleConnTimeout: 90 * time.Second},
	}
	defer cl.hc.CloseIdleConnections()
	// Sample the quiet machine for a few seconds, then begin the class.
	cl.start = time.Now().Add(4 * time.Second)
	smp := &sampler{start: cl.start, serverPID: func() int { return 0 }, pgPID: func() int { return 0 },
		metricsURL: base.String() + "/metrics", docker: docker, filters: cs.filters}
	if cs.srv != nil {
		smp.serverPID, smp.pgPID = cs.srv.pid, cs.srv.postgresPID
	}
	stopSampling := startSampling(ctx, smp)
	defer stopSampling()

	students, err := holdClass(ctx, o, cl, smp, cs, names, &r)
	if err != nil {
		return nil, 1, err
	}
	dismiss(ctx, students, docker, cs, names, &r)
	stopSampling()
	r.Samples = smp.snapshot()
	if m := smp.metrics(); m != nil {
		r.Click.ServerWarm, r.Click.ServerCold = m[`pyide_sandbox_starts_total{path="warm"}`], m[`pyide_sandbox_starts_total{path="cold"}`]
		r.REPL.ServerEcho = histogramSummary(m, "pyide_terminal_echo_seconds")
	}
	cs.stopServer(rec, &r)
	r.Cleanup.LeftOurs, _ = countContainers(docker, cs.filters, names, cs.srv == nil)
	r.Cleanup.LeftAllManaged, _ = countContainers(docker, make(client.Filters).Add("label", "pyide.managed=true"), nil, false)
	if o.baseline && ctx.Err() == nil {
		logf("baseline: %d docker runs at once", o.n)
		b := runBaseline(ctx, docker, o.image, o.n, tag)
		r.Baseline = &b
	}

	finish(&r, rec, cs.srv, o)
	code, err := publish(&r, o.out, ctx.Err())
	return &r, code, err
}

// publish writes the results and prints the summary. Containers left
// behind fail the run, whatever else happened.
func publish(r *Result, dir string, runErr error) (int, error) {
	if err := writeResults(r, dir); err != nil {
		return 1, err
	}
	fmt.Println(r.summaryText())
	fmt.Printf("results: %s\n", dir)
	if r.Cleanup.LeftOurs != 0 || r.Cleanup.LeftAfterLogout != 0 {
		return 1, fmt.Errorf("containers were left behind")
	}
	return 0, runErr
}

// localDocker connects to the Docker engine on this machine, and to no
// other.
func localDocker(ctx context.Context) (*client.Client, error) {
	if err := loopbackDocker(os.Getenv("DOCKER_HOST")); err != nil {
		return nil, err
	}
	docker, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	if _, err := docker.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		docker.Close()
		return nil, fmt.Errorf("the Docker engine does not answer (bash .ci/docker-up.sh starts one here): %w", err)
	}
	return docker, nil
}

// newResult is a result with what the run was asked to do and on what
// machine.
func newResult(o options) Result {
	var r Result
	r.Config.N, r.Config.Duration, r.Config.Seed, r.Config.Think = o.n, o.duration.String(), o.seed, o.think.String()
	r.Config.Started, r.Config.Cores = time.Now(), runtime.NumCPU()
	r.Config.MemTotal = statusKB("/proc/meminfo", "MemTotal") << 10
	r.Config.ServerEnv = map[string]string{}
	for _, k := range []string{"MAX_CONCURRENT_EXECUTIONS", "SANDBOX_REUSE", "SANDBOX_RUNTIME", "BCRYPT_COST", "MEMORY_LIMIT_MB", "DB_MAX_CONNS", "RUNS_PER_MINUTE", "DISCONNECT_GRACE", "IDLE_TIMEOUT"} {
		if v := os.Getenv(k); v != "" {
			r.Config.ServerEnv[k] = v
		}
	}
	return r
}

// studentNames are n usernames unique to this run, so a reused server never
// mixes runs; tag is what they share.
func studentNames(n int) (tag string, names []string) {
	tag = strconv.FormatInt(time.Now().Unix()%(36*36*36*36), 36)
	names = make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("load%s-s%03d", tag, i+1)
	}
	return tag, names
}

// startSampling samples in the background until the returned stop is
// called; stop waits for the last sample and may be called again.
func startSampling(ctx context.Context, smp *sampler) (stop func()) {
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); smp.run(sctx) }()
	return func() { cancel(); <-done }
}

// holdClass waits for the start of class, logs everyone in at once and
// teaches until the class ends.
func holdClass(ctx context.Context, o options, cl *class, smp *sampler, cs *classServer, names []string, r *Result) ([]*student, error) {
	select {
	case <-time.After(time.Until(cl.start)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	students := make([]*student, o.n)
	for i, a := range cs.accts {
		students[i] = newStudent(cl, a, o.seed*1_000_003+uint64(i))
	}
	classCtx, endClass := context.WithDeadline(ctx, cl.start.Add(o.duration))
	defer endClass()
	r.Logins.WallMS, r.Logins.Failed = loginAll(ctx, students)
	logf("%d logins in %.2f s (%d failed)", o.n, r.Logins.WallMS/1000, r.Logins.Failed)
	r.Click.ClassWarmMS = teach(ctx, classCtx, cl, students, smp, names, cs.srv == nil)
	cl.rec.setCutoff(ctx)
	return students, nil
}

// dismiss ends the class: tabs close and everyone logs out, which ends
// their sandboxes on the server; it records how long the server took to
// remove them.
func dismiss(ctx context.Context, students []*student, docker *client.Client, cs *classServer, names []string, r *Result) {
	logf("class over; closing sockets and logging out")
	t0 := time.Now()
	forEach(students, 32, func(s *student) {
		s.close()
		lctx, c := context.WithTimeout(context.Background(), 30*time.Second)
		defer c()
		s.logout(lctx)
	})
	// Only the students' sandboxes: the server keeps its own warm grading
	// container (pyide.role=batch) until it stops, when LeftOurs counts it.
	n, waited := waitContainers(ctx, docker, cs.filters, names, true, 2*time.Minute)
	r.Cleanup.LeftAfterLogout, r.Cleanup.DrainMS = n, ms(waited)
	logf("%d sandbox containers %.1f s after logout (closing took %.1f s)", n, waited.Seconds(), time.Since(t0).Seconds())
}

// loginAll logs every student in at the same moment: the start of class.
func loginAll(ctx context.Context, students []*student) (wallMS float64, failed int) {
	gate := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, s := range students {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if err := s.login(ctx); err != nil {
				s.c.rec.fail("login", err.Error())
				mu.Lock()
				failed++
				mu.Unlock()
				s.http = nil
			}
		}()
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	return ms(time.Since(t0)), failed
}

// teach runs the class until classCtx ends: everyone connects and saves,
// waits until the server has warmed a spare for everyone, clicks Run at
// the same moment (the professor says "run it now"), then works alone at a
// human pace. It returns how long the class took to become warm.
func teach(ctx, classCtx context.Context, cl *class, students []*student, smp *sampler, names []string, byUser bool) float64 {
	// After the bell an action in progress gets a minute to finish; then it
	// is cut off and counted as such, not as an error (a run queued behind
	// REPLs that never end would otherwise hold the class for minutes).
	end, _ := classCtx.Deadline()
	actCtx, cancel := context.WithDeadline(ctx, end.Add(bellGrace))
	defer cancel()
	cl.rec.setCutoff(actCtx)
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	connected := 0
	var mu sync.Mutex
	t0 := time.Now()
	for _, s := range students {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ok := s.http != nil
			if ok {
				if err := s.connect(ctx); err != nil {
					cl.rec.fail("ws_dial", err.Error())
					ok = false
				} else {
					mu.Lock()
					connected++
					mu.Unlock()
					ok = s.save(ctx, "main.py", []byte(s.hello()))
				}
			}
			ready.Done()
			<-gate
			if !ok {
				return
			}
			s.runFile(actCtx, "stampede", "main.py", s.hello())
			s.work(classCtx, actCtx)
		}()
	}
	ready.Wait()
	warmMS := waitWarm(ctx, smp.docker, smp.filters, names, byUser, connected, t0, 90*time.Second)
	logf("%d connected; a spare for each after %.1f s; everyone clicks Run", connected, warmMS/1000)
	close(gate)
	done.Wait()
	return warmMS
}

// waitWarm polls the engine until every connected student has a running
// spare, or the limit passes (then the stampede is partly cold, which the
// figures show). The server's spare gauge is no use here: it counts spares
// still being created, which a Run does not wait for.
func waitWarm(ctx context.Context, cli *client.Client, f client.Filters, names []string, byUser bool, want int, since time.Time, limit time.Duration) float64 {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := cli.ContainerList(lctx, client.ContainerListOptions{Filters: f.Clone().Add("label", "pyide.spare=true")})
		cancel()
		if err == nil {
			n := 0
			for _, c := range res.Items {
				if !byUser || slices.Contains(names, c.Labels["pyide.user"]) {
					n++
				}
			}
			if n >= want {
				return ms(time.Since(since))
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return -1
}

// work is a student's class after the first run: think, act, repeat. The
// end of class stops the thinking, never an action halfway (that would
// count the bell as a failed run); actions run on the hard deadline.
func (s *student) work(classCtx, ctx context.Context) {
	for s.think(classCtx, s.c.think.lo, s.c.think.hi) {
		if err := s.ws.Err(); err != nil {
			s.c.rec.fail("ws_broken", err.Error())
			if err := s.connect(ctx); err != nil {
				s.c.rec.fail("ws_dial", err.Error())
				return
			}
			s.repl = false
		}
		s.act(ctx)
	}
}

// forEach runs fn for every student, at most par at a time.
func forEach(students []*student, par int, fn func(*student)) {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, s := range students {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(s)
		}()
	}
	wg.Wait()
}

// countContainers counts the server's containers (all states). With
// byUser, only those of our students count: a shared server has others.
func countContainers(cli *client.Client, f client.Filters, names []string, byUser bool) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return -1, err
	}
	if !byUser {
		return len(res.Items), nil
	}
	n := 0
	for _, c := range res.Items {
		if slices.Contains(names, c.Labels["pyide.user"]) {
			n++
		}
	}
	return n, nil
}

// waitContainers polls until the server removed its containers.
func waitContainers(ctx context.Context, cli *client.Client, f client.Filters, names []string, byUser bool, limit time.Duration) (int, time.Duration) {
	t0 := time.Now()
	for {
		n, err := countContainers(cli, f, names, byUser)
		if (err == nil && n == 0) || time.Since(t0) > limit || ctx.Err() != nil {
			return n, time.Since(t0)
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// finish turns the recordings into the result.
func finish(r *Result, rec *recorder, srv *localServer, o options) {
	r.Histograms = map[string][]Bucket{}
	put := func(key string, ds []time.Duration) Summary {
		r.Histograms[key] = histogram(ds, bucketEdges)
		return summarize(ds)
	}
	r.Logins.Latency = put("login", rec.login.snapshot())
	r.Save = put("save", rec.save.snapshot())
	r.REPL.Line = put("repl_line", rec.line.snapshot())

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var keys []time.Duration
	for _, e := range rec.echoes {
		keys = append(keys, e.d)
	}
	r.REPL.Keystroke = put("repl_keystroke", keys)

	// Warm or cold: the server logs it for every start, keyed by the
	// session id the started event carries. Against a server we did not
	// start there is no log: then a start counts as warm when the spare had
	// 5 s to get ready (since the socket opened or the previous start).
	var warm, cold, unknown, all, stampede []time.Duration
	r.Click.Method = "server log (sandbox: session started, warm=true|false, matched by session id)"
	if srv == nil {
		r.Click.Method = "heuristic: warm when the spare had >= 5 s since the socket opened or the last start"
	}
	for _, c := range rec.clicks {
		all = append(all, c.d)
		if c.kind == "stampede" {
			stampede = append(stampede, c.d)
		}
		var w, known bool
		if srv != nil {
			w, known = srv.warmOf(c.session)
		} else {
			w, known = c.spareAge >= 5*time.Second, true
		}
		switch {
		case !known:
			unknown = append(unknown, c.d)
		case w:
			warm = append(warm, c.d)
		default:
			cold = append(cold, c.d)
		}
	}
	r.Click.All = summarize(all)
	r.Click.Warm = put("click_warm", warm)
	r.Click.Cold = put("click_cold", cold)
	r.Click.Unknown = summarize(unknown)
	r.Click.Stampede = put("click_stampede", stampede)
	if r.Baseline != nil {
		r.Histograms["baseline"] = r.Baseline.hist
		if r.Click.Stampede.P50 > 0 {
			r.Gain.P50 = r.Baseline.Click.P50 / r.Click.Stampede.P50
			r.Gain.P99 = r.Baseline.Click.P99 / r.Click.Stampede.P99
		}
	}

	r.Errors, r.ErrorExamples, r.Outcomes, r.Counts = rec.errors, rec.examples, rec.outcomes, rec.counts
	r.ErrorTotal = sumMap(rec.errors)
	r.resources(r.Samples, o.duration, o.n)

	// The time series: keystroke round trips per 5 s, with the server's
	// running sandboxes at each window's end.
	r.Timeline = windows(rec.echoes, 5*time.Second, o.duration)
	for i := range r.Timeline {
		r.Timeline[i].Sessions = -1
		for _, s := range r.Samples {
			if s.At <= r.Timeline[i].At {
				r.Timeline[i].Sessions = s.Running
			}
		}
	}
}

func writeResults(r *Result, dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "result.json"), b, 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.html"))
	if err != nil {
		return err
	}
	if err := writeReport(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(r.summaryText()), 0o644)
}

// thinkRange is the -think flag: a student's pause between two actions.
type thinkRange struct{ lo, hi time.Duration }

func (t *thinkRange) String() string { return t.lo.String() + "-" + t.hi.String() }

func (t *thinkRange) Set(v string) error {
	a, b, ok := strings.Cut(v, "-")
	lo, err1 := time.ParseDuration(a)
	hi, err2 := time.ParseDuration(b)
	if !ok || err1 != nil || err2 != nil || lo <= 0 || hi < lo {
		return fmt.Errorf("want LO-HI with 0 < LO <= HI, e.g. 2s-8s")
	}
	t.lo, t.hi = lo, hi
	return nil
}
