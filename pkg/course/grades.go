package course

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
)

// RosterEntry is one student in the grading table of an item.
type RosterEntry struct {
	Username    string     `json:"username"`
	DisplayName string     `json:"display_name"`
	Disabled    bool       `json:"disabled"`
	Submitted   bool       `json:"submitted"`
	Submissions int        `json:"submissions"`
	N           *int       `json:"n"` // the latest, the one that counts
	SubmittedAt *time.Time `json:"submitted_at"`
	Late        bool       `json:"late"`
	Auto        bool       `json:"auto"`
	Graded      bool       `json:"graded"`
	Score       *float64   `json:"score"`
	MaxScore    *float64   `json:"max_score"`
	// A test's clock for this student, for the staff watching it: when
	// they started a timed test, and when their time ends (a timed test
	// once started; the window's end for a test without a duration).
	StartedAt *time.Time `json:"started_at"`
	EndsAt    *time.Time `json:"ends_at"`
}

func (s *Service) handleRoster(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	slug := c.Param("slug")
	kind, title, err := s.itemVisible(u, slug, now)
	if err != nil {
		return err
	}
	rows, err := s.opts.DB.ItemRoster(c.Request().Context(), slug)
	if err != nil {
		return err
	}
	st := s.state.Load()
	test, isTest := st.tests[slug]
	out := make([]RosterEntry, 0, len(rows))
	for _, r := range rows {
		e := RosterEntry{Username: r.Username, DisplayName: r.DisplayName, Disabled: r.Disabled, Submissions: r.Count}
		if l := r.Latest; l != nil {
			n, at := l.N, l.SubmittedAt
			e.Submitted, e.N, e.SubmittedAt, e.Late, e.Auto = true, &n, &at, l.Late, l.Auto
		}
		if g := r.Grade; g != nil {
			maxScore := g.MaxScore
			e.Graded, e.Score, e.MaxScore = true, g.Score, &maxScore
		}
		if start, end, ok := st.window(test, r.Username); isTest && ok {
			if test.DurationMinutes != nil {
				e.StartedAt = &start
			}
			e.EndsAt = &end
		}
		out = append(out, e)
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "item": slug, "kind": kind, "title": title, "students": out})
}

// GradeInput changes a grade. Every field may be left out, and one left out
// keeps its saved value: a grader who only writes feedback never clears the
// score. "score": null takes the score away on purpose (feedback without a
// score). A student's first grade needs max_score.
type GradeInput struct {
	Score      optional[*float64] `json:"score"`
	MaxScore   optional[float64]  `json:"max_score"`
	FeedbackMD optional[string]   `json:"feedback_md"`
}

// optional is a JSON field that knows whether the request sent it.
type optional[T any] struct {
	Set   bool
	Value T
}

// UnmarshalJSON runs only for a field the request has, null included.
func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	return json.Unmarshal(b, &o.Value)
}

// check refuses a sent field with a value no grade may have.
func (in GradeInput) check() error {
	switch {
	case in.MaxScore.Set && (!finite(in.MaxScore.Value) || in.MaxScore.Value <= 0 || in.MaxScore.Value > 1e6):
		return badRequest("max_score: a number above 0")
	case in.Score.Set && in.Score.Value != nil && (!finite(*in.Score.Value) || *in.Score.Value < 0 || *in.Score.Value > 1e6):
		return badRequest("score: a number from 0, or null")
	case in.FeedbackMD.Set && (len(in.FeedbackMD.Value) > maxFeedback || !utf8.ValidString(in.FeedbackMD.Value)):
		return badRequest(fmt.Sprintf("feedback_md: at most %d KB of UTF-8", maxFeedback>>10))
	}
	return nil
}

// over is the saved grade g with the fields the request sent put in.
func (in GradeInput) over(g store.Grade) store.Grade {
	if in.Score.Set {
		g.Score = in.Score.Value
	}
	if in.MaxScore.Set {
		g.MaxScore = in.MaxScore.Value
	}
	if in.FeedbackMD.Set {
		g.FeedbackMD = in.FeedbackMD.Value
	}
	return g
}

