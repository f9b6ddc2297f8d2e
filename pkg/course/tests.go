package course

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// Test is a timed test as the API shows it to u. MyStart and MyEnd are
// u's own window (MyEnd is what the countdown counts to): nil until u
// starts a test with a duration.
type Test struct {
	Slug              string     `json:"slug"`
	Title             string     `json:"title"`
	DescriptionMD     string     `json:"description_md"`
	PublishAt         *time.Time `json:"publish_at"`
	StartsAt          time.Time  `json:"starts_at"`
	EndsAt            time.Time  `json:"ends_at"`
	DurationMinutes   *int       `json:"duration_minutes"`
	RestrictWorkspace bool       `json:"restrict_workspace"`
	RestrictREPL      bool       `json:"restrict_repl"`
	Published         bool       `json:"published"`
	Open              bool       `json:"open"`
	MyStart           *time.Time `json:"my_start"`
	MyEnd             *time.Time `json:"my_end"`
	CreatedBy         string     `json:"created_by"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

func (st *state) testView(t store.Test, user string, now time.Time) Test {
	v := Test{Slug: t.Slug, Title: t.Title, DescriptionMD: t.DescriptionMD, PublishAt: t.PublishAt, StartsAt: t.StartsAt,
		EndsAt: t.EndsAt, DurationMinutes: t.DurationMinutes, RestrictWorkspace: t.RestrictWorkspace,
		RestrictREPL: t.RestrictREPL, Published: published(t.PublishAt, now), Open: st.testOpen(t, user, now),
		CreatedBy: t.CreatedBy, UpdatedAt: t.UpdatedAt}
	if started, ok := st.starts[t.Slug][user]; ok {
		v.MyStart = &started
	}
	if _, end, ok := st.window(t, user); ok {
		v.MyEnd = &end
	}
	return v
}

// TestInput creates or replaces a test. duration_minutes null gives
// everyone the whole window.
type TestInput struct {
	Slug              string     `json:"slug"`
	Title             string     `json:"title"`
	DescriptionMD     string     `json:"description_md"`
	PublishAt         *time.Time `json:"publish_at"`
	StartsAt          *time.Time `json:"starts_at"`
	EndsAt            *time.Time `json:"ends_at"`
	DurationMinutes   *int       `json:"duration_minutes"`
	RestrictWorkspace bool       `json:"restrict_workspace"`
	RestrictREPL      bool       `json:"restrict_repl"`
}

func (in TestInput) toStore() (store.Test, error) {
	if err := checkSlug(in.Slug); err != nil {
		return store.Test{}, err
	}
	if err := checkText(in.Title, in.DescriptionMD); err != nil {
		return store.Test{}, err
	}
	if in.StartsAt == nil || in.EndsAt == nil || !in.EndsAt.After(*in.StartsAt) {
		return store.Test{}, badRequest("starts_at and ends_at: required, ends_at after starts_at")
	}
	if d := in.DurationMinutes; d != nil && (*d < 1 || *d > maxDuration) {
		return store.Test{}, badRequest(fmt.Sprintf("duration_minutes: 1 to %d, or null for the whole window", maxDuration))
	}
	return store.Test{Slug: in.Slug, Title: in.Title, DescriptionMD: in.DescriptionMD, PublishAt: in.PublishAt,
		StartsAt: *in.StartsAt, EndsAt: *in.EndsAt, DurationMinutes: in.DurationMinutes,
		RestrictWorkspace: in.RestrictWorkspace, RestrictREPL: in.RestrictREPL}, nil
}

func sortedAssignments(st *state) []store.Assignment {
	out := make([]store.Assignment, 0, len(st.assignments))
	for _, a := range st.assignments {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].DueAt.Equal(out[j].DueAt) {
			return out[i].DueAt.Before(out[j].DueAt)
		}
		return out[i].Slug < out[j].Slug
	})
	return out
}

func sortedTests(st *state) []store.Test {
	out := make([]store.Test, 0, len(st.tests))
	for _, t := range st.tests {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartsAt.Equal(out[j].StartsAt) {
			return out[i].StartsAt.Before(out[j].StartsAt)
		}
		return out[i].Slug < out[j].Slug
	})
	return out
}

// visibleTest is the cached test slug if u may see its metadata.
func (s *Service) visibleTest(u auth.User, slug string, now time.Time) (store.Test, error) {
	t, ok := s.state.Load().tests[slug]
	if !ok || (!u.IsStaff() && !published(t.PublishAt, now)) {
		return store.Test{}, echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such test: %q", slug))
	}
	return t, nil
}

func (s *Service) handleListTests(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	st := s.state.Load()
	out := []Test{}
	for _, t := range sortedTests(st) {
		if u.IsStaff() || published(t.PublishAt, now) {
			out = append(out, st.testView(t, u.Username, now))
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "tests": out})
}

func (s *Service) handleGetTest(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	t, err := s.visibleTest(u, c.Param("slug"), now)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "test": s.state.Load().testView(t, u.Username, now)})
}

func (s *Service) handleCreateTest(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var in TestInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	t, err := in.toStore()
	if err != nil {
		return err
	}
	t.CreatedBy = u.Username
	ctx := c.Request().Context()
	t, err = s.opts.DB.CreateTest(ctx, t)
	if errors.Is(err, store.ErrConflict) {
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("an assignment or test named %q already exists", in.Slug))
	}
	if err != nil {
		return err
	}
	s.reloadAfterWrite(ctx, "")
	if err := s.opts.Files.EnsureItemFolders(workspace.RootTests, t.Slug); err != nil {
		return err
	}
	s.audit(ctx, u.Username, "course.test.create", t.Slug, map[string]any{"starts_at": t.StartsAt, "ends_at": t.EndsAt,
		"duration_minutes": t.DurationMinutes, "publish_at": t.PublishAt})
	now := s.now()
	return c.JSON(http.StatusCreated, map[string]any{"now": stamp(now), "test": s.state.Load().testView(t, u.Username, now)})
}

func (s *Service) handleUpdateTest(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug := c.Param("slug")
	var in TestInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	if in.Slug != "" && in.Slug != slug {
		return badRequest("slug: cannot be changed")
	}
	in.Slug = slug
	t, err := in.toStore()
	if err != nil {
		return err
	}
	old, known := s.state.Load().tests[slug]
	ctx := c.Request().Context()
	t, err = s.opts.DB.UpdateTest(ctx, t)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such test: %q", slug))
	}
	if err != nil {
		return err
	}
	s.reloadAfterWrite(ctx, "")
	// A test moved to a later end may need auto-submitting again later.
	s.autoMu.Lock()
	delete(s.autoDone, slug)
	s.autoMu.Unlock()
	s.audit(ctx, u.Username, "course.test.update", slug, map[string]any{"starts_at": t.StartsAt, "ends_at": t.EndsAt,
		"duration_minutes": t.DurationMinutes, "publish_at": t.PublishAt,
		"restrict_workspace": t.RestrictWorkspace, "restrict_repl": t.RestrictREPL})
	if !known || !samePtrTime(old.PublishAt, t.PublishAt) {
		s.audit(ctx, u.Username, "course.test.publish", slug, map[string]any{"publish_at": t.PublishAt})
	}
	now := s.now()
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "test": s.state.Load().testView(t, u.Username, now)})
}

func (s *Service) handleDeleteTest(c *echo.Context) error { return s.deleteItem(c, store.KindTest) }

// handleStartTest starts u's clock; starting again changes nothing.
func (s *Service) handleStartTest(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	t, err := s.visibleTest(u, c.Param("slug"), now)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, started := s.state.Load().starts[t.Slug][u.Username]; !started {
		switch {
		case !published(t.PublishAt, now):
			return echo.NewHTTPError(http.StatusConflict, "this test is not published yet")
		case now.Before(t.StartsAt):
			return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("the test has not begun; it starts at %s", stamp(t.StartsAt)))
		case !now.Before(t.EndsAt):
			return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("the test ended at %s", stamp(t.EndsAt)))
		}
		start, err := s.opts.DB.StartTest(ctx, t.Slug, u.Username, now)
		if err != nil {
			return err
		}
		s.reloadAfterWrite(ctx, u.Username)
		if start.StartedAt.Equal(now) {
			s.audit(ctx, u.Username, "course.test.start", t.Slug, nil)
		}
		if err := s.ensureTestFolder(t.Slug, u.Username); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "test": s.state.Load().testView(t, u.Username, now)})
}

// ensureTestFolder creates Submissions/<test>/<user>, where the student
// works during the test.
func (s *Service) ensureTestFolder(test, user string) error {
	return s.opts.Files.EnsureSubmissionFolder(test, user)
}

// handleSubmitTest snapshots the student's test folder while the test is
// open for them.
func (s *Service) handleSubmitTest(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	t, err := s.visibleTest(u, c.Param("slug"), now)
	if err != nil {
		return err
	}
	if err := s.testSubmitCheck(t, u.Username, now); err != nil {
		return err
	}
	srcs, _, err := s.folderSources(t.Slug, u.Username, false)
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return badRequest(fmt.Sprintf("nothing to submit: %s/%s/%s is empty", workspace.RootSubmissions, t.Slug, u.Username))
	}
	ctx := c.Request().Context()
	sub, err := s.snapshot(ctx, t.Slug, store.KindTest, u.Username, now, srcs, false, func(pgx.Tx) (bool, error) {
		return false, s.testSubmitCheck(t, u.Username, now)
	})
	if err != nil {
		return submitError(err)
	}
	return s.afterSubmit(c, u, sub, false)
}

func (s *Service) testSubmitCheck(t store.Test, user string, now time.Time) error {
	st := s.state.Load()
	if st.testOpen(t, user, now) {
		return nil
	}
	_, end, ok := st.window(t, user)
	switch {
	case !published(t.PublishAt, now):
		return echo.NewHTTPError(http.StatusConflict, "this test is not published yet")
	case now.Before(t.StartsAt):
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("the test has not begun; it starts at %s", stamp(t.StartsAt)))
	case !now.Before(t.EndsAt) && (!ok || !end.Before(t.EndsAt)):
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("the test ended at %s; your work is submitted automatically", stamp(t.EndsAt)))
	case !ok:
		return echo.NewHTTPError(http.StatusConflict, "start the test first")
	}
	return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("your time ended at %s; your work is submitted automatically", stamp(end)))
}
