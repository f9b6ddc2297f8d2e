// Package grading owns autograding: the tests staff write for an item (I/O
// cases and pytest or unittest files, visible or hidden), Check (a
// student's current files against the visible tests), the grading of every
// submission's sealed snapshot with all tests, regrades, the results per
// test, rubric lines, the release switch, the CSV with per-test columns, and
// the similarity report.
//
// It must never show a student a hidden test (its content, its name or its
// output), a result of another student, or a score or feedback before the
// item is released; never change a grading run once written (a regrade adds
// one); never mount anything into a grading sandbox (the files and the tests
// go in on stdin, so no hidden test is ever a file in the tree or in a
// student's sandbox); and never take a result the grader did not sign with
// the run's own key. Grading work comes after students' interactive runs:
// its own bounded concurrency, a low CPU weight, and a pause while runs wait
// in the sandbox queue.
//
// # API (JSON under /api/course; errors are {"error": msg})
//
//	GET    /items/{slug}/grading/tests           staff; {now, tests: [Test], max_points}
//	POST   /items/{slug}/grading/tests           staff; TestInput → {now, test}; 201
//	PUT    /items/{slug}/grading/tests/{id}      staff; TestInput → {now, test}
//	DELETE /items/{slug}/grading/tests/{id}      staff
//	POST   /items/{slug}/check                   {files: [tree paths]} → {now, check: Check}; students:
//	                                             their own files, the visible tests; limited like Run
//	GET    /items/{slug}/grading/results         staff; {now, released, regrade, students: [Summary]}
//	GET    /items/{slug}/grading/results/{user}  staff, or the student (once released): Result
//	PUT    /items/{slug}/grading/release         staff; {released} → {now, released}
//	POST   /items/{slug}/grading/regrade         staff; grades every latest submission again → {now, regrade}; 202
//	GET    /items/{slug}/grading/regrade         staff; {now, regrade} (progress; null when none ran)
//	GET    /items/{slug}/grading/rubric          staff; {now, rubric: [RubricLine]}
//	POST   /items/{slug}/grading/rubric          staff; {points, comment} → {now, line}; 201
//	PUT    /items/{slug}/grading/rubric/{id}     staff; {points, comment} → {now, line}
//	DELETE /items/{slug}/grading/rubric/{id}     staff
//	PUT    /items/{slug}/grading/marks/{user}    staff; {ids: [rubric line ids]} → Result
//	GET    /items/{slug}/grading/results.csv     staff; the grades with a column per test and the feedback
//	POST   /items/{slug}/grading/similarity      staff; starts a report over the latest snapshots; 202
//	GET    /items/{slug}/grading/similarity      staff; {now, similarity} (state, pairs)
//	GET    /results                              a student's released results of every item
//
// The score of a student is the professor's override (the grade's score)
// when there is one, otherwise the latest run's score plus the rubric lines
// given, between 0 and the maximum.
package grading

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// Course is what grading needs of the course: which items a user may know
// of, and the files of a sealed snapshot. *course.Service provides it.
type Course interface {
	Item(u auth.User, slug string, now time.Time) (kind, title string, err error)
	OpenSnapshotFile(sub store.Submission, name string) (*os.File, fs.FileInfo, error)
}

// Files is what Check needs of the files tree; *workspace.Workspace
// provides it.
type Files interface {
	FilesUnder(rel string) ([]workspace.FileEntry, error)
	OpenRegular(rel string) (*os.File, fs.FileInfo, error)
	Lstat(rel string) (fs.FileInfo, error)
}

// Runner runs one fresh grading container: input on stdin, stdout back.
// *sandbox.Batches provides it (Sandboxes below makes them).
type Runner interface {
	Run(ctx context.Context, input []byte, maxOutput int, timeout time.Duration) (RunResult, error)
}

// RunResult is how a grading container ended.
type RunResult struct {
	Stdout    []byte
	Truncated bool
	Stderr    []byte
	ExitCode  int
	OOM       bool
	TimedOut  bool
}

