package grading

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
)

// The similarity report runs Dolos over every student's latest submission
// of an item, in a container of its own (no network, the usual limits),
// and keeps the most similar pairs. Staff only; the report lives in memory
// until the next one (or a restart).

// SimilarityReport is the state of an item's report.
type SimilarityReport struct {
	Item       string     `json:"item"`
	State      string     `json:"state"` // running, done, failed
	Error      string     `json:"error,omitempty"`
	By         string     `json:"by"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Students   int        `json:"students"`
	Pairs      []Pair     `json:"pairs"`
	// Sources is each student's Python files as compared (joined, each
	// headed by its name), for the side-by-side view.
	Sources map[string]string `json:"sources,omitempty"`
}

// Pair is two students whose work is alike.
type Pair struct {
	Left            string     `json:"left"`
	Right           string     `json:"right"`
	Similarity      float64    `json:"similarity"`
	LongestFragment int        `json:"longest_fragment"`
	Overlap         int        `json:"overlap"`
	Fragments       []Fragment `json:"fragments"`
}

// Fragment is a stretch of lines alike in both (1-based, inclusive).
type Fragment struct {
	LeftStart  int `json:"left_start"`
	LeftEnd    int `json:"left_end"`
	RightStart int `json:"right_start"`
	RightEnd   int `json:"right_end"`
}

type similarity struct {
	mu      sync.Mutex
	reports map[string]*SimilarityReport
}

// Limits of a report.
const (
	maxPairs        = 50
	similarityTime  = 3 * time.Minute
	similarityBytes = 32 << 20
)

func (s *Service) handleStartSimilarity(c *echo.Context) error {
	u, slug, err := s.item(c)
	if err != nil {
		return err
	}
	if s.opts.Similarity == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable,
			"the similarity report is not available on this server (its Dolos image is not built: make dolos-image)")
	}
	s.sim.mu.Lock()
	if r := s.sim.reports[slug]; r != nil && r.State == "running" {
		s.sim.mu.Unlock()
		return echo.NewHTTPError(http.StatusConflict, "a similarity report of this item is already running")
	}
	now := s.now()
	r := &SimilarityReport{Item: slug, State: "running", By: u.Username, StartedAt: now}
	s.sim.reports[slug] = r
	s.sim.mu.Unlock()
	s.audit(c.Request().Context(), u.Username, "grading.similarity", slug, nil)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		pairs, sources, n, err := s.runSimilarity(s.ctx, slug)
		s.sim.mu.Lock()
		defer s.sim.mu.Unlock()
		at := s.now()
		r.FinishedAt, r.Students = &at, n
		if err != nil {
			r.State, r.Error = "failed", err.Error()
			return
		}
		r.State, r.Pairs, r.Sources = "done", pairs, sources
	}()
	return c.JSON(http.StatusAccepted, map[string]any{"now": stamp(now), "similarity": r})
}

func (s *Service) handleSimilarity(c *echo.Context) error {
	_, slug, err := s.item(c)
	if err != nil {
		return err
	}
	s.sim.mu.Lock()
	defer s.sim.mu.Unlock()
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(s.now()), "similarity": s.sim.reports[slug]})
}

// dolosInput and dolosReport: see dolos-image/compare.mjs.
type dolosInput struct {
	Files []dolosFile `json:"files"`
	Pairs int         `json:"pairs"`
}

type dolosFile struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

type dolosReport struct {
	Pairs []struct {
		Left            string     `json:"left"`
		Right           string     `json:"right"`
		Similarity      float64    `json:"similarity"`
		LongestFragment int        `json:"longest_fragment"`
		Overlap         int        `json:"overlap"`
		Fragments       []Fragment `json:"fragments"`
	} `json:"pairs"`
	Error string `json:"error"`
}

// runSimilarity compares the latest snapshots of slug: each student's
// Python files joined into one text.
func (s *Service) runSimilarity(ctx context.Context, slug string) ([]Pair, map[string]string, int, error) {
	subs, err := s.opts.DB.LatestSubmissions(ctx, slug)
	if err != nil {
		return nil, nil, 0, err
	}
	sources := map[string]string{}
	var in dolosInput
	in.Pairs = maxPairs
	for _, sub := range subs {
		files, err := s.snapshotFiles(sub)
		if err != nil {
			continue // too large: left out (the report says how many were compared)
		}
		var b strings.Builder
		for _, f := range files {
			if !strings.HasSuffix(f.Name, ".py") {
				continue
			}
			b.WriteString("# ---- " + f.Name + "\n")
			b.Write(f.Data)
			if len(f.Data) > 0 && f.Data[len(f.Data)-1] != '\n' {
				b.WriteByte('\n')
			}
		}
		if b.Len() == 0 {
			continue
		}
		sources[sub.Username] = b.String()
		in.Files = append(in.Files, dolosFile{Name: sub.Username + ".py", Content: b.String()})
	}
	if len(in.Files) < 2 {
		return []Pair{}, sources, len(in.Files), nil
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, nil, 0, err
	}
	res, err := s.opts.Similarity.Run(ctx, body, similarityBytes, similarityTime)
	if err != nil {
		return nil, nil, 0, err
	}
	if res.TimedOut {
		return nil, nil, 0, errors.New("the comparison took too long")
	}
	var rep dolosReport
	if err := json.Unmarshal(res.Stdout, &rep); err != nil {
		return nil, nil, 0, errors.New("the comparison gave no report: " + lastLine(string(res.Stderr)))
	}
	if rep.Error != "" {
		return nil, nil, 0, errors.New("the comparison failed: " + rep.Error)
	}
	pairs := make([]Pair, 0, len(rep.Pairs))
	for _, p := range rep.Pairs {
		l, r := strings.TrimSuffix(p.Left, ".py"), strings.TrimSuffix(p.Right, ".py")
		if _, ok := sources[l]; !ok {
			continue
		}
		if _, ok := sources[r]; !ok {
			continue
		}
		pairs = append(pairs, Pair{Left: l, Right: r, Similarity: p.Similarity, LongestFragment: p.LongestFragment,
			Overlap: p.Overlap, Fragments: p.Fragments})
	}
	slices.SortFunc(pairs, func(a, b Pair) int {
		switch {
		case a.Similarity > b.Similarity:
			return -1
		case a.Similarity < b.Similarity:
			return 1
		}
		return strings.Compare(a.Left+a.Right, b.Left+b.Right)
	})
	if len(pairs) > maxPairs {
		pairs = pairs[:maxPairs]
	}
	return pairs, sources, len(in.Files), nil
}
