package course

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// Register adds the /course endpoints to g (the /api group, behind login).
func (s *Service) Register(g *echo.Group) {
	staff := auth.RequireStaff
	c := g.Group("/course")
	c.GET("/assignments", s.handleListAssignments)
	c.POST("/assignments", s.handleCreateAssignment, staff)
	c.GET("/assignments/:slug", s.handleGetAssignment)
	c.PUT("/assignments/:slug", s.handleUpdateAssignment, staff)
	c.DELETE("/assignments/:slug", s.handleDeleteAssignment, staff)
	c.POST("/assignments/:slug/starter", s.handleStarter, staff)
	c.POST("/assignments/:slug/copy-starter", s.handleCopyStarter)
	c.POST("/assignments/:slug/submit", s.handleSubmitAssignment)

	c.GET("/tests", s.handleListTests)
	c.POST("/tests", s.handleCreateTest, staff)
	c.GET("/tests/:slug", s.handleGetTest)
	c.PUT("/tests/:slug", s.handleUpdateTest, staff)
	c.DELETE("/tests/:slug", s.handleDeleteTest, staff)
	c.POST("/tests/:slug/start", s.handleStartTest)
	c.POST("/tests/:slug/submit", s.handleSubmitTest)

	c.GET("/items/:slug/submissions", s.handleRoster, staff)
	c.GET("/items/:slug/submissions/:user", s.handleSubmissions)
	c.GET("/items/:slug/submissions/:user/:n/files", s.handleSubmissionFile)
	c.PUT("/items/:slug/grades/:user", s.handleSetGrade, staff)
	c.GET("/items/:slug/grades.csv", s.handleGradesCSV, staff)
	c.GET("/grades", s.handleGrades)
}

// slugRe is the shape of a slug: it names folders under Assignments,
// Tests and Submissions.
var slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

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

