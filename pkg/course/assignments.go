package course

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// assignmentKind is what is particular to assignments: a due time, and a
// late policy that may take submissions, marked late, until a cutoff. The
// rest of their endpoints is shared with tests (items.go).
var assignmentKind = kind[store.Assignment, AssignmentInput, Assignment]{
	name:   store.KindAssignment,
	plural: "assignments",
	root:   workspace.RootAssignments,
	cached: func(st *state) map[string]store.Assignment { return st.assignments },
	meta: func(a store.Assignment) meta {
		return meta{slug: a.Slug, title: a.Title, publishAt: a.PublishAt, listedBy: a.DueAt}
	},
	view:      func(_ *state, a store.Assignment, _ string, now time.Time) Assignment { return assignmentView(a, now) },
	slug:      func(in *AssignmentInput) *string { return &in.Slug },
	fromInput: AssignmentInput.toStore,
	create: func(ctx context.Context, db *store.DB, a store.Assignment, by string) (store.Assignment, error) {
		a.CreatedBy = by
		return db.CreateAssignment(ctx, a)
	},
	update: func(ctx context.Context, db *store.DB, a store.Assignment) (store.Assignment, error) {
		return db.UpdateAssignment(ctx, a)
	},
	created: func(a store.Assignment) map[string]any {
		return map[string]any{"due_at": a.DueAt, "publish_at": a.PublishAt}
	},
	updated: func(a store.Assignment) map[string]any {
		return map[string]any{"due_at": a.DueAt, "publish_at": a.PublishAt, "late_policy": a.LatePolicy, "late_cutoff_at": a.LateCutoffAt}
	},
}

// assignmentOpen says whether an assignment takes submissions at now, and
// whether they are late.
func assignmentOpen(a store.Assignment, now time.Time) (open, late bool) {
	switch {
	case !published(a.PublishAt, now):
		return false, false
	case now.Before(a.DueAt):
		return true, false
	case a.LatePolicy == "cutoff" && a.LateCutoffAt != nil && now.Before(*a.LateCutoffAt):
		return true, true
	}
	return false, false
}

// closesAt is when an assignment stops taking submissions.
func closesAt(a store.Assignment) time.Time {
	if a.LatePolicy == "cutoff" && a.LateCutoffAt != nil {
		return *a.LateCutoffAt
	}
	return a.DueAt
}

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

func (in AssignmentInput) toStore() (store.Assignment, error) {
	if err := checkHead(in.Slug, in.Title, in.DescriptionMD); err != nil {
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
	a, err := visible(s, assignmentKind, u, c.Param("slug"), now)
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
	a, err := visible(s, assignmentKind, u, c.Param("slug"), s.now())
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
	a, err := visible(s, assignmentKind, u, c.Param("slug"), now)
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
	sub, err := s.snapshot(ctx, a.Slug, store.KindAssignment, u.Username, now, srcs, false, func(tx *store.DB) (bool, error) {
		// The rules as the database has them now, not as cached.
		cur, err := tx.AssignmentBySlug(ctx, a.Slug)
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
