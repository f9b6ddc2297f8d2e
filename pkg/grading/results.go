package grading

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
)

// RubricLine is a line of an item's rubric: points (negative ones take
// away) with a comment.
type RubricLine struct {
	ID      int64   `json:"id"`
	Points  float64 `json:"points"`
	Comment string  `json:"comment"`
}

// Run is one grading run as the API shows it.
type Run struct {
	ID         int64        `json:"id"`
	N          int          `json:"n"` // the submission graded
	Cause      string       `json:"cause"`
	Score      float64      `json:"score"`
	MaxScore   float64      `json:"max_score"`
	Passed     int          `json:"passed"`
	Failed     int          `json:"failed"`
	Error      string       `json:"error,omitempty"`
	By         string       `json:"by"`
	FinishedAt time.Time    `json:"finished_at"`
	Tests      []TestResult `json:"tests,omitempty"`
}

func runView(r store.GradingRun, withTests bool) (Run, error) {
	v := Run{ID: r.ID, N: r.N, Cause: r.Cause, Score: r.Score, MaxScore: r.MaxScore, Error: r.Error, By: r.RequestedBy,
		FinishedAt: r.FinishedAt}
	var tests []TestResult
	if err := json.Unmarshal(r.Results, &tests); err != nil {
		return v, err
	}
	for _, t := range tests {
		if t.Passed {
			v.Passed++
		} else if t.Outcome != "skipped" {
			v.Failed++
		}
	}
	if withTests {
		v.Tests = tests
	}
	return v, nil
}

// forStudent strips what a student may not see of a run: everything of a
// hidden test but whether it passed and its points.
func forStudent(v Run) Run {
	n := 0
	out := make([]TestResult, 0, len(v.Tests))
	for _, t := range v.Tests {
		if t.Hidden {
			n++
			t = TestResult{Kind: "hidden", Name: fmt.Sprintf("Hidden test %d", n), Hidden: true, Points: t.Points,
				MaxPoints: t.MaxPoints, Passed: t.Passed, Outcome: t.Outcome}
		}
		out = append(out, t)
	}
	v.Tests = out
	v.By = ""
	return v
}

// Summary is one student in the results of an item, for staff.
type Summary struct {
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name"`
	N           *int     `json:"n"` // the latest submission
	Pending     bool     `json:"pending"`
	Run         *Run     `json:"run"` // the latest run of the latest submission
	Proposed    *float64 `json:"proposed"`
	Override    *float64 `json:"override"`
	Score       *float64 `json:"score"`
	MaxScore    *float64 `json:"max_score"`
	Rubric      float64  `json:"rubric"`
}

// Result is one student's results of an item. A student sees only
// released results, and of hidden tests only whether they passed.
type Result struct {
	Item       string       `json:"item"`
	Title      string       `json:"title"`
	Username   string       `json:"username"`
	Released   bool         `json:"released"`
	Pending    bool         `json:"pending"`
	Score      *float64     `json:"score"`
	MaxScore   *float64     `json:"max_score"`
	Proposed   *float64     `json:"proposed,omitempty"` // staff: the tests' score with the rubric
	Override   *float64     `json:"override,omitempty"` // staff: the score they set instead
	FeedbackMD string       `json:"feedback_md"`
	Rubric     []RubricLine `json:"rubric"` // the lines given
	Run        *Run         `json:"run"`
	Runs       []Run        `json:"runs,omitempty"` // staff: every run, newest first
}

// score is the student's score: the override when there is one, else the
// run's score with the rubric lines, within [0, max].
func score(g *store.Grade, run *store.GradingRun, rubric float64, marked bool) (eff, proposed, maxScore *float64) {
	switch {
	case g != nil:
		m := g.MaxScore
		maxScore = &m
	case run != nil:
		m := run.MaxScore
		maxScore = &m
	}
	if run != nil || marked {
		p := rubric
		if run != nil {
			p += run.Score
		}
		p = math.Max(0, p)
		if maxScore != nil {
			p = math.Min(p, *maxScore)
		}
		p = math.Round(p*1000) / 1000
		proposed = &p
	}
	eff = proposed
	if g != nil && g.Score != nil {
		eff = g.Score
	}
	return eff, proposed, maxScore
}