// Grade is a grade as the API shows it.
type Grade struct {
	Item       string    `json:"item"`
	Kind       string    `json:"kind"`
	Title      string    `json:"title"`
	Username   string    `json:"username"`
	Score      *float64  `json:"score"`
	MaxScore   float64   `json:"max_score"`
	FeedbackMD string    `json:"feedback_md"`
	GradedBy   string    `json:"graded_by"`
	GradedAt   time.Time `json:"graded_at"`
}

func (s *Service) gradeView(g store.Grade) Grade {
	v := Grade{Item: g.Item, Username: g.Username, Score: g.Score, MaxScore: g.MaxScore, FeedbackMD: g.FeedbackMD,
		GradedBy: g.GradedBy, GradedAt: g.GradedAt}
	if kindName, m, ok := s.state.Load().find(g.Item); ok {
		v.Kind, v.Title = kindName, m.title
	}
	return v
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func (s *Service) handleSetGrade(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug, user := c.Param("slug"), c.Param("user")
	now := s.now()
	if _, _, err := s.itemVisible(u, slug, now); err != nil {
		return err
	}
	var in GradeInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	target, err := s.opts.DB.UserByName(ctx, user)
	if errors.Is(err, store.ErrNotFound) || (err == nil && target.Role != auth.RoleStudent) {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such student: %q", user))
	}
	if err != nil {
		return err
	}
	// The saved grade is read and written in one transaction, so two
	// graders saving different fields at once both keep theirs.
	var g store.Grade
	err = s.opts.DB.WithTx(ctx, func(tx *store.DB) error {
		saved, err := tx.GradeForUpdate(ctx, slug, user)
		switch {
		case errors.Is(err, store.ErrNotFound) && !in.MaxScore.Set:
			return badRequest("max_score: a number above 0 (a first grade needs one)")
		case errors.Is(err, store.ErrNotFound):
			saved = store.Grade{Item: slug, Username: user}
		case err != nil:
			return err
		}
		g = in.over(saved)
		g.GradedBy, g.GradedAt = u.Username, now
		g, err = tx.SetGrade(ctx, g)
		return err
	})
	if err != nil {
		return err
	}
	s.audit(ctx, u.Username, "course.grade", slug+"/"+user, map[string]any{"score": g.Score, "max_score": g.MaxScore})
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "grade": s.gradeView(g)})
}

// handleGrades lists grades: a student's own (of items they can see, whose
// results are released), everyone's for staff.
func (s *Service) handleGrades(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := s.now()
	who := u.Username
	if u.Teaches() {
		who = ""
	}
	list := s.opts.DB.Grades
	if !u.IsStaff() {
		list = s.opts.DB.ReleasedGrades // a student sees a grade once it is released
	}
	gs, err := list(c.Request().Context(), who)
	if err != nil {
		return err
	}
	out := make([]Grade, 0, len(gs))
	for _, g := range gs {
		if _, _, err := s.itemVisible(u, g.Item, now); err != nil {
			continue // an item back in draft keeps its grades hidden
		}
		out = append(out, s.gradeView(g))
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "grades": out})
}

// csvCell keeps a spreadsheet from reading a cell as a formula: a cell
// starting with = + - @ (or a tab or carriage return, which some
// spreadsheets skip before looking) gets a leading quote.
func csvCell(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + v
	}
	return v
}

func formatScore(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func (s *Service) handleGradesCSV(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug := c.Param("slug")
	now := s.now()
	if _, _, err := s.itemVisible(u, slug, now); err != nil {
		return err
	}
	ctx := c.Request().Context()
	rows, err := s.opts.DB.ItemRoster(ctx, slug)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"username", "display_name", "submitted_at", "late", "score", "max_score"})
	for _, r := range rows {
		var at, late, score, maxScore string
		if r.Latest != nil {
			at, late = stamp(r.Latest.SubmittedAt), strconv.FormatBool(r.Latest.Late)
		}
		if r.Grade != nil {
			score, maxScore = formatScore(r.Grade.Score), formatScore(&r.Grade.MaxScore)
		}
		_ = w.Write([]string{csvCell(r.Username), csvCell(r.DisplayName), at, late, score, maxScore})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	s.audit(ctx, u.Username, "course.grades.export", slug, map[string]any{"rows": len(rows)})
	h := c.Response().Header()
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-grades.csv"`, slug))
	h.Set("Cache-Control", "private, no-store")
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}