// Assignment is an assignment as the API shows it.
type Assignment struct {
	Slug          string     `json:"slug"`
	Title         string     `json:"title"`
	DescriptionMD string     `json:"description_md"`
	PublishAt     *time.Time `json:"publish_at"`
	DueAt         time.Time  `json:"due_at"`
	LatePolicy    string     `json:"late_policy"`
	LateCutoffAt  *time.Time `json:"late_cutoff_at"`
	// Published: students see it. Open: it takes submissions now; LateNow:
	// a submission now is late. ClosesAt: when submissions end.
	Published bool      `json:"published"`
	Open      bool      `json:"open"`
	LateNow   bool      `json:"late_now"`
	ClosesAt  time.Time `json:"closes_at"`
	CreatedBy string    `json:"created_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

func assignmentView(a store.Assignment, now time.Time) Assignment {
	open, late := assignmentOpen(a, now)
	return Assignment{Slug: a.Slug, Title: a.Title, DescriptionMD: a.DescriptionMD, PublishAt: a.PublishAt, DueAt: a.DueAt,
		LatePolicy: a.LatePolicy, LateCutoffAt: a.LateCutoffAt, Published: published(a.PublishAt, now), Open: open,
		LateNow: late, ClosesAt: closesAt(a), CreatedBy: a.CreatedBy, UpdatedAt: a.UpdatedAt}
}

// AssignmentInput creates or replaces an assignment. late_policy defaults
// to "none"; late_cutoff_at is required with "cutoff". publish_at null
// keeps it a draft.
type AssignmentInput struct {
	Slug          string     `json:"slug"`
	Title         string     `json:"title"`
	DescriptionMD string     `json:"description_md"`
	PublishAt     *time.Time `json:"publish_at"`
	DueAt         *time.Time `json:"due_at"`
	LatePolicy    string     `json:"late_policy"`
	LateCutoffAt  *time.Time `json:"late_cutoff_at"`
}

func checkText(title, description string) error {
	switch {
	case title == "" || utf8.RuneCountInString(title) > maxTitle || !utf8.ValidString(title):
		return badRequest(fmt.Sprintf("title: required, at most %d characters", maxTitle))
	case len(description) > maxDescription || !utf8.ValidString(description):
		return badRequest(fmt.Sprintf("description_md: at most %d KB of UTF-8", maxDescription>>10))
	}
	return nil
}

func checkSlug(slug string) error {
	if !slugRe.MatchString(slug) {
		return badRequest("slug: 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit")
	}
	return nil
}

func (in AssignmentInput) toStore() (store.Assignment, error) {
	if err := checkSlug(in.Slug); err != nil {
		return store.Assignment{}, err
	}
	if err := checkText(in.Title, in.DescriptionMD); err != nil {
		return store.Assignment{}, err
	}
	if in.DueAt == nil {
		return store.Assignment{}, badRequest("due_at: required")
	}
	if in.LatePolicy == "" {
		in.LatePolicy = "none"
	}
	switch in.LatePolicy {
	case "none":
		if in.LateCutoffAt != nil {
			return store.Assignment{}, badRequest(`late_cutoff_at: only with late_policy "cutoff"`)
		}
	case "cutoff":
		if in.LateCutoffAt == nil || !in.LateCutoffAt.After(*in.DueAt) {
			return store.Assignment{}, badRequest("late_cutoff_at: required with late_policy \"cutoff\", after due_at")
		}
	default:
		return store.Assignment{}, badRequest(`late_policy: "none" or "cutoff"`)
	}
	return store.Assignment{Slug: in.Slug, Title: in.Title, DescriptionMD: in.DescriptionMD, PublishAt: in.PublishAt,
		DueAt: *in.DueAt, LatePolicy: in.LatePolicy, LateCutoffAt: in.LateCutoffAt}, nil
}

// visibleAssignment is the cached assignment slug as u may see it.
func (s *Service) visibleAssignment(u auth.User, slug string, now time.Time) (store.Assignment, error) {
	a, ok := s.state.Load().assignments[slug]
	if !ok || (!u.IsStaff() && !published(a.PublishAt, now)) {
		return store.Assignment{}, echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such assignment: %q", slug))
	}
	return a, nil
}

func (s *Service) handleListAssignments(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	st := s.state.Load()
	out := []Assignment{}
	for _, a := range sortedAssignments(st) {
		if u.IsStaff() || published(a.PublishAt, now) {
			out = append(out, assignmentView(a, now))
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "assignments": out})
}

func (s *Service) handleGetAssignment(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	a, err := s.visibleAssignment(u, c.Param("slug"), now)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "assignment": assignmentView(a, now)})
}

func (s *Service) handleCreateAssignment(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var in AssignmentInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	a, err := in.toStore()
	if err != nil {
		return err
	}
	a.CreatedBy = u.Username
	ctx := c.Request().Context()
	a, err = s.opts.DB.CreateAssignment(ctx, a)
	if errors.Is(err, store.ErrConflict) {
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("an assignment or test named %q already exists", in.Slug))
	}
	if err != nil {
		return err
	}
	s.reloadAfterWrite(ctx, "")
	if err := s.opts.Files.EnsureItemFolders(workspace.RootAssignments, a.Slug); err != nil {
		return err
	}
	s.audit(ctx, u.Username, "course.assignment.create", a.Slug, map[string]any{"due_at": a.DueAt, "publish_at": a.PublishAt})
	now := s.now()
	return c.JSON(http.StatusCreated, map[string]any{"now": stamp(now), "assignment": assignmentView(a, now)})
}

func samePtrTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func (s *Service) handleUpdateAssignment(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug := c.Param("slug")
	var in AssignmentInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	if in.Slug != "" && in.Slug != slug {
		return badRequest("slug: cannot be changed")
	}
	in.Slug = slug
	a, err := in.toStore()
	if err != nil {
		return err
	}
	old, known := s.state.Load().assignments[slug]
	ctx := c.Request().Context()
	a, err = s.opts.DB.UpdateAssignment(ctx, a)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such assignment: %q", slug))
	}
	if err != nil {
		return err
	}
	s.reloadAfterWrite(ctx, "")
	s.audit(ctx, u.Username, "course.assignment.update", slug, map[string]any{"due_at": a.DueAt, "publish_at": a.PublishAt,
		"late_policy": a.LatePolicy, "late_cutoff_at": a.LateCutoffAt})
	if !known || !samePtrTime(old.PublishAt, a.PublishAt) {
		s.audit(ctx, u.Username, "course.assignment.publish", slug, map[string]any{"publish_at": a.PublishAt})
	}
	now := s.now()
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "assignment": assignmentView(a, now)})
}

// deleteItem deletes an item's rows (its files stay on disk); with
// submissions it needs ?force=true.
func (s *Service) deleteItem(c *echo.Context, kind string) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug := c.Param("slug")
	ctx := c.Request().Context()
	n, err := s.opts.DB.CountSubmissions(ctx, slug)
	if err != nil {
		return err
	}
	if n > 0 && c.QueryParam("force") != "true" {
		return echo.NewHTTPError(http.StatusConflict,
			fmt.Sprintf("%q has %d submissions; delete with ?force=true to drop them and their grades (the files stay on disk)", slug, n))
	}
	err = s.opts.DB.DeleteItem(ctx, slug, kind)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such %s: %q", kind, slug))
	}
	if err != nil {
		return err
	}
	s.reloadAfterWrite(ctx, "")
	s.autoMu.Lock()
	delete(s.autoDone, slug)
	s.autoMu.Unlock()
	s.audit(ctx, u.Username, "course."+kind+".delete", slug, map[string]any{"submissions": n})
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "deleted": slug})
}

func (s *Service) handleDeleteAssignment(c *echo.Context) error {
	return s.deleteItem(c, store.KindAssignment)
}

type starterRequest struct {
	From string `json:"from"`
}

// handleStarter copies a file or the files of a folder into the
// assignment's material folder, replacing files of the same name.
func (s *Service) handleStarter(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	a, err := s.visibleAssignment(u, c.Param("slug"), now)
	if err != nil {
		return err
	}
	var in starterRequest
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	p, err := workspace.ParsePath(in.From)
	if err != nil {
		return badRequest("from: " + err.Error())
	}
	if p.Depth() < 2 || workspace.AccessPath(u, p, s, now) < workspace.Read {
		return badRequest("from: choose a file or folder of the course tree")
	}
	dst := path.Join(workspace.RootAssignments, a.Slug)
	if p.Within(workspace.MustPath(dst)) {
		return badRequest("from: already in the assignment's material folder")
	}
	ctx := c.Request().Context()
	res, err := s.opts.Files.CopyInto(ctx, u, p.String(), dst, true, s.opts.MaxBytes)
	if err != nil {
		return workspace.HTTPError(err)
	}
	s.audit(ctx, u.Username, "course.starter.add", a.Slug, map[string]any{"from": p.String(), "copied": res.Copied})
	return c.JSON(http.StatusOK, res)
}

// handleCopyStarter copies the assignment's material into Local/<me>/<slug>,
// never overwriting a file the student already has.
func (s *Service) handleCopyStarter(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	a, err := s.visibleAssignment(u, c.Param("slug"), s.now())
	if err != nil {
		return err
	}
	src := path.Join(workspace.RootAssignments, a.Slug)
	dst := path.Join(workspace.RootLocal, u.Username, a.Slug)
	res, err := s.opts.Files.CopyInto(c.Request().Context(), u, src, dst, false, s.opts.MaxBytes)
	if errors.Is(err, workspace.ErrNotFound) {
		res, err = workspace.CopyResult{Copied: []string{}, Skipped: []string{}}, nil // no material yet
	}
	if err != nil {
		return workspace.HTTPError(err)
	}
	s.audit(c.Request().Context(), u.Username, "course.starter.copy", a.Slug, map[string]any{"copied": len(res.Copied), "skipped": len(res.Skipped)})
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "folder": dst, "copied": res.Copied, "skipped": res.Skipped})
}

type submitRequest struct {
	Files []string `json:"files"`
}

func (s *Service) handleSubmitAssignment(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	a, err := s.visibleAssignment(u, c.Param("slug"), now)
	if err != nil {
		return err
	}
	var in submitRequest
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	srcs, err := s.chosenSources(u, in.Files, now)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	sub, err := s.snapshot(ctx, a.Slug, store.KindAssignment, u.Username, now, srcs, false, func(tx pgx.Tx) (bool, error) {
		// The rules as the database has them now, not as cached.
		cur, err := store.AssignmentBySlug(ctx, tx, a.Slug)
		if errors.Is(err, store.ErrNotFound) {
			return false, notFoundItem(a.Slug)
		}
		if err != nil {
			return false, err
		}
		if !published(cur.PublishAt, now) {
			return false, echo.NewHTTPError(http.StatusConflict, "this assignment is not published yet")
		}
		open, late := assignmentOpen(cur, now)
		if !open {
			return false, echo.NewHTTPError(http.StatusConflict,
				fmt.Sprintf("the deadline passed at %s; submissions are closed", stamp(closesAt(cur))))
		}
		return late, nil
	})
	if err != nil {
		return submitError(err)
	}
	return s.afterSubmit(c, u, sub, true)
}

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

// itemVisible finds an item by slug, as u may see it: its kind and title.
func (s *Service) itemVisible(u auth.User, slug string, now time.Time) (kind, title string, err error) {
	st := s.state.Load()
	if a, ok := st.assignments[slug]; ok && (u.IsStaff() || published(a.PublishAt, now)) {
		return store.KindAssignment, a.Title, nil
	}
	if t, ok := st.tests[slug]; ok && (u.IsStaff() || published(t.PublishAt, now)) {
		return store.KindTest, t.Title, nil
	}
	return "", "", notFoundItem(slug)
}

// examHold refuses a student, during a test that restricts the workspace,
// anything of another item: only the test's own files are reachable then.
func (s *Service) examHold(u auth.User, slug string, now time.Time) error {
	if u.IsStaff() {
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
	if u.IsStaff() || u.Username == user {
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
