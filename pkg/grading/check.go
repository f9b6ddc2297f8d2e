package grading

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
	"golang.org/x/time/rate"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/workspace"
)

// CheckInput names the files to check, as a submission would: tree paths
// (files or folders); names are relative to the folder holding them all.
type CheckInput struct {
	Files []string `json:"files"`
}

// Check is the answer to a check: the results of the tests run (a
// student: the visible ones) against the files as they are now.
type Check struct {
	Tests    []TestResult `json:"tests"`
	Score    float64      `json:"score"`
	MaxScore float64      `json:"max_score"`
	Error    string       `json:"error,omitempty"`
	Hidden   int          `json:"hidden"` // tests a student's check left out (they count at grading)
	Seconds  float64      `json:"seconds"`
}

func (s *Service) handleCheck(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	var in CheckInput
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	if err := s.limits.allow(c, u.Username); err != nil {
		return err
	}
	now := s.now()
	files, err := s.chosenFiles(u, in.Files, now)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	tests, err := s.opts.DB.GradingTests(ctx, slug)
	if err != nil {
		return err
	}
	hidden := 0
	if !u.IsStaff() {
		visible := tests[:0:0]
		for _, t := range tests {
			if t.Hidden {
				hidden++
				continue
			}
			visible = append(visible, t)
		}
		tests = visible
	}
	if len(tests) == 0 {
		return echo.NewHTTPError(http.StatusConflict, "this item has no tests to check against yet")
	}
	out, err := s.grade(ctx, s.opts.Check, files, tests)
	if err != nil {
		return runError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), "check": Check{Tests: out.Tests, Score: out.Score,
		MaxScore: out.MaxScore, Error: out.Error, Hidden: hidden, Seconds: math.Round(out.Took*1000) / 1000}})
}

// runError words a grading that could not run for the user.
func runError(err error) error {
	switch {
	case errors.Is(err, errTooLarge):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, ErrUnavailable):
		return echo.NewHTTPError(http.StatusServiceUnavailable, "checking is unavailable right now (no Docker engine answers); try again later")
	}
	return err
}

// chosenFiles reads the files u chose to check. A student may check only
// files of their own (Local/<self>/… or Submissions/<item>/<self>/…) that
// they may read; staff any file they may read.
func (s *Service) chosenFiles(u auth.User, paths []string, now time.Time) ([]File, error) {
	if len(paths) == 0 {
		return nil, badRequest("choose the files to check")
	}
	if len(paths) > 200 {
		return nil, badRequest("at most 200 files per check")
	}
	parsed := make([]workspace.Path, 0, len(paths))
	for _, raw := range paths {
		p, err := workspace.ParsePath(raw)
		if err != nil {
			return nil, badRequest(err.Error())
		}
		own := (p.Seg(0) == workspace.RootLocal && p.Depth() >= 3) ||
			(p.Seg(0) == workspace.RootSubmissions && p.Depth() >= 4)
		if !own || (!u.IsStaff() && p.Owner() != u.Username) || workspace.AccessPath(u, p, s.opts.Policy, now) < workspace.Read {
			return nil, badRequest(fmt.Sprintf("%s: you can check only files of your own folders", raw))
		}
		parsed = append(parsed, p)
	}
	base := parsed[0].Parent()
	for _, p := range parsed[1:] {
		for !p.Within(base) {
			base = base.Parent()
		}
	}
	var out []File
	var total int64
	seen := map[string]bool{}
	add := func(rel, name string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		f, fi, err := s.opts.Files.OpenRegular(rel)
		if err != nil {
			return badRequest(rel + ": " + fileMessage(err))
		}
		defer f.Close()
		total += fi.Size()
		if fi.Size() > s.opts.MaxFileBytes || total > maxSendBytes {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
				fmt.Sprintf("%s makes the files too large to check (%d MB per file, %d MB in all)", name,
					s.opts.MaxFileBytes>>20, maxSendBytes>>20))
		}
		data, err := io.ReadAll(io.LimitReader(f, s.opts.MaxFileBytes+1))
		if err != nil {
			return err
		}
		out = append(out, File{Name: name, Data: data})
		return nil
	}
	for _, p := range parsed {
		name := strings.TrimPrefix(strings.TrimPrefix(p.String(), base.String()), "/")
		fi, err := s.opts.Files.Lstat(p.String())
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, echo.NewHTTPError(http.StatusNotFound, p.String()+" does not exist")
		case err != nil:
			return nil, badRequest(p.String() + ": " + fileMessage(err))
		case fi.Mode().IsRegular():
			if err := add(p.String(), name); err != nil {
				return nil, err
			}
		case fi.IsDir():
			entries, err := s.opts.Files.FilesUnder(p.String())
			if err != nil {
				return nil, badRequest(p.String() + ": " + fileMessage(err))
			}
			for _, e := range entries {
				if len(out) >= 200 {
					return nil, badRequest("at most 200 files per check")
				}
				if err := add(path.Join(p.String(), e.Rel), path.Join(name, e.Rel)); err != nil {
					return nil, err
				}
			}
		default:
			return nil, badRequest(p.String() + " is not a regular file or folder")
		}
	}
	if len(out) == 0 {
		return nil, badRequest("nothing to check: the chosen folders are empty")
	}
	return out, nil
}

func fileMessage(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "does not exist"
	}
	return "cannot be read (a link, or not a regular file)"
}

// limiter allows each user perMinute checks a minute, like Run.
type limiter struct {
	perMinute int
	mu        sync.Mutex
	users     map[string]*rate.Limiter
}

func newLimiter(perMinute int) *limiter {
	return &limiter{perMinute: perMinute, users: map[string]*rate.Limiter{}}
}

func (l *limiter) allow(c *echo.Context, user string) error {
	l.mu.Lock()
	lim := l.users[user]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMinute)), l.perMinute)
		l.users[user] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		secs := int(math.Ceil(d.Seconds()))
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return echo.NewHTTPError(http.StatusTooManyRequests, fmt.Sprintf("too many checks; wait %d s", secs))
	}
	return nil
}