// sheet is everything about an item's grading, read once.
type sheet struct {
	roster   []store.RosterRow
	runs     map[string]store.GradingRun
	rubric   []store.RubricItem
	marks    map[string][]int64
	released bool
}

func (s *Service) sheet(ctx context.Context, slug, user string) (sheet, error) {
	var sh sheet
	var err error
	if sh.roster, err = s.opts.DB.ItemRoster(ctx, slug); err != nil {
		return sh, err
	}
	if sh.runs, err = s.opts.DB.LatestRuns(ctx, slug); err != nil {
		return sh, err
	}
	if sh.rubric, err = s.opts.DB.RubricItems(ctx, slug); err != nil {
		return sh, err
	}
	if sh.marks, err = s.opts.DB.RubricMarks(ctx, slug, user); err != nil {
		return sh, err
	}
	sh.released, err = s.opts.DB.Released(ctx, slug)
	return sh, err
}

// given is the rubric lines given to user, and their sum.
func (sh sheet) given(user string) ([]RubricLine, float64) {
	out := []RubricLine{}
	sum := 0.0
	for _, id := range sh.marks[user] {
		for _, ri := range sh.rubric {
			if ri.ID == id {
				out = append(out, RubricLine{ID: ri.ID, Points: ri.Points, Comment: ri.Comment})
				sum += ri.Points
			}
		}
	}
	return out, sum
}

func (s *Service) handleResults(c *echo.Context) error {
	_, slug, err := s.item(c)
	if err != nil {
		return err
	}
	sh, err := s.sheet(c.Request().Context(), slug, "")
	if err != nil {
		return err
	}
	out := make([]Summary, 0, len(sh.roster))
	for _, r := range sh.roster {
		sum := Summary{Username: r.Username, DisplayName: r.DisplayName, Pending: s.queue.isPending(slug, r.Username)}
		if r.Latest != nil {
			n := r.Latest.N
			sum.N = &n
		}
		var run *store.GradingRun
		if x, ok := sh.runs[r.Username]; ok {
			run = &x
			v, err := runView(x, false)
			if err != nil {
				return err
			}
			sum.Run = &v
		}
		_, rub := sh.given(r.Username)
		sum.Rubric = rub
		sum.Score, sum.Proposed, sum.MaxScore = score(r.Grade, run, rub, len(sh.marks[r.Username]) > 0)
		if r.Grade != nil {
			sum.Override = r.Grade.Score
		}
		out = append(out, sum)
	}
	s.regrades.mu.Lock()
	rg := s.regrades.byItem[slug].view()
	s.regrades.mu.Unlock()
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "released": sh.released, "regrade": rg,
		"students": out})
}

// result is one student's Result; for a student, stripped as they may see it.
func (s *Service) result(ctx context.Context, u auth.User, slug, title, user string) (Result, error) {
	sh, err := s.sheet(ctx, slug, user)
	if err != nil {
		return Result{}, err
	}
	res := Result{Item: slug, Title: title, Username: user, Released: sh.released, Rubric: []RubricLine{}}
	var row *store.RosterRow
	for i := range sh.roster {
		if sh.roster[i].Username == user {
			row = &sh.roster[i]
		}
	}
	if row == nil {
		return res, echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such student: %q", user))
	}
	if !u.Teaches() && !sh.released {
		return res, nil // nothing until the results are released
	}
	res.Pending = s.queue.isPending(slug, user)
	var run *store.GradingRun
	if x, ok := sh.runs[user]; ok {
		run = &x
		v, err := runView(x, true)
		if err != nil {
			return res, err
		}
		if !u.Teaches() {
			v = forStudent(v)
		}
		res.Run = &v
	}
	var rub float64
	res.Rubric, rub = sh.given(user)
	var proposed *float64
	res.Score, proposed, res.MaxScore = score(row.Grade, run, rub, len(sh.marks[user]) > 0)
	if row.Grade != nil {
		res.FeedbackMD = row.Grade.FeedbackMD
	}
	if u.Teaches() {
		res.Proposed = proposed
		if row.Grade != nil {
			res.Override = row.Grade.Score
		}
		runs, err := s.opts.DB.RunsOf(ctx, slug, user)
		if err != nil {
			return res, err
		}
		for _, r := range runs {
			v, err := runView(r, false)
			if err != nil {
				return res, err
			}
			res.Runs = append(res.Runs, v)
		}
	}
	return res, nil
}

