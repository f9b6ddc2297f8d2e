package main

import (
	"context"
	"sync"
	"time"
)

// clickSample is one Run: from sending `run` to the first output byte.
type clickSample struct {
	at       time.Duration // since the class began
	d        time.Duration
	session  string        // the server's sandbox session id
	spareAge time.Duration // since the socket opened or the last start took the spare
	kind     string        // hello, rerun or stampede
}

// recorder gathers every measurement of the class.
type recorder struct {
	login, save, line series
	// cutoff ends when the run cuts actions short (the bell's grace,
	// Ctrl-C, the hard timeout): failures after that are ours, not the
	// server's, and are counted as cut_off_actions.
	cutoff context.Context

	mu       sync.Mutex
	echoes   []timed
	clicks   []clickSample
	errors   map[string]int
	examples map[string]string // one message per error kind
	outcomes map[string]map[string]int
	counts   map[string]int
}

func newRecorder() *recorder {
	return &recorder{
		errors: map[string]int{}, examples: map[string]string{},
		outcomes: map[string]map[string]int{}, counts: map[string]int{},
	}
}

func (r *recorder) setCutoff(ctx context.Context) {
	r.mu.Lock()
	r.cutoff = ctx
	r.mu.Unlock()
}

// fail counts an error of a kind a student would notice.
func (r *recorder) fail(kind, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cutoff != nil && r.cutoff.Err() != nil {
		r.counts["cut_off_actions"]++
		return
	}
	r.errors[kind]++
	if _, ok := r.examples[kind]; !ok && msg != "" {
		if len(msg) > 300 {
			msg = msg[:300]
		}
		r.examples[kind] = msg
	}
}

// outcome counts how a heavy or hostile program ended (not an error).
func (r *recorder) outcome(what, how string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outcomes[what] == nil {
		r.outcomes[what] = map[string]int{}
	}
	r.outcomes[what][how]++
}

func (r *recorder) count(what string) {
	r.mu.Lock()
	r.counts[what]++
	r.mu.Unlock()
}

func (r *recorder) echo(at, d time.Duration) {
	r.mu.Lock()
	r.echoes = append(r.echoes, timed{at: at, d: d})
	r.mu.Unlock()
}

func (r *recorder) click(c clickSample) {
	r.mu.Lock()
	r.clicks = append(r.clicks, c)
	r.mu.Unlock()
}
