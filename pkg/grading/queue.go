package grading

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/store"
)

// job is the grading of one submission with every test of its item.
type job struct {
	sub   store.Submission
	cause string // "submit" or "regrade"
	by    string
	group *Regrade // the regrade it belongs to; nil for a submission's own
}

// queue holds the gradings to do: submissions first (a student just
// handed in), then regrades, each in order.
type queue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	submits  []job
	regrades []job
	closed   bool
	// pending counts, per item and student, gradings queued or running.
	pending map[string]int
}

func newQueue() *queue {
	q := &queue{pending: map[string]int{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func pendingKey(item, user string) string { return item + "\x00" + user }

func (q *queue) push(j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if j.cause == causeSubmit {
		q.submits = append(q.submits, j)
	} else {
		q.regrades = append(q.regrades, j)
	}
	q.pending[pendingKey(j.sub.Item, j.sub.Username)]++
	q.cond.Signal()
}

// pop waits for the next job; false once the queue is closed.
func (q *queue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.closed && len(q.submits) == 0 && len(q.regrades) == 0 {
		q.cond.Wait()
	}
	if q.closed {
		return job{}, false
	}
	var j job
	if len(q.submits) > 0 {
		j, q.submits = q.submits[0], q.submits[1:]
	} else {
		j, q.regrades = q.regrades[0], q.regrades[1:]
	}
	return j, true
}

// done marks a popped job finished.
func (q *queue) done(j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := pendingKey(j.sub.Item, j.sub.Username)
	if q.pending[k]--; q.pending[k] <= 0 {
		delete(q.pending, k)
	}
}

func (q *queue) isPending(item, user string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending[pendingKey(item, user)] > 0
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// Causes of a grading run.
const (
	causeSubmit  = "submit"
	causeRegrade = "regrade"
)

// Submitted queues the grading of a new submission; course.Options.OnSubmit
// calls it.
func (s *Service) Submitted(sub store.Submission) {
	s.queue.push(job{sub: sub, cause: causeSubmit, by: sub.Username})
}

// work grades queued submissions until Close. It waits while students'
// runs wait for a sandbox: their clicks come first.
func (s *Service) work() {
	defer s.wg.Done()
	for {
		j, ok := s.queue.pop()
		if !ok {
			return
		}
		for s.opts.Busy() && s.ctx.Err() == nil {
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-s.ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		err := s.gradeJob(s.ctx, j)
		if err != nil && s.ctx.Err() == nil {
			s.opts.Logger.Error("grading: a submission was not graded", "item", j.sub.Item, "user", j.sub.Username,
				"n", j.sub.N, "error", err)
		}
		s.queue.done(j)
		if j.group != nil {
			j.group.finish(err == nil, s.now())
		}
	}
}

// gradeJob grades one submission and records the run. A submission whose
// files cannot be sent gets a run that says why; one the engine could not
// grade gets none (it can be regraded).
func (s *Service) gradeJob(ctx context.Context, j job) error {
	tests, err := s.opts.DB.GradingTests(ctx, j.sub.Item)
	if err != nil || len(tests) == 0 {
		return err
	}
	started := s.now()
	files, err := s.snapshotFiles(j.sub)
	var out Outcome
	switch {
	case errors.Is(err, errTooLarge):
		out = judge(tests, nil, err.Error())
	case err != nil:
		return err
	default:
		if out, err = s.grade(ctx, s.opts.Grade, files, tests); errors.Is(err, errTooLarge) {
			out = judge(tests, nil, err.Error())
		} else if err != nil {
			return err
		}
	}
	results, err := json.Marshal(out.Tests)
	if err != nil {
		return err
	}
	_, err = s.opts.DB.InsertGradingRun(context.WithoutCancel(ctx), store.GradingRun{SubmissionID: j.sub.ID,
		Item: j.sub.Item, Username: j.sub.Username, N: j.sub.N, Cause: j.cause, Score: out.Score, MaxScore: out.MaxScore,
		Error: out.Error, Results: results, RequestedBy: j.by, StartedAt: started, FinishedAt: s.now()})
	return err
}

// Regrade is the progress of grading every latest submission of an item
// again.
type Regrade struct {
	mu         sync.Mutex
	Item       string     `json:"item"`
	Total      int        `json:"total"`
	Done       int        `json:"done"`
	Failed     int        `json:"failed"`
	By         string     `json:"by"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

func (r *Regrade) finish(ok bool, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Done++
	if !ok {
		r.Failed++
	}
	if r.Done == r.Total {
		r.FinishedAt = &at
	}
}

// view is a copy to answer with.
func (r *Regrade) view() *Regrade {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return &Regrade{Item: r.Item, Total: r.Total, Done: r.Done, Failed: r.Failed, By: r.By, StartedAt: r.StartedAt,
		FinishedAt: r.FinishedAt}
}

func (r *Regrade) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Done < r.Total
}

// regrades is the latest regrade of each item.
type regrades struct {
	mu     sync.Mutex
	byItem map[string]*Regrade
}

func (s *Service) handleRegrade(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	s.regrades.mu.Lock()
	if r := s.regrades.byItem[slug]; r != nil && r.running() {
		s.regrades.mu.Unlock()
		return c.JSON(http.StatusConflict, map[string]any{"error": "a regrade of this item is already running",
			"regrade": r.view()})
	}
	s.regrades.mu.Unlock()
	tests, err := s.opts.DB.GradingTests(ctx, slug)
	if err != nil {
		return err
	}
	if len(tests) == 0 {
		return echo.NewHTTPError(http.StatusConflict, "this item has no tests to grade with")
	}
	subs, err := s.opts.DB.LatestSubmissions(ctx, slug)
	if err != nil {
		return err
	}
	now := s.now()
	r := &Regrade{Item: slug, Total: len(subs), By: u.Username, StartedAt: now}
	if len(subs) == 0 {
		r.FinishedAt = &now
	}
	s.regrades.mu.Lock()
	s.regrades.byItem[slug] = r
	s.regrades.mu.Unlock()
	for _, sub := range subs {
		s.queue.push(job{sub: sub, cause: causeRegrade, by: u.Username, group: r})
	}
	s.audit(ctx, u.Username, "grading.regrade", slug, map[string]any{"submissions": len(subs)})
	return c.JSON(http.StatusAccepted, map[string]any{"now": stamp(now), "regrade": r.view()})
}

func (s *Service) handleRegradeStatus(c *echo.Context) error {
	_, slug, err := s.item(c)
	if err != nil {
		return err
	}
	s.regrades.mu.Lock()
	r := s.regrades.byItem[slug]
	s.regrades.mu.Unlock()
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "regrade": r.view()})
}
