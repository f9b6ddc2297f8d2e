package course

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// Register adds the /course endpoints to g (the /api group, behind login).
func (s *Service) Register(g *echo.Group) {
	staff, teaching := auth.RequireStaff, auth.RequireTeaching
	c := g.Group("/course")
	registerItems(c, s, assignmentKind)
	c.POST("/assignments/:slug/starter", s.handleStarter, staff)
	c.POST("/assignments/:slug/copy-starter", s.handleCopyStarter)
	c.POST("/assignments/:slug/submit", s.handleSubmitAssignment)

	registerItems(c, s, testKind)
	c.POST("/tests/:slug/start", s.handleStartTest)
	c.POST("/tests/:slug/submit", s.handleSubmitTest)

	c.GET("/items/:slug/submissions", s.handleRoster, teaching)
	c.GET("/items/:slug/submissions/:user", s.handleSubmissions)
	c.GET("/items/:slug/submissions/:user/:n/files", s.handleSubmissionFile)
	c.PUT("/items/:slug/grades/:user", s.handleSetGrade, teaching)
	c.GET("/items/:slug/grades.csv", s.handleGradesCSV, teaching)
	c.GET("/grades", s.handleGrades)
}

const (
	maxTitle       = 200
	maxDescription = 100 << 10
	maxFeedback    = 64 << 10
	maxDuration    = 7 * 24 * 60
)

func badRequest(msg string) error { return echo.NewHTTPError(http.StatusBadRequest, msg) }

func notFoundItem(slug string) error {
	return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such assignment or test: %q", slug))
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func submitError(err error) error {
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		return err
	case errors.Is(err, fstree.ErrTooLarge):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "a file grew past the size limit while it was being submitted")
	case errors.Is(err, fstree.ErrSymlink), errors.Is(err, fstree.ErrNotRegular), errors.Is(err, fs.ErrNotExist):
		return echo.NewHTTPError(http.StatusConflict, "a file changed while it was being submitted ("+fsMessage(err)+"); try again")
	}
	return err
}

// afterSubmit mirrors (for assignments), audits and answers.
func (s *Service) afterSubmit(c *echo.Context, u auth.User, sub store.Submission, mirror bool) error {
	ctx := c.Request().Context()
	resp := map[string]any{"now": stamp(s.now()), "submission": submissionView(sub, true)}
	if mirror {
		if err := s.mirror(ctx, sub); err != nil {
			// The snapshot is the submission; the copy in the tree is a view.
			s.opts.Logger.Error("course: mirroring a submission", "item", sub.Item, "user", sub.Username, "error", err)
			resp["warning"] = "submitted, but the copy in your Submissions folder could not be updated"
		}
	}
	s.audit(ctx, u.Username, "course.submit", sub.Item+"/"+sub.Username,
		map[string]any{"n": sub.N, "late": sub.Late, "files": len(sub.Files)})
	return c.JSON(http.StatusCreated, resp)
}

// Submission is one snapshot as the API shows it.
type Submission struct {
	Item        string                 `json:"item"`
	Kind        string                 `json:"kind"`
	Username    string                 `json:"username"`
	N           int                    `json:"n"`
	SubmittedAt time.Time              `json:"submitted_at"`
	Late        bool                   `json:"late"`
	Auto        bool                   `json:"auto"`
	Latest      bool                   `json:"latest"` // the one that counts
	Files       []store.SubmissionFile `json:"files"`
}

func submissionView(s store.Submission, latest bool) Submission {
	return Submission{Item: s.Item, Kind: s.Kind, Username: s.Username, N: s.N, SubmittedAt: s.SubmittedAt,
		Late: s.Late, Auto: s.Auto, Latest: latest, Files: s.Files}
}

// examHold refuses a student, during a test that restricts the workspace,
// anything of another item: only the test's own files are reachable then.
func (s *Service) examHold(u auth.User, slug string, now time.Time) error {
	if u.Teaches() {
		return nil
	}
	if test, restrict, _ := s.ExamRestriction(u.Username, now); restrict && slug != test {
		return echo.NewHTTPError(http.StatusForbidden,
			fmt.Sprintf("during the test %q only its own files can be opened; this comes back when the test is over", test))
	}
	return nil
}

// ownOrStaff answers 404 when a student asks about someone else: that
// another student exists, or submitted, is not theirs to know.
func ownOrStaff(u auth.User, user string) error {
	if u.Teaches() || u.Username == user {
		return nil
	}
	return echo.NewHTTPError(http.StatusNotFound, "no such submission")
}

func (s *Service) handleSubmissions(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug, user := c.Param("slug"), c.Param("user")
	if err := ownOrStaff(u, user); err != nil {
		return err
	}
	now := s.now()
	if _, _, err := s.itemVisible(u, slug, now); err != nil {
		return err
	}
	if err := s.examHold(u, slug, now); err != nil {
		return err
	}
	subs, err := s.opts.DB.SubmissionsOf(c.Request().Context(), slug, user)
	if err != nil {
		return err
	}
	out := make([]Submission, 0, len(subs))
	for i, sub := range subs {
		out = append(out, submissionView(sub, i == len(subs)-1))
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "submissions": out})
}

func (s *Service) handleSubmissionFile(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug, user := c.Param("slug"), c.Param("user")
	if err := ownOrStaff(u, user); err != nil {
		return err
	}
	now := s.now()
	if _, _, err := s.itemVisible(u, slug, now); err != nil {
		return err
	}
	if err := s.examHold(u, slug, now); err != nil {
		return err
	}
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 1 {
		return badRequest("n: a submission number (1, 2, …)")
	}
	sub, err := s.opts.DB.SubmissionByN(c.Request().Context(), slug, user, n)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such submission")
	}
	if err != nil {
		return err
	}
	name := c.QueryParam("path")
	found := false
	for _, f := range sub.Files {
		found = found || f.Name == name
	}
	if !found {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("submission %d has no file %q", n, name))
	}
	f, fi, err := s.snaps.open(sub.Snapshot, name)
	if err != nil {
		return err // a sealed snapshot that cannot be read is the server's fault
	}
	defer f.Close()
	return workspace.ServeFile(c, path.Base(name), fi.ModTime(), f)
}
