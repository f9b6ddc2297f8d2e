package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Control calls are bounded; attach and wait live as long as the box. The
// bound only guards against a hung engine: under a CPU storm on a small
// machine a create can legitimately take many seconds.
const (
	controlTimeout = 60 * time.Second
	exitWait       = 20 * time.Second
)

// box is one started container with its TTY attached. A box is first a
// spare or directly a session's container; exactly one goroutine owns its
// teardown.
type box struct {
	m       *Manager
	id      string // container id
	name    string
	session string // session id, also the pyide.session label
	spec    Spec
	hj      client.HijackedResponse
	cg      cgroupFiles
	hasCG   bool
	created time.Time

	exited     chan struct{} // closed when the wait call returned
	waiting    bool          // a wait call was registered: exited will close
	exitStatus int64
	waitErr    error

	// link speaks to the container's supervisor when containers are
	// reused (nil otherwise: the TTY is the REPL's own).
	link *link
	// oomBase is the cgroup's OOM kills when the container started: one
	// more means a REPL hit the memory limit, and the container goes.
	oomBase int64
	// uses counts the sessions the container has served: the first takes
	// the container's own session id, each later one a new id.
	uses int

	cancel      context.CancelFunc // ends the wait call
	destroyOnce sync.Once
}

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// launch creates, attaches, registers the exit wait, and starts a container:
// attach and wait come before start so no output and no exit is missed.
func (m *Manager) launch(ctx context.Context, spec Spec, spare bool) (_ *box, err error) {
	id := newID()
	cfg, hc := m.containerConfig(spec, id, spare)
	if err := Validate(hc, cfg); err != nil {
		return nil, err
	}
	if !m.own(id) {
		return nil, ErrClosed
	}
	defer m.launches.Done()
	b := &box{m: m, session: id, name: containerName(spec.User, id), spec: spec, created: m.opts.Clock.Now(), exited: make(chan struct{})}
	defer func() {
		if err != nil {
			b.destroy()
		}
	}()
	// The engine resolves bind sources by name at create and again at
	// start: each time, just before, they must still be the folders that
	// were approved (a spare's were approved a while ago).
	if err := checkMounts(m.opts.MountRoot, spec.Mounts); err != nil {
		return b, err
	}
	b.id, err = m.create(ctx, b.name, cfg, hc)
	if err != nil {
		return b, err
	}
	// The bound covers the handshake only: the attached stream is not tied
	// to the context once it is returned.
	actx, acancel := context.WithTimeout(ctx, controlTimeout)
	att, err := m.cli.ContainerAttach(actx, b.id, client.ContainerAttachOptions{
		Stream: true, Stdin: true, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	})
	acancel()
	if err != nil {
		return b, fmt.Errorf("sandbox: attach: %w", err)
	}
	b.hj = att.HijackedResponse
	if m.reuse() {
		b.link = newLink(b)
		go b.link.read()
	}
	wctx, cancel := context.WithCancel(m.ctx)
	b.cancel = cancel
	wr := m.cli.ContainerWait(wctx, b.id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	select {
	case err := <-wr.Error: // the request itself failed; nothing is waiting
		return b, fmt.Errorf("sandbox: wait: %w", err)
	default:
	}
	b.waiting = true
	go b.waitExit(wr)
	if err := checkMounts(m.opts.MountRoot, spec.Mounts); err != nil {
		return b, err
	}
	cctx, ccancel := context.WithTimeout(ctx, controlTimeout)
	defer ccancel()
	if _, err := m.cli.ContainerStart(cctx, b.id, client.ContainerStartOptions{}); err != nil {
		return b, fmt.Errorf("sandbox: start: %w", err)
	}
	if b.cg, b.hasCG = findCgroup(b.id, 0); !b.hasCG {
		if ins, err := m.cli.ContainerInspect(cctx, b.id, client.ContainerInspectOptions{}); err == nil && ins.Container.State != nil {
			b.cg, b.hasCG = findCgroup(b.id, ins.Container.State.Pid)
		}
	}
	b.oomBase = -1
	if b.hasCG {
		b.oomBase = b.cg.oomKills()
	}
	return b, nil
}

// resetWait bounds a reset in place: every process of the old REPL ended,
// the scratch folders emptied, a fresh runner waiting.
const resetWait = 5 * time.Second

// renewed waits until the container's supervisor says a fresh runner
// waits after a reset, and checks from outside that nothing of the REPL
// before survived: the cgroup holds init, the supervisor and the new
// runner only, and the kernel killed nothing of it for its memory limit.
// Any doubt is an error: the container is not reused.
func (b *box) renewed(ctx context.Context) error {
	if b.link == nil {
		return errors.New("sandbox: this container cannot be reused")
	}
	t := time.NewTimer(resetWait)
	defer t.Stop()
	select {
	case <-b.link.readyCh():
	case <-b.link.failed:
		return fmt.Errorf("sandbox: reset failed: %s", b.link.reason())
	case <-b.exited:
		return errors.New("sandbox: the container ended")
	case <-t.C:
		return errors.New("sandbox: no fresh runner after a reset")
	case <-ctx.Done():
		return ctx.Err()
	}
	if !b.hasCG {
		return nil
	}
	if n := b.cg.oomKills(); n < 0 || b.oomBase < 0 || n != b.oomBase {
		return fmt.Errorf("sandbox: the memory limit was hit (%d OOM kills)", n)
	}
	// gVisor's own threads live in the cgroup too: only runc's count is
	// exact (tini, the supervisor, the runner).
	if b.m.opts.Runtime != "runsc" {
		if n := b.cg.tasks(); n < 0 || n > 3 {
			return fmt.Errorf("sandbox: %d tasks after a reset, want 3", n)
		}
	}
	return nil
}

// create survives a name conflict: the name is derived from a fresh session
// id, so a conflict can only be an earlier attempt of this very call (e.g. a
// create that timed out on our side but succeeded in the engine).
//
// The engine goes on making a container after its caller hangs up, so a
// create is never cut short by ctx (only by controlTimeout): a server
// shutting down that gave up halfway would leave behind a container made a
// moment later. When ctx ends meanwhile, what was made is removed at once.
func (m *Manager) create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig) (string, error) {
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), controlTimeout)
		res, err := m.cli.ContainerCreate(cctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
		cancel()
		if err == nil && ctx.Err() != nil {
			_ = m.removeContainer(context.WithoutCancel(ctx), res.ID)
			return "", fmt.Errorf("sandbox: create: %w", ctx.Err())
		}
		if err == nil {
			return res.ID, nil
		}
		if ctx.Err() != nil {
			// Whatever the engine made under this name goes, rather than
			// wait for a reconcile.
			_ = m.removeContainer(context.WithoutCancel(ctx), name)
			return "", fmt.Errorf("sandbox: create: %w", err)
		}
		if !cerrdefs.IsConflict(err) || attempt > 0 {
			return "", fmt.Errorf("sandbox: create: %w", err)
		}
		if err := m.removeContainer(ctx, name); err != nil {
			return "", fmt.Errorf("sandbox: create: replacing %s: %w", name, err)
		}
	}
}

