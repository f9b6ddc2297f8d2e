package grading

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
)

// Test is a test as staff see it.
type Test struct {
	ID                       int64     `json:"id"`
	Kind                     string    `json:"kind"` // "io" or "py"
	Name                     string    `json:"name"`
	Hidden                   bool      `json:"hidden"`
	Points                   float64   `json:"points"`
	MainFile                 string    `json:"main_file"`
	Stdin                    string    `json:"stdin"`
	Expected                 string    `json:"expected"`
	IgnoreTrailingWhitespace bool      `json:"ignore_trailing_whitespace"`
	IgnoreCase               bool      `json:"ignore_case"`
	Tolerance                *float64  `json:"tolerance"`
	CPUSeconds               int       `json:"cpu_seconds"`
	Source                   string    `json:"source"`
	UpdatedBy                string    `json:"updated_by"`
	UpdatedAt                time.Time `json:"updated_at"`
}

func testView(t store.GradingTest) Test {
	return Test{ID: t.ID, Kind: t.Kind, Name: t.Name, Hidden: t.Hidden, Points: t.Points, MainFile: t.MainFile,
		Stdin: t.Stdin, Expected: t.Expected, IgnoreTrailingWhitespace: t.IgnoreTrailingWhitespace,
		IgnoreCase: t.IgnoreCase, Tolerance: t.Tolerance, CPUSeconds: t.CPUSeconds, Source: t.Source,
		UpdatedBy: t.UpdatedBy, UpdatedAt: t.UpdatedAt}
}

// TestInput creates or replaces a test. For "io": stdin, expected and the
// options; for "py": source (a pytest or unittest file; name is its file
// name, ending in .py). Points: the case's, or each test's in the file.
type TestInput struct {
	Kind                     string   `json:"kind"`
	Name                     string   `json:"name"`
	Hidden                   bool     `json:"hidden"`
	Points                   *float64 `json:"points"`
	MainFile                 string   `json:"main_file"`
	Stdin                    string   `json:"stdin"`
	Expected                 string   `json:"expected"`
	IgnoreTrailingWhitespace *bool    `json:"ignore_trailing_whitespace"`
	IgnoreCase               bool     `json:"ignore_case"`
	Tolerance                *float64 `json:"tolerance"`
	CPUSeconds               int      `json:"cpu_seconds"`
	Source                   string   `json:"source"`
}

// Limits of a test.
const (
	maxTestName   = 100
	maxTestText   = 1 << 20 // stdin, expected output, a test file
	maxCPUSeconds = 60
)

func badRequest(msg string) error { return echo.NewHTTPError(http.StatusBadRequest, msg) }

// toStore checks in and makes the test it describes.
func (in TestInput) toStore(item, by string, at time.Time) (store.GradingTest, error) {
	t := store.GradingTest{Item: item, Kind: in.Kind, Name: strings.TrimSpace(in.Name), Hidden: in.Hidden,
		MainFile: strings.TrimSpace(in.MainFile), Stdin: in.Stdin, Expected: in.Expected, IgnoreTrailingWhitespace: true,
		IgnoreCase: in.IgnoreCase, Tolerance: in.Tolerance, CPUSeconds: in.CPUSeconds, Source: in.Source,
		UpdatedBy: by, UpdatedAt: at, Points: 1}
	if in.IgnoreTrailingWhitespace != nil {
		t.IgnoreTrailingWhitespace = *in.IgnoreTrailingWhitespace
	}
	if in.Points != nil {
		t.Points = *in.Points
	}
	if t.CPUSeconds == 0 {
		t.CPUSeconds = 2
	}
	switch {
	case t.Kind != store.TestIO && t.Kind != store.TestPy:
		return t, badRequest(`kind: "io" (input and expected output) or "py" (a pytest or unittest file)`)
	case t.Name == "" || utf8.RuneCountInString(t.Name) > maxTestName || !utf8.ValidString(t.Name) || strings.ContainsAny(t.Name, "\x00\r\n"):
		return t, badRequest(fmt.Sprintf("name: required, one line of at most %d characters", maxTestName))
	case math.IsNaN(t.Points) || math.IsInf(t.Points, 0) || t.Points < 0 || t.Points > 1e4:
		return t, badRequest("points: a number from 0 to 10000")
	case t.Tolerance != nil && (math.IsNaN(*t.Tolerance) || math.IsInf(*t.Tolerance, 0) || *t.Tolerance < 0):
		return t, badRequest("tolerance: a number from 0, or null for exact numbers")
	case t.CPUSeconds < 1 || t.CPUSeconds > maxCPUSeconds:
		return t, badRequest(fmt.Sprintf("cpu_seconds: 1 to %d", maxCPUSeconds))
	case len(t.Stdin) > maxTestText || len(t.Expected) > maxTestText || len(t.Source) > maxTestText:
		return t, badRequest(fmt.Sprintf("stdin, expected and source: at most %d KB each", maxTestText>>10))
	case !utf8.ValidString(t.Stdin) || !utf8.ValidString(t.Expected) || !utf8.ValidString(t.Source) ||
		strings.ContainsRune(t.Stdin, 0) || strings.ContainsRune(t.Expected, 0) || strings.ContainsRune(t.Source, 0):
		return t, badRequest("stdin, expected and source: text (UTF-8, no NUL)")
	}
	if t.MainFile != "" {
		if err := checkRelName(t.MainFile); err != nil || !strings.HasSuffix(t.MainFile, ".py") {
			return t, badRequest("main_file: the path of a .py file in the submission, like main.py or src/app.py")
		}
	}
	if t.Kind == store.TestPy {
		if !strings.HasSuffix(t.Name, ".py") || checkRelName(t.Name) != nil || strings.Contains(t.Name, "/") {
			return t, badRequest("name: a test file's name, ending in .py (test_hw1.py)")
		}
		if strings.TrimSpace(t.Source) == "" {
			return t, badRequest("source: the test file is empty")
		}
		t.Stdin, t.Expected, t.MainFile, t.Tolerance = "", "", "", nil
	} else {
		t.Source = ""
	}
	return t, nil
}

