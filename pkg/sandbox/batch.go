package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// RoleBatch is the pyide.role label of a batch container (grading,
// similarity): it belongs to no student's session.
const RoleBatch = "batch"

// BatchOptions describe one kind of batch run: a container with the same
// hardening as a session's (Validate holds), no terminal and no mounts, that
// reads its whole input from stdin and whose output is read to the end.
// The grader and the similarity report run this way: what they need of the
// files tree comes in on stdin, so no folder is ever mounted.
type BatchOptions struct {
	// Name is the pyide.user label of the containers ("grader").
	Name string
	// Image defaults to the manager's; Cmd is required.
	Image string
	Cmd   []string
	Env   []string
	// MemoryMB defaults to the manager's. CPUShares is the container's
	// weight against others when the CPUs are busy (sessions have the
	// default, 1024); default 128, so students' programs come first.
	MemoryMB  int64
	CPUShares int64
	PidsLimit int64 // default the manager's
	// Warm is how many containers are kept started ahead, their program
	// waiting for its input: a run then skips the create and start.
	Warm int
}

// BatchResult is how a batch run ended.
type BatchResult struct {
	Stdout    []byte
	Truncated bool   // stdout went past the limit; the rest was dropped
	Stderr    []byte // its last 8 KB
	ExitCode  int
	OOM       bool
	TimedOut  bool
	Warm      bool
	Took      time.Duration
}