func (b *box) waitExit(wr client.ContainerWaitResult) {
	select {
	case r := <-wr.Result:
		b.exitStatus = r.StatusCode
		if r.Error != nil && r.Error.Message != "" {
			b.waitErr = errors.New(r.Error.Message)
		}
	case err := <-wr.Error:
		b.waitErr = err
		b.exitStatus = -1
	}
	close(b.exited)
}

// gone is closed once the container has exited (for the spare pool).
func (b *box) gone() <-chan struct{} { return b.exited }

// awaitExit waits for the exit with a bound, so a lost wait call cannot
// keep a session alive forever.
func (b *box) awaitExit() {
	if !b.waiting {
		return
	}
	t := time.NewTimer(exitWait)
	defer t.Stop()
	select {
	case <-b.exited:
	case <-t.C:
		b.m.log.Warn("sandbox: no exit seen; removing anyway", "container", b.name)
	}
}

// exitCode is what the wait call reported, or -1 when it has not (yet).
func (b *box) exitCode() int {
	select {
	case <-b.exited:
		return int(b.exitStatus)
	default:
		return -1
	}
}

// inspectExit reports the exit code and whether the kernel OOM-killed it.
// gone means the container vanished under us (removed from outside).
func (b *box) inspectExit() (code int, oom, gone bool) {
	code = b.exitCode()
	if b.id == "" {
		return code, false, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	ins, err := b.m.cli.ContainerInspect(ctx, b.id, client.ContainerInspectOptions{})
	if err != nil {
		return code, false, cerrdefs.IsNotFound(err)
	}
	if st := ins.Container.State; st != nil {
		if !st.Running {
			code = st.ExitCode
		}
		oom = st.OOMKilled
	}
	return code, oom, false
}

// destroy kills and removes the container in one forced removal, waits
// for the exit it causes, and forgets it. Safe to call more than once and
// from any state.
func (b *box) destroy() {
	b.destroyOnce.Do(func() {
		if b.id != "" {
			if err := b.m.removeContainer(context.Background(), b.id); err != nil {
				b.m.log.Warn("sandbox: remove failed", "container", b.name, "error", err)
			}
			b.awaitExit()
		}
		if b.hj.Conn != nil {
			b.hj.Close()
		}
		if b.cancel != nil {
			b.cancel()
		}
		b.m.disown(b.session)
	})
}

func (m *Manager) removeContainer(ctx context.Context, id string) error {
	_, err := m.removeIfPresent(ctx, id)
	return err
}

// removeIfPresent force-removes a container; removed is false when it was
// already gone or its removal was in progress (a teardown racing a sweep).
func (m *Manager) removeIfPresent(ctx context.Context, id string) (removed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	_, err = m.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err), cerrdefs.IsConflict(err): // with force, a conflict means a removal is under way
		return false, nil
	}
	return false, err
}