// checkRelName checks a relative file name inside a submission.
func checkRelName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name || strings.HasPrefix(name, "../") ||
		name == ".." || strings.ContainsAny(name, "\\\x00") {
		return errors.New("not a relative path")
	}
	return nil
}

// item checks that u may know of slug now, and answers its kind and title.
func (s *Service) item(c *echo.Context) (auth.User, string, error) {
	u, err := auth.MustUser(c)
	if err != nil {
		return u, "", err
	}
	slug := c.Param("slug")
	if _, _, err := s.opts.Course.Item(u, slug, s.now()); err != nil {
		return u, "", err
	}
	return u, slug, nil
}

func (s *Service) handleTests(c *echo.Context) error {
	_, slug, err := s.item(c)
	if err != nil {
		return err
	}
	tests, err := s.opts.DB.GradingTests(c.Request().Context(), slug)
	if err != nil {
		return err
	}
	out := make([]Test, 0, len(tests))
	for _, t := range tests {
		out = append(out, testView(t))
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "tests": out})
}

func (s *Service) handleCreateTest(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	var in TestInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	now := s.now()
	t, err := in.toStore(slug, u.Username, now)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	created, err := s.opts.DB.CreateGradingTest(ctx, t)
	if errors.Is(err, store.ErrConflict) {
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("this item already has a test named %q", t.Name))
	}
	if err != nil {
		return err
	}
	s.audit(ctx, u.Username, "grading.test.create", slug, map[string]any{"test": created.ID, "name": created.Name,
		"kind": created.Kind, "hidden": created.Hidden})
	return c.JSON(http.StatusCreated, map[string]any{"now": stamp(now), "test": testView(created)})
}

func testID(c *echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, echo.NewHTTPError(http.StatusNotFound, "no such test")
	}
	return id, nil
}

func (s *Service) handleUpdateTest(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	id, err := testID(c)
	if err != nil {
		return err
	}
	var in TestInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	old, err := s.opts.DB.GradingTest(ctx, slug, id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such test")
	}
	if err != nil {
		return err
	}
	if in.Kind == "" {
		in.Kind = old.Kind
	}
	if in.Kind != old.Kind {
		return badRequest("kind: a test keeps its kind; make a new test instead")
	}
	now := s.now()
	t, err := in.toStore(slug, u.Username, now)
	if err != nil {
		return err
	}
	t.ID = id
	updated, err := s.opts.DB.UpdateGradingTest(ctx, t)
	switch {
	case errors.Is(err, store.ErrConflict):
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("this item already has a test named %q", t.Name))
	case errors.Is(err, store.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "no such test")
	case err != nil:
		return err
	}
	s.audit(ctx, u.Username, "grading.test.update", slug, map[string]any{"test": id, "name": updated.Name, "hidden": updated.Hidden})
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "test": testView(updated)})
}

func (s *Service) handleDeleteTest(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	id, err := testID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.opts.DB.DeleteGradingTest(ctx, slug, id); errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "no such test")
	} else if err != nil {
		return err
	}
	s.audit(ctx, u.Username, "grading.test.delete", slug, map[string]any{"test": id})
	return c.NoContent(http.StatusNoContent)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
