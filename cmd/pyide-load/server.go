package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/pythonide/pyide/pkg/datadir"
)

// localServer is a `pyide serve` this program started: a fresh binary, a
// temporary data folder and the embedded database.
type localServer struct {
	bin  string
	data string
	env  []string
	cmd  *exec.Cmd
	done chan error
	base string // http://127.0.0.1:port once it said so

	mu   sync.Mutex
	warm map[string]bool // sandbox session id → started from a warm spare
	tail []string        // last log lines, for a failure message
}

// buildServer compiles cmd/pyide into dir, so the measured server is the
// code in this work tree and not whatever binary lies around.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "pyide")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pythonide/pyide/cmd/pyide")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the server: %w", err)
	}
	return bin, nil
}

// serverID is the pyide.server label the server puts on its containers
// (cmd/pyide derives it from the data path the same way).
func serverID(dataPath string) string {
	sum := sha256.Sum256([]byte(dataPath))
	return "pyide-" + hex.EncodeToString(sum[:4])
}

// serverEnv is this process's environment for the server: DATABASE_URL is
// dropped so the embedded default runs; PORT and IDE_DATA_PATH are ours.
// Everything else (MAX_CONCURRENT_EXECUTIONS, BCRYPT_COST, …) passes
// through, so a scenario can set it from the make command line.
func serverEnv(data string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DATABASE_URL", "PORT", "IDE_DATA_PATH", "PUBLIC_URL":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "IDE_DATA_PATH="+data, "PORT=127.0.0.1:0")
}

// newDataDir makes a data folder the unprivileged postgres user can reach
// when we run as root.
func newDataDir() (string, error) {
	parent, err := os.MkdirTemp("", "pyide-load-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		return "", err
	}
	return filepath.Join(parent, "data"), nil
}

// importRoster creates n students through the CLI, as a professor would,
// and returns their passwords in roster order.
func importRoster(ctx context.Context, bin string, env []string, dir string, names []string) ([]account, error) {
	roster := filepath.Join(dir, "roster.csv")
	var b strings.Builder
	b.WriteString("username,display_name,role\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s,Load Student %s,student\n", n, n)
	}
	if err := os.WriteFile(roster, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	pwFile := filepath.Join(dir, "passwords.csv")
	_ = os.Remove(pwFile) // the CLI refuses to overwrite one
	cmd := exec.CommandContext(ctx, bin, "user", "import", roster, "--passwords", pwFile)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pyide user import: %w\n%s", err, out)
	}
	accts, err := readPasswords(pwFile)
	if err != nil {
		return nil, err
	}
	byName := map[string]account{}
	for _, a := range accts {
		byName[a.username] = a
	}
	res := make([]account, 0, len(names))
	for _, n := range names {
		a, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("pyide user import wrote no password for %s (did the user exist already?)", n)
		}
		res = append(res, a)
	}
	return res, nil
}

type account struct{ username, password string }

// readPasswords reads `username,password` lines (a header line is skipped).
func readPasswords(path string) ([]account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var res []account
	for _, r := range rows {
		if len(r) < 2 || r[0] == "username" {
			continue
		}
		res = append(res, account{username: r[0], password: r[1]})
	}
	return res, nil
}

// startServer runs `pyide serve` and waits until it reports its URL. Its
// JSON log goes to logPath; the generator reads it for the warm/cold flag
// of every sandbox start.
func startServer(ctx context.Context, bin string, env []string, data, logPath string) (*localServer, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	s := &localServer{bin: bin, data: data, env: env, done: make(chan error, 1), warm: map[string]bool{}}
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	// If this program dies the server must not outlive it with hundreds of
	// containers: the kernel sends it SIGTERM, its own clean shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Stdout = io.Discard // the first admin password: not ours to keep
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	s.cmd = cmd
	urlCh := make(chan string, 1)
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logFile.Write(append(line, '\n'))
			s.note(line, urlCh)
		}
		s.done <- cmd.Wait()
	}()
	select {
	case u := <-urlCh:
		s.base = u
		return s, nil
	case err := <-s.done:
		s.done <- err
		return nil, fmt.Errorf("the server ended before serving (%w); its last lines:\n%s", err, s.lastLines())
	case <-time.After(3 * time.Minute):
	case <-ctx.Done():
	}
	_ = s.stop(time.Minute)
	return nil, fmt.Errorf("the server did not report its URL; its last lines:\n%s", s.lastLines())
}