// cpuUsage is the container's cumulative CPU time: the cgroup file when the
// host's cgroup tree is visible, else one stats sample from the engine.
func (b *box) cpuUsage(ctx context.Context) (time.Duration, error) {
	if b.hasCG {
		return b.cg.cpuUsage()
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	res, err := b.m.cli.ContainerStats(ctx, b.id, client.ContainerStatsOptions{})
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return 0, err
	}
	return time.Duration(st.CPUStats.CPUUsage.TotalUsage), nil
}

// settle waits until the runner has finished starting Python and is
// blocked reading its control line, so a Run served from this spare pays
// nothing for interpreter start-up. It asks the kernel (a process of the
// container inside read(0, ...)); where /proc does not tell, it waits for
// the container's CPU use to go quiet, and without cgroup files for a fixed
// time. Bounded either way: a spare is usable, only slower, before it settles.
func (b *box) settle(ctx context.Context) {
	if b.link != nil {
		// The supervisor says when its runner waits.
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-b.link.readyCh():
		case <-b.link.failed:
		case <-b.exited:
		case <-t.C:
		case <-ctx.Done():
		}
		return
	}
	const (
		firstStep = 5 * time.Millisecond
		maxStep   = 40 * time.Millisecond
		maxWait   = 5 * time.Second
		quiet     = 200 * time.Microsecond // CPU per 5 ms that counts as idle
	)
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		case <-b.exited:
			return false
		}
	}
	if !b.hasCG {
		wait(300 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(maxWait)
	prev, _ := b.cg.cpuUsage()
	idle := 0
	// Python starts in ~100 ms on an idle machine and takes seconds on a
	// busy one, where polling /proc every 5 ms for every spare would add to
	// the load: the step grows.
	step := firstStep
	for ; time.Now().Before(deadline) && wait(step); step = min(step*3/2, maxStep) {
		waiting, known := b.cg.readingStdin()
		if known {
			if waiting {
				return
			}
			continue
		}
		cur, err := b.cg.cpuUsage()
		if err != nil {
			return
		}
		if cur-prev < quiet*time.Duration(step/firstStep) {
			idle++
		} else {
			idle = 0
		}
		if idle >= 4 {
			return
		}
		prev = cur
	}
}
