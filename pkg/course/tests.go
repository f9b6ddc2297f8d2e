package course

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// testKind is what is particular to tests: a window, a duration per
// student counted from their own start, and restrictions of the workspace
// and the REPL while a student's test is open. The rest of their
// endpoints is shared with assignments (items.go).
var testKind = kind[store.Test, TestInput, Test]{
	name:   store.KindTest,
	plural: "tests",
	root:   workspace.RootTests,
	cached: func(st *state) map[string]store.Test { return st.tests },
	meta: func(t store.Test) meta {
		return meta{slug: t.Slug, title: t.Title, publishAt: t.PublishAt, listedBy: t.StartsAt}
	},
	view:      (*state).testView,
	slug:      func(in *TestInput) *string { return &in.Slug },
	fromInput: TestInput.toStore,
	create: func(ctx context.Context, db *store.DB, t store.Test, by string) (store.Test, error) {
		t.CreatedBy = by
		return db.CreateTest(ctx, t)
	},
	update: func(ctx context.Context, db *store.DB, t store.Test) (store.Test, error) {
		return db.UpdateTest(ctx, t)
	},
	created: func(t store.Test) map[string]any {
		return map[string]any{"starts_at": t.StartsAt, "ends_at": t.EndsAt, "duration_minutes": t.DurationMinutes,
			"publish_at": t.PublishAt}
	},
	updated: func(t store.Test) map[string]any {
		return map[string]any{"starts_at": t.StartsAt, "ends_at": t.EndsAt, "duration_minutes": t.DurationMinutes,
			"publish_at": t.PublishAt, "restrict_workspace": t.RestrictWorkspace, "restrict_repl": t.RestrictREPL,
			"allow_live": t.AllowLive}
	},
}

// window is a student's part of a test: [start, end). ok is false when the
// test has a duration and the student has not started it.
func (st *state) window(t store.Test, user string) (start, end time.Time, ok bool) {
	if t.DurationMinutes == nil {
		return t.StartsAt, t.EndsAt, true
	}
	started, ok := st.starts[t.Slug][user]
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	end = started.Add(time.Duration(*t.DurationMinutes) * time.Minute)
	if t.EndsAt.Before(end) {
		end = t.EndsAt
	}
	return started, end, true
}

// testOpen says whether the test is open for user at now.
func (st *state) testOpen(t store.Test, user string, now time.Time) bool {
	if !published(t.PublishAt, now) || now.Before(t.StartsAt) {
		return false
	}
	start, end, ok := st.window(t, user)
	return ok && !now.Before(start) && now.Before(end)
}

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
	AllowLive         bool       `json:"allow_live"`
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
		RestrictREPL: t.RestrictREPL, AllowLive: t.AllowLive, Published: published(t.PublishAt, now), Open: st.testOpen(t, user, now),
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
	// AllowLive: during this test its restricted students may still ask
	// for help, follow a broadcast and be joined.
	AllowLive bool `json:"allow_live"`
}

func (in TestInput) toStore() (store.Test, error) {
	if err := checkHead(in.Slug, in.Title, in.DescriptionMD); err != nil {
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
		RestrictWorkspace: in.RestrictWorkspace, RestrictREPL: in.RestrictREPL, AllowLive: in.AllowLive}, nil
}

// handleStartTest starts u's clock; starting again changes nothing.
func (s *Service) handleStartTest(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	t, err := visible(s, testKind, u, c.Param("slug"), now)
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
	t, err := visible(s, testKind, u, c.Param("slug"), now)
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
	sub, err := s.snapshot(ctx, t.Slug, store.KindTest, u.Username, now, srcs, false, func(*store.DB) (bool, error) {
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