// note reads one log line: the URL, and the warm flag of sandbox starts.
func (s *localServer) note(line []byte, urlCh chan string) {
	var rec struct {
		Msg     string `json:"msg"`
		URL     string `json:"url"`
		Session string `json:"session"`
		Warm    *bool  `json:"warm"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tail = append(s.tail, string(line))
	if len(s.tail) > 40 {
		s.tail = s.tail[1:]
	}
	if json.Unmarshal(line, &rec) != nil {
		return
	}
	switch {
	case rec.Msg == "pyide is serving" && rec.URL != "":
		select {
		case urlCh <- rec.URL:
		default:
		}
	case rec.Msg == "sandbox: session started" && rec.Session != "" && rec.Warm != nil:
		s.warm[rec.Session] = *rec.Warm
	}
}

func (s *localServer) lastLines() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// warmOf reports whether the server logged session id as a warm start.
func (s *localServer) warmOf(id string) (warm, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	warm, known = s.warm[id]
	return warm, known
}

func (s *localServer) pid() int { return s.cmd.Process.Pid }

// postgresPID is the embedded cluster's postmaster: pg_ctl daemonises it,
// so it is not a child of the server.
func (s *localServer) postgresPID() int {
	b, err := os.ReadFile(filepath.Join(datadir.Layout{Root: s.data}.Cluster(), "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// stop asks the server to shut down (SIGTERM: close sockets, remove its
// sandboxes, stop the cluster) and kills it only past the deadline.
func (s *localServer) stop(wait time.Duration) error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("the server exited with %w; its last lines:\n%s", err, s.lastLines())
		}
		return err
	case <-time.After(wait):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("the server did not stop within %s of SIGTERM and was killed", wait)
	}
}

// classServer is the server the class works against: one this run started
// (srv), or one already running. filters find its sandbox containers.
type classServer struct {
	srv     *localServer // nil: a running server we did not start
	url     string
	accts   []account
	filters client.Filters
	stopped bool
	undo    []func() // run newest first by close
}

// errNoRoster: a running server, and no say where its students come from.
var errNoRoster = errors.New("with -server, say where the students come from: -passwords FILE, or -data DIR and -bin PYIDE")

// openClassServer starts a server with a temporary data folder and the
// embedded database, or, with -server, uses the running one; either way it
// finds the class's accounts. It may rename the students (names) to the
// accounts of a -passwords file.
func openClassServer(ctx context.Context, o options, names []string, r *Result) (_ *classServer, err error) {
	cs := &classServer{}
	defer func() {
		if err != nil {
			cs.close()
		}
	}()
	if o.server == "" {
		err = cs.startLocal(ctx, o, names, r)
	} else {
		err = cs.useRunning(ctx, o, names, r)
	}
	if err != nil {
		return cs, err
	}
	return cs, cs.chooseOwnPasswords(ctx)
}

// chooseOwnPasswords does, before class, what each student does at their
// first login with a handed-out password: log in and choose their own (the
// server lets them do nothing else until then). The class then logs in
// with the passwords they chose. Two at a time per CPU: bcrypt is the work.
func (cs *classServer) chooseOwnPasswords(ctx context.Context) error {
	logf("each student chooses their own password (first login)")
	sem := make(chan struct{}, 2*runtime.NumCPU())
	errs := make([]error, len(cs.accts))
	var wg sync.WaitGroup
	for i := range cs.accts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = firstLogin(ctx, cs.url, &cs.accts[i])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// firstLogin logs a in and, if the server asks for it, changes a's password
// to one of its own.
func firstLogin(ctx context.Context, base string, a *account) error {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: time.Minute}
	post := func(path string, v any) (*http.Response, error) {
		b, _ := json.Marshal(v)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", base)
		return hc.Do(req)
	}
	resp, err := post("/api/auth/login", map[string]string{"username": a.username, "password": a.password})
	if err != nil {
		return err
	}
	var login struct {
		MustChange bool `json:"must_change_password"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("first login of %s: %d", a.username, resp.StatusCode)
	}
	if login.MustChange {
		own := a.password + "-own"
		resp, err := post("/api/auth/password", map[string]string{"current_password": a.password, "new_password": own})
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s choosing a password: %d", a.username, resp.StatusCode)
		}
		a.password = own
	}
	resp, err = post("/api/auth/logout", nil)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func (cs *classServer) startLocal(ctx context.Context, o options, names []string, r *Result) error {
	r.Config.Server = "local"
	work, err := os.MkdirTemp("", "pyide-load-work-")
	if err != nil {
		return err
	}
	cs.undo = append(cs.undo, func() { os.RemoveAll(work) })
	bin := o.bin
	if bin == "" {
		logf("building the server")
		if bin, err = buildServer(ctx, work); err != nil {
			return err
		}
	}
	data, err := newDataDir()
	if err != nil {
		return err
	}
	cs.undo = append(cs.undo, func() { os.RemoveAll(filepath.Dir(data)) })
	env := serverEnv(data)
	t0 := time.Now()
	logf("creating %d students with pyide user import", o.n)
	if cs.accts, err = importRoster(ctx, bin, env, work, names); err != nil {
		return err
	}
	r.Config.RosterImport = time.Since(t0).Round(time.Millisecond).String()
	logf("starting the server")
	if cs.srv, err = startServer(ctx, bin, env, data, filepath.Join(o.out, "server.log")); err != nil {
		return err
	}
	cs.url = cs.srv.base
	// On an early return the server still gets its clean shutdown.
	cs.undo = append(cs.undo, func() {
		if !cs.stopped {
			_ = cs.srv.stop(2 * time.Minute)
		}
	})
	cs.filters = make(client.Filters).Add("label", "pyide.managed=true").Add("label", "pyide.server="+serverID(data))
	return nil
}