// Batches runs batch containers of one kind for a Manager. Its containers
// are the Manager's own (labelled, owned, reconciled, removed at Close).
type Batches struct {
	m    *Manager
	opts BatchOptions

	ready  chan *batchBox
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type batchBox struct {
	*box
	out, errOut *cappedBuffer
	copied      chan struct{} // the output copier is done
}

// NewBatches prepares batch runs; with Warm it starts keeping containers
// ready at once.
func (m *Manager) NewBatches(o BatchOptions) (*Batches, error) {
	if len(o.Cmd) == 0 {
		return nil, errors.New("sandbox: a batch needs a command")
	}
	if !userRe.MatchString(o.Name) {
		return nil, fmt.Errorf("sandbox: invalid batch name %q", o.Name)
	}
	if o.Image == "" {
		o.Image = m.opts.Image
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = m.opts.MemoryMB
	}
	if o.CPUShares == 0 {
		o.CPUShares = 128
	}
	if o.PidsLimit == 0 {
		o.PidsLimit = m.opts.PidsLimit
	}
	b := &Batches{m: m, opts: o, ready: make(chan *batchBox, max(o.Warm, 0)), wake: make(chan struct{}, 1)}
	b.ctx, b.cancel = context.WithCancel(m.ctx)
	if o.Warm > 0 {
		b.wg.Add(1)
		go b.keepWarm()
	}
	return b, nil
}

// Close removes the warm containers; runs under way end with their context.
func (b *Batches) Close() {
	b.cancel()
	b.wg.Wait()
	for {
		select {
		case bb := <-b.ready:
			bb.destroy()
		default:
			return
		}
	}
}

// keepWarm starts containers until Warm are ready, one at a time, and not
// while interactive sessions wait in the manager's queue: a student's
// click comes before a grading container.
func (b *Batches) keepWarm() {
	defer b.wg.Done()
	backoff := time.Second
	for {
		for len(b.ready) < cap(b.ready) && b.ctx.Err() == nil {
			if _, waiting := b.m.q.stats(); waiting > 0 {
				break
			}
			bb, err := b.launch(b.ctx)
			if err != nil {
				if b.ctx.Err() == nil {
					b.m.log.Warn("sandbox: starting a warm batch container", "batch", b.opts.Name, "error", err)
				}
				break
			}
			select {
			case b.ready <- bb:
				backoff = time.Second
			default:
				bb.destroy()
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-b.ctx.Done():
			t.Stop()
			return
		case <-b.wake:
			t.Stop()
		case <-t.C:
			backoff = min(2*backoff, 30*time.Second)
		}
	}
}

// config is a session's configuration turned into a batch's: no terminal,
// stdin closed after the input, the batch's command, memory and weight.
func (b *Batches) config(id string) (*container.Config, *container.HostConfig) {
	cfg, hc := b.m.containerConfig(Spec{User: b.opts.Name, Role: RoleBatch}, id, false)
	cfg.Tty = false
	cfg.OpenStdin = true
	cfg.StdinOnce = true
	cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = true, true, true
	cfg.Image = b.opts.Image
	cfg.Cmd = b.opts.Cmd
	cfg.Env = append(cfg.Env, b.opts.Env...)
	cfg.Labels[LabelFile] = ""
	hc.Mounts = nil
	hc.Memory, hc.MemorySwap = b.opts.MemoryMB<<20, b.opts.MemoryMB<<20
	hc.CPUShares = b.opts.CPUShares
	pids := b.opts.PidsLimit
	if b.m.opts.Runtime == "runsc" {
		pids += runscPidsSlack
	}
	hc.PidsLimit = &pids
	return cfg, hc
}

// launch creates, attaches and starts one container; its program waits for
// stdin.
func (b *Batches) launch(ctx context.Context) (_ *batchBox, err error) {
	m := b.m
	id := newID()
	cfg, hc := b.config(id)
	if err := Validate(hc, cfg); err != nil {
		return nil, err
	}
	if !m.own(id) {
		return nil, ErrClosed
	}
	defer m.launches.Done()
	bx := &box{m: m, session: id, name: containerName(b.opts.Name, id), created: m.opts.Clock.Now(), exited: make(chan struct{})}
	defer func() {
		if err != nil {
			bx.destroy()
		}
	}()
	if bx.id, err = m.create(ctx, bx.name, cfg, hc); err != nil {
		return nil, err
	}
	actx, acancel := context.WithTimeout(ctx, controlTimeout)
	att, err := m.cli.ContainerAttach(actx, bx.id, client.ContainerAttachOptions{
		Stream: true, Stdin: true, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	})
	acancel()
	if err != nil {
		return nil, fmt.Errorf("sandbox: attach: %w", err)
	}
	bx.hj = att.HijackedResponse
	wctx, cancel := context.WithCancel(m.ctx)
	bx.cancel = cancel
	wr := m.cli.ContainerWait(wctx, bx.id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	select {
	case err := <-wr.Error:
		return nil, fmt.Errorf("sandbox: wait: %w", err)
	default:
	}
	bx.waiting = true
	go bx.waitExit(wr)
	bb := &batchBox{box: bx, out: &cappedBuffer{limit: 16 << 20}, errOut: &cappedBuffer{tail: true, limit: 8 << 10}, copied: make(chan struct{})}
	go func() {
		defer close(bb.copied)
		_, _ = stdcopy.StdCopy(bb.out, bb.errOut, bx.hj.Reader)
	}()
	cctx, ccancel := context.WithTimeout(ctx, controlTimeout)
	defer ccancel()
	if _, err := m.cli.ContainerStart(cctx, bx.id, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("sandbox: start: %w", err)
	}
	return bb, nil
}

// claim takes a warm container, or starts one.
func (b *Batches) claim(ctx context.Context) (*batchBox, bool, error) {
	select {
	case bb := <-b.ready:
		select {
		case b.wake <- struct{}{}:
		default:
		}
		select {
		case <-bb.gone():
			bb.destroy() // it died waiting; start another
		default:
			return bb, true, nil
		}
	default:
	}
	bb, err := b.launch(ctx)
	if err != nil {
		return nil, false, b.m.explain(ctx, err)
	}
	return bb, false, nil
}

// Run gives one fresh container input on stdin and reads what it prints,
// keeping at most maxOutput bytes of stdout. After timeout (wall clock,
// from the claim) the container is removed and TimedOut set. The container
// is removed in every case before Run returns.
func (b *Batches) Run(ctx context.Context, input []byte, maxOutput int, timeout time.Duration) (BatchResult, error) {
	began := time.Now()
	bb, warm, err := b.claim(ctx)
	if err != nil {
		return BatchResult{}, err
	}
	defer bb.destroy()
	bb.out.setLimit(maxOutput)
	res := BatchResult{Warm: warm}
	_ = bb.hj.Conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := bb.hj.Conn.Write(input); err != nil {
		return res, fmt.Errorf("sandbox: writing the input: %w", err)
	}
	if err := bb.hj.CloseWrite(); err != nil {
		return res, fmt.Errorf("sandbox: closing the input: %w", err)
	}
	t := time.NewTimer(timeout - time.Since(began))
	defer t.Stop()
	select {
	case <-bb.copied:
	case <-t.C:
		res.TimedOut = true
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if !res.TimedOut {
		select {
		case <-bb.gone():
		case <-t.C:
			res.TimedOut = true
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	if !res.TimedOut {
		res.ExitCode, res.OOM, _ = bb.inspectExit()
	}
	bb.destroy()
	<-bb.copied
	res.Stdout, res.Truncated = bb.out.bytes()
	res.Stderr, _ = bb.errOut.bytes()
	res.Took = time.Since(began)
	return res, nil
}

// cappedBuffer keeps the first limit bytes written (or, with tail, the
// last) and drops the rest; it never refuses a write, so the stream is
// always read to its end.
type cappedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	limit     int
	tail      bool
	truncated bool
}

var _ io.Writer = (*cappedBuffer)(nil)

func (c *cappedBuffer) setLimit(n int) {
	c.mu.Lock()
	c.limit = n
	c.mu.Unlock()
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tail {
		c.buf.Write(p)
		if over := c.buf.Len() - c.limit; over > 0 {
			c.buf.Next(over)
			c.truncated = true
		}
		return len(p), nil
	}
	room := c.limit - c.buf.Len()
	if room < len(p) {
		c.truncated = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

func (c *cappedBuffer) bytes() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes()), c.truncated
}

// ImageExists says whether the engine has image (for optional batch images,
// like the similarity report's).
func (m *Manager) ImageExists(ctx context.Context, image string) bool {
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	_, err := m.cli.ImageInspect(ctx, image)
	return err == nil
}

// Ready is how many warm containers wait now.
func (b *Batches) Ready() int { return len(b.ready) }
