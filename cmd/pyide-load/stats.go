package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// series collects the latencies of one kind from many goroutines. It keeps
// every sample: a 200-student, 10-minute run makes well under a million,
// a few MB at most.
type series struct {
	mu   sync.Mutex
	vals []time.Duration
}

func (s *series) add(d time.Duration) {
	s.mu.Lock()
	s.vals = append(s.vals, d)
	s.mu.Unlock()
}

func (s *series) snapshot() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.vals)
}

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// percentile is the nearest-rank percentile of sorted values: the smallest
// sample with at least p% of the samples at or below it. Unlike
// interpolation it always names a latency somebody actually had.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(n))) - 1
	return sorted[min(max(i, 0), n-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		Count: len(s),
		P50:   ms(percentile(s, 50)),
		P90:   ms(percentile(s, 90)),
		P99:   ms(percentile(s, 99)),
		Max:   ms(s[len(s)-1]),
		Mean:  ms(sum / time.Duration(len(s))),
	}
}

// Bucket is one bar of a histogram: samples in [Lo, Hi) milliseconds; the
// last bucket has Hi = +Inf (written as 0 in JSON, which has no infinity).
type Bucket struct {
	Lo    float64 `json:"lo_ms"`
	Hi    float64 `json:"hi_ms"`
	Count int     `json:"count"`
}

// bucketEdges are log-spaced (1-2-5) edges from 0.1 ms to 60 s: latencies
// here span four orders of magnitude, so linear bars would hide either the
// fast path or the tail.
var bucketEdges = func() []float64 {
	var e []float64
	for dec := 0.1; dec < 100000; dec *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := dec * m; v <= 60000 {
				e = append(e, v)
			}
		}
	}
	return e
}()

// histogram counts ds into buckets bounded by edges (ascending, in ms):
// one bucket below the first edge, one between each pair, one above the
// last. Empty leading and trailing buckets are trimmed.
func histogram(ds []time.Duration, edges []float64) []Bucket {
	b := make([]Bucket, len(edges)+1)
	for i := range b {
		if i > 0 {
			b[i].Lo = edges[i-1]
		}
		if i < len(edges) {
			b[i].Hi = edges[i]
		} else {
			b[i].Hi = math.Inf(1)
		}
	}
	for _, d := range ds {
		v := ms(d)
		i, _ := slices.BinarySearch(edges, v)
		// BinarySearch finds the first edge >= v; a value equal to an edge
		// belongs to the bucket that starts there.
		if i < len(edges) && edges[i] == v {
			i++
		}
		b[i].Count++
	}
	lo, hi := 0, len(b)
	for lo < hi && b[lo].Count == 0 {
		lo++
	}
	for hi > lo && b[hi-1].Count == 0 {
		hi--
	}
	out := b[lo:hi]
	for i := range out {
		if math.IsInf(out[i].Hi, 1) {
			out[i].Hi = 0
		}
	}
	return out
}

// window is one slice of the time series.
type window struct {
	At       float64 `json:"t_s"` // seconds since the class began, end of window
	Samples  int     `json:"samples"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Sessions float64 `json:"sessions"` // running sandboxes (server gauge) at the window's end
}

// timed is a latency observed at a moment of the run.
type timed struct {
	at time.Duration // since the class began
	d  time.Duration
}

// windows groups samples into consecutive windows of width w, over span.
func windows(samples []timed, w, span time.Duration) []window {
	if w <= 0 || span <= 0 {
		return nil
	}
	n := int((span + w - 1) / w)
	groups := make([][]time.Duration, n)
	for _, s := range samples {
		i := int(s.at / w)
		if i < 0 || i >= n {
			continue
		}
		groups[i] = append(groups[i], s.d)
	}
	out := make([]window, n)
	for i, g := range groups {
		sm := summarize(g)
		out[i] = window{At: (time.Duration(i+1) * w).Seconds(), Samples: sm.Count, P50: sm.P50, P99: sm.P99}
	}
	return out
}