func (s *Service) handleResult(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug, user := c.Param("slug"), c.Param("user")
	if !u.Teaches() && u.Username != user {
		return echo.NewHTTPError(http.StatusNotFound, "no such result")
	}
	_, title, err := s.opts.Course.Item(u, slug, s.now())
	if err != nil {
		return err
	}
	res, err := s.result(c.Request().Context(), u, slug, title, user)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "result": res})
}

// handleMyResults lists a student's released results of the items they
// may see.
func (s *Service) handleMyResults(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := s.now()
	grades, err := s.opts.DB.ReleasedGrades(ctx, u.Username)
	if err != nil {
		return err
	}
	items := map[string]bool{}
	for _, g := range grades {
		items[g.Item] = true
	}
	released, err := s.releasedItems(ctx, u.Username)
	if err != nil {
		return err
	}
	for _, it := range released {
		items[it] = true
	}
	out := []Result{}
	for _, slug := range slices.Sorted(func(yield func(string) bool) {
		for k := range items {
			if !yield(k) {
				return
			}
		}
	}) {
		_, title, err := s.opts.Course.Item(u, slug, now)
		if err != nil {
			continue // an item back in draft, or held during a test
		}
		res, err := s.result(ctx, u, slug, title, u.Username)
		if err != nil {
			continue
		}
		if res.Released && (res.Score != nil || res.Run != nil || res.FeedbackMD != "") {
			out = append(out, res)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "results": out})
}

// releasedItems is the released items user has a run of.
func (s *Service) releasedItems(ctx context.Context, user string) ([]string, error) {
	return s.opts.DB.ReleasedRunItems(ctx, user)
}

// ReleaseInput turns the release switch.
type ReleaseInput struct {
	Released bool `json:"released"`
}

func (s *Service) handleRelease(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	var in ReleaseInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := s.now()
	if err := s.opts.DB.SetReleased(ctx, slug, in.Released, u.Username, now); err != nil {
		return err
	}
	s.audit(ctx, u.Username, "grading.release", slug, map[string]any{"released": in.Released})
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "released": in.Released})
}

func (s *Service) handleRubric(c *echo.Context) error {
	_, slug, err := s.item(c)
	if err != nil {
		return err
	}
	items, err := s.opts.DB.RubricItems(c.Request().Context(), slug)
	if err != nil {
		return err
	}
	out := make([]RubricLine, 0, len(items))
	for _, ri := range items {
		out = append(out, RubricLine{ID: ri.ID, Points: ri.Points, Comment: ri.Comment})
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "rubric": out})
}

// RubricInput makes or changes a rubric line.
type RubricInput struct {
	Points  float64 `json:"points"`
	Comment string  `json:"comment"`
}

func (s *Service) handleSaveRubric(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	var in RubricInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	in.Comment = strings.TrimSpace(in.Comment)
	switch {
	case math.IsNaN(in.Points) || math.IsInf(in.Points, 0) || math.Abs(in.Points) > 1e4:
		return badRequest("points: a number from -10000 to 10000")
	case in.Comment == "" || utf8.RuneCountInString(in.Comment) > 2000 || !utf8.ValidString(in.Comment):
		return badRequest("comment: required, at most 2000 characters")
	}
	ri := store.RubricItem{Item: slug, Points: in.Points, Comment: in.Comment}
	status := http.StatusCreated
	if c.Param("id") != "" {
		if ri.ID, err = testID(c); err != nil {
			return echo.NewHTTPError(http.StatusNotFound, "no such rubric line")
		}
		status = http.StatusOK
	}
	ctx := c.Request().Context()
	saved, err := s.opts.DB.SaveRubricItem(ctx, ri)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such rubric line")
	}
	if err != nil {
		return err
	}
	s.audit(ctx, u.Username, "grading.rubric.save", slug, map[string]any{"line": saved.ID, "points": saved.Points})
	return c.JSON(status, map[string]any{"now": stamp(s.now()),
		"line": RubricLine{ID: saved.ID, Points: saved.Points, Comment: saved.Comment}})
}