// Options configure a Service.
type Options struct {
	DB     *store.DB
	Course Course
	// Policy is the course state the workspace's policy reads: Check asks
	// it whether a student may read the files they chose.
	Policy workspace.CourseState
	Files  Files
	// Check runs students' and staff's checks; Grade runs the grading of
	// submissions and regrades. They may be the same. Nil: grading is
	// unavailable (503), the rest works.
	Check, Grade Runner
	// Similarity runs the similarity report (Dolos); nil: unavailable.
	Similarity Runner
	// Busy, when set, says whether students' runs are waiting for a
	// sandbox: background grading then waits, so a class's clicks come
	// first.
	Busy func() bool
	// Concurrency is how many grading containers run at once in the
	// background (default: one per CPU).
	Concurrency int
	// ChecksPerMinute limits each user's checks (default 60, like Run).
	ChecksPerMinute int
	// TestSeconds is the time each test of a file may take (default 5).
	TestSeconds int
	// MaxFileBytes bounds the files Check sends (default 10 MB each, 32 MB
	// in all).
	MaxFileBytes int64
	Logger       *slog.Logger
	Clock        func() time.Time
}

// Service is autograding.
type Service struct {
	opts     Options
	limits   *limiter
	queue    *queue
	regrades regrades
	sim      *similarity

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Defaults.
const (
	DefaultChecksPerMinute = 60
	DefaultTestSeconds     = 5
	maxSendBytes           = 32 << 20
)

// New makes the service and starts its background graders.
func New(opts Options) (*Service, error) {
	if opts.DB == nil || opts.Course == nil || opts.Files == nil || opts.Policy == nil {
		return nil, errors.New("grading: DB, Course, Policy and Files are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = runtime.NumCPU()
	}
	if opts.ChecksPerMinute <= 0 {
		opts.ChecksPerMinute = DefaultChecksPerMinute
	}
	if opts.TestSeconds <= 0 {
		opts.TestSeconds = DefaultTestSeconds
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = 10 << 20
	}
	if opts.Busy == nil {
		opts.Busy = func() bool { return false }
	}
	s := &Service{opts: opts, limits: newLimiter(opts.ChecksPerMinute)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.queue = newQueue()
	s.regrades.byItem = map[string]*Regrade{}
	s.sim = &similarity{reports: map[string]*SimilarityReport{}}
	for range opts.Concurrency {
		s.wg.Add(1)
		go s.work()
	}
	return s, nil
}

// Close stops the background graders; a grading under way is abandoned
// (its submission keeps its older runs, and a regrade can be started
// again).
func (s *Service) Close() {
	s.cancel()
	s.queue.close()
	s.wg.Wait()
}

func (s *Service) now() time.Time { return s.opts.Clock() }

// Register adds the grading endpoints to g (the /api group, behind login).
func (s *Service) Register(g *echo.Group) {
	// Staff write the tests, the rubric and the release; whoever grades
	// (a teaching assistant too) reads the results and marks rubric lines.
	staff, teaching := auth.RequireStaff, auth.RequireTeaching
	c := g.Group("/course")
	c.GET("/items/:slug/grading/tests", s.handleTests, staff)
	c.POST("/items/:slug/grading/tests", s.handleCreateTest, staff)
	c.PUT("/items/:slug/grading/tests/:id", s.handleUpdateTest, staff)
	c.DELETE("/items/:slug/grading/tests/:id", s.handleDeleteTest, staff)
	c.POST("/items/:slug/check", s.handleCheck)
	c.GET("/items/:slug/grading/results", s.handleResults, teaching)
	c.GET("/items/:slug/grading/results/:user", s.handleResult)
	c.PUT("/items/:slug/grading/release", s.handleRelease, staff)
	c.POST("/items/:slug/grading/regrade", s.handleRegrade, staff)
	c.GET("/items/:slug/grading/regrade", s.handleRegradeStatus, staff)
	c.GET("/items/:slug/grading/rubric", s.handleRubric, teaching)
	c.POST("/items/:slug/grading/rubric", s.handleSaveRubric, staff)
	c.PUT("/items/:slug/grading/rubric/:id", s.handleSaveRubric, staff)
	c.DELETE("/items/:slug/grading/rubric/:id", s.handleDeleteRubric, staff)
	c.PUT("/items/:slug/grading/marks/:user", s.handleMarks, teaching)
	c.GET("/items/:slug/grading/results.csv", s.handleCSV, teaching)
	c.POST("/items/:slug/grading/similarity", s.handleStartSimilarity, staff)
	c.GET("/items/:slug/grading/similarity", s.handleSimilarity, staff)
	c.GET("/results", s.handleMyResults)
}

// audit records an action; a failure is logged, never shown to the user
// whose action already happened.
func (s *Service) audit(ctx context.Context, actor, action, target string, details map[string]any) {
	if err := s.opts.DB.Audit(context.WithoutCancel(ctx), actor, action, target, details); err != nil {
		s.opts.Logger.Error("grading: audit failed", "action", action, "target", target, "error", err)
	}
}