func (cs *classServer) useRunning(ctx context.Context, o options, names []string, r *Result) error {
	r.Config.Server = o.server
	cs.url = o.server
	switch {
	case o.passwords != "":
		all, err := readPasswords(o.passwords)
		if err != nil {
			return err
		}
		if len(all) < o.n {
			return fmt.Errorf("%s has %d accounts, -n wants %d", o.passwords, len(all), o.n)
		}
		cs.accts = all[:o.n]
		for i := range names {
			names[i] = cs.accts[i].username
		}
	case o.data != "" && o.bin != "":
		env := append(os.Environ(), "IDE_DATA_PATH="+o.data)
		work, err := os.MkdirTemp("", "pyide-load-work-")
		if err != nil {
			return err
		}
		cs.undo = append(cs.undo, func() { os.RemoveAll(work) })
		t0 := time.Now()
		if cs.accts, err = importRoster(ctx, o.bin, env, work, names); err != nil {
			return err
		}
		r.Config.RosterImport = time.Since(t0).Round(time.Millisecond).String()
	default:
		return errNoRoster
	}
	cs.filters = make(client.Filters).Add("label", "pyide.managed=true")
	return nil
}

// stopServer stops the server this run started, recording how that went.
func (cs *classServer) stopServer(rec *recorder, r *Result) {
	if cs.srv == nil {
		return
	}
	logf("stopping the server")
	t1 := time.Now()
	cs.stopped = true
	if err := cs.srv.stop(3 * time.Minute); err != nil {
		r.Cleanup.ServerStopErr = err.Error()
		rec.fail("server_stop", err.Error())
	}
	r.Cleanup.ServerStopMS = ms(time.Since(t1))
}

// close undoes what openClassServer did, newest first: the server stops
// (unless stopServer did), then its folders go.
func (cs *classServer) close() {
	for i := len(cs.undo) - 1; i >= 0; i-- {
		cs.undo[i]()
	}
	cs.undo = nil
}