func (s *Service) handleDeleteRubric(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	id, err := testID(c)
	if err != nil {
		return echo.NewHTTPError(http.StatusNotFound, "no such rubric line")
	}
	ctx := c.Request().Context()
	if err := s.opts.DB.DeleteRubricItem(ctx, slug, id); errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such rubric line")
	} else if err != nil {
		return err
	}
	s.audit(ctx, u.Username, "grading.rubric.delete", slug, map[string]any{"line": id})
	return c.NoContent(http.StatusNoContent)
}

// MarksInput gives a student exactly these rubric lines.
type MarksInput struct {
	IDs []int64 `json:"ids"`
}

func (s *Service) handleMarks(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	user := c.Param("user")
	var in MarksInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	if in.IDs == nil {
		in.IDs = []int64{}
	}
	ctx := c.Request().Context()
	target, err := s.opts.DB.UserByName(ctx, user)
	if errors.Is(err, store.ErrNotFound) || (err == nil && target.Role != auth.RoleStudent) {
		return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such student: %q", user))
	}
	if err != nil {
		return err
	}
	if err := s.opts.DB.SetRubricMarks(ctx, slug, user, in.IDs, u.Username, s.now()); errors.Is(err, store.ErrNotFound) {
		return badRequest("ids: a line of another item's rubric, or one that no longer exists")
	} else if err != nil {
		return err
	}
	s.audit(ctx, u.Username, "grading.marks", slug+"/"+user, map[string]any{"lines": in.IDs})
	_, title, _ := s.opts.Course.Item(u, slug, s.now())
	res, err := s.result(ctx, u, slug, title, user)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "result": res})
}

// csvCell keeps a spreadsheet from reading a cell as a formula.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func num(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

// handleCSV is the grades of an item with a column per test (the points
// each student's latest run gave) and the feedback.
func (s *Service) handleCSV(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	sh, err := s.sheet(ctx, slug, "")
	if err != nil {
		return err
	}
	// The columns: every test name of every latest run, in the order of
	// the item's tests (then of the runs).
	var cols []string
	seen := map[string]bool{}
	perUser := map[string]map[string]float64{}
	for _, r := range sh.roster {
		run, ok := sh.runs[r.Username]
		if !ok {
			continue
		}
		var tests []TestResult
		if err := json.Unmarshal(run.Results, &tests); err != nil {
			return err
		}
		m := map[string]float64{}
		for _, t := range tests {
			if !seen[t.Name] {
				seen[t.Name] = true
				cols = append(cols, t.Name)
			}
			m[t.Name] = t.Points
		}
		perUser[r.Username] = m
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	head := []string{"username", "display_name", "submitted_at", "late", "submission", "score", "max_score",
		"tests_score", "rubric", "override"}
	for _, col := range cols {
		head = append(head, csvCell("test: "+col))
	}
	head = append(head, "feedback")
	_ = w.Write(head)
	for _, r := range sh.roster {
		var at, late, n, tests, override, feedback string
		if r.Latest != nil {
			at, late, n = stamp(r.Latest.SubmittedAt), strconv.FormatBool(r.Latest.Late), strconv.Itoa(r.Latest.N)
		}
		var run *store.GradingRun
		if x, ok := sh.runs[r.Username]; ok {
			run = &x
			tests = strconv.FormatFloat(x.Score, 'f', -1, 64)
		}
		_, rub := sh.given(r.Username)
		eff, _, maxScore := score(r.Grade, run, rub, len(sh.marks[r.Username]) > 0)
		if r.Grade != nil {
			override, feedback = num(r.Grade.Score), r.Grade.FeedbackMD
		}
		row := []string{csvCell(r.Username), csvCell(r.DisplayName), at, late, n, num(eff), num(maxScore), tests,
			strconv.FormatFloat(rub, 'f', -1, 64), override}
		for _, col := range cols {
			if p, ok := perUser[r.Username][col]; ok {
				row = append(row, strconv.FormatFloat(p, 'f', -1, 64))
			} else {
				row = append(row, "")
			}
		}
		row = append(row, csvCell(feedback))
		_ = w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	s.audit(ctx, u.Username, "grading.results.export", slug, map[string]any{"rows": len(sh.roster)})
	h := c.Response().Header()
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-results.csv"`, slug))
	h.Set("Cache-Control", "private, no-store")
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}
