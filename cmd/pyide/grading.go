package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pythonide/pyide/pkg/grading"
	"github.com/pythonide/pyide/pkg/sandbox"
)

// batchRunner runs grading containers (grading.Runner) on the sandbox
// manager of the moment: its sandbox.Batches are made for each manager the
// server connects, so grading follows the engine coming and going as Run
// does.
type batchRunner struct {
	sb   *sandboxes
	opts sandbox.BatchOptions

	mu sync.Mutex
	m  *sandbox.Manager
	b  *sandbox.Batches
}

// graderCmd is the grader in the sandbox image (sandbox-image/grader.py).
var graderCmd = []string{"python3", "/opt/pyide/grader.py"}

// newGradingRunners are the runners of checks (one warm container, so a
// student's Check skips the container start) and of background grading
// (warm ones for each concurrent grading), and of the similarity report.
func newGradingRunners(sb *sandboxes, concurrency int) (check, grade, similarity *batchRunner) {
	env := []string{"PYIDE_GRADER=1"}
	// The grader, pytest and the student's worker together need more than
	// a REPL; the limits are otherwise a session's.
	mem := max(int64(sb.cfg.MemoryLimitMB), 256)
	check = &batchRunner{sb: sb, opts: sandbox.BatchOptions{Name: "check", Cmd: graderCmd, Env: env, MemoryMB: mem,
		CPUShares: 512, Warm: 1}}
	grade = &batchRunner{sb: sb, opts: sandbox.BatchOptions{Name: "grader", Cmd: graderCmd, Env: env, MemoryMB: mem,
		CPUShares: 128, Warm: concurrency}}
	similarity = &batchRunner{sb: sb, opts: sandbox.BatchOptions{Name: "similarity", Image: sb.cfg.DolosImage,
		Cmd: []string{"node", "/opt/dolos/compare.mjs"}, MemoryMB: 1024, CPUShares: 128, PidsLimit: 64}}
	return check, grade, similarity
}

func (r *batchRunner) batches() (*sandbox.Batches, error) {
	m, err := r.sb.manager()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m != m || r.b == nil {
		if r.b != nil {
			r.b.Close()
		}
		b, err := m.NewBatches(r.opts)
		if err != nil {
			return nil, err
		}
		r.m, r.b = m, b
	}
	return r.b, nil
}

// prime makes the batches (and so starts the warm containers) as soon as a
// manager exists, rather than at the first check.
func (r *batchRunner) prime() { _, _ = r.batches() }

// Run implements grading.Runner.
func (r *batchRunner) Run(ctx context.Context, input []byte, maxOutput int, timeout time.Duration) (grading.RunResult, error) {
	b, err := r.batches()
	if err != nil {
		return grading.RunResult{}, fmt.Errorf("%w: %w", grading.ErrUnavailable, err)
	}
	if r.opts.Image != "" && !r.imageAvailable(ctx) {
		return grading.RunResult{}, fmt.Errorf("the image %s is not built on this server (bash dolos-image/build.sh)", r.opts.Image)
	}
	res, err := b.Run(ctx, input, maxOutput, timeout)
	if errors.Is(err, sandbox.ErrUnavailable) || errors.Is(err, sandbox.ErrClosed) {
		return grading.RunResult{}, fmt.Errorf("%w: %w", grading.ErrUnavailable, err)
	}
	if err != nil {
		return grading.RunResult{}, err
	}
	return grading.RunResult{Stdout: res.Stdout, Truncated: res.Truncated, Stderr: res.Stderr, ExitCode: res.ExitCode,
		OOM: res.OOM, TimedOut: res.TimedOut}, nil
}

// imageAvailable says whether the runner's own image exists on the engine.
func (r *batchRunner) imageAvailable(ctx context.Context) bool {
	m, err := r.sb.manager()
	if err != nil {
		return false
	}
	return m.ImageExists(ctx, r.opts.Image)
}

func (r *batchRunner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b != nil {
		r.b.Close()
		r.b = nil
	}
}

// busy says whether students' runs wait for a sandbox: background grading
// waits then.
func (s *sandboxes) busy() bool {
	m, err := s.manager()
	return err == nil && m.Stats().Queued > 0
}
