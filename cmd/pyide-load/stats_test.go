package main

import (
	"math"
	"testing"
	"time"
)

func msd(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func TestPercentileNearestRank(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = msd(float64(i + 1)) // 1..100 ms
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", []time.Duration{msd(7)}, 99, msd(7)},
		{"p50 of 1..100", hundred, 50, msd(50)},
		{"p99 of 1..100", hundred, 99, msd(99)},
		{"p100 is the max", hundred, 100, msd(100)},
		{"p0 is the min", hundred, 0, msd(1)},
		{"p99 of ten samples is the max", hundred[:10], 99, msd(10)},
		{"p50 of two is the lower", []time.Duration{msd(1), msd(9)}, 50, msd(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeUnsortedInput(t *testing.T) {
	t.Parallel()
	in := []time.Duration{msd(30), msd(10), msd(20), msd(40)}
	s := summarize(in)
	if s.Count != 4 || s.P50 != 20 || s.P99 != 40 || s.Max != 40 || s.Mean != 25 {
		t.Errorf("summarize = %+v", s)
	}
	if in[0] != msd(30) {
		t.Error("summarize reordered its input")
	}
	if (summarize(nil) != Summary{}) {
		t.Error("summary of nothing is not zero")
	}
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	edges := []float64{1, 10, 100}
	tests := []struct {
		name string
		in   []float64 // ms
		want []Bucket
	}{
		{"empty", nil, []Bucket{}},
		{"below, between, above", []float64{0.5, 5, 50, 500},
			[]Bucket{{0, 1, 1}, {1, 10, 1}, {10, 100, 1}, {100, 0, 1}}},
		{"an edge value starts its bucket", []float64{10, 10, 99.9},
			[]Bucket{{10, 100, 3}}},
		{"empty ends are trimmed, inner gaps kept", []float64{5, 500},
			[]Bucket{{1, 10, 1}, {10, 100, 0}, {100, 0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ds []time.Duration
			for _, v := range tt.in {
				ds = append(ds, msd(v))
			}
			got := histogram(ds, edges)
			if len(got) != len(tt.want) {
				t.Fatalf("histogram = %+v, want %+v", got, tt.want)
			}
			total := 0
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("bucket %d = %+v, want %+v", i, got[i], tt.want[i])
				}
				total += got[i].Count
			}
			if total != len(tt.in) {
				t.Errorf("histogram holds %d samples, want %d", total, len(tt.in))
			}
		})
	}
}

func TestBucketEdgesAscendLogSpaced(t *testing.T) {
	t.Parallel()
	if bucketEdges[0] != 0.1 || bucketEdges[len(bucketEdges)-1] != 50000 {
		t.Errorf("edges run %v..%v, want 0.1..50000", bucketEdges[0], bucketEdges[len(bucketEdges)-1])
	}
	for i := 1; i < len(bucketEdges); i++ {
		r := bucketEdges[i] / bucketEdges[i-1]
		if r < 1.9 || r > 2.6 || math.IsNaN(r) {
			t.Errorf("edge %v after %v: ratio %.2f is not 1-2-5", bucketEdges[i], bucketEdges[i-1], r)
		}
	}
}

func TestWindows(t *testing.T) {
	t.Parallel()
	samples := []timed{
		{at: 1 * time.Second, d: msd(2)},
		{at: 4 * time.Second, d: msd(4)},
		{at: 12 * time.Second, d: msd(9)},
		{at: 30 * time.Second, d: msd(1)}, // past the span: dropped
	}
	w := windows(samples, 5*time.Second, 15*time.Second)
	if len(w) != 3 {
		t.Fatalf("%d windows, want 3", len(w))
	}
	if w[0].Samples != 2 || w[0].P50 != 2 || w[0].P99 != 4 || w[0].At != 5 {
		t.Errorf("window 0 = %+v", w[0])
	}
	if w[1].Samples != 0 || w[2].Samples != 1 || w[2].P99 != 9 || w[2].At != 15 {
		t.Errorf("windows 1, 2 = %+v, %+v", w[1], w[2])
	}
}

func TestParseStatOddCommandNames(t *testing.T) {
	t.Parallel()
	line := "4242 (post gres: a) b) S 17 4242 4242 0 -1 4194560 500 0 0 0 120 30 7 3 20 0 1 0 100 1000 50"
	st, ok := parseStat([]byte(line))
	if !ok || st.pid != 4242 || st.ppid != 17 || st.ticks != 150 || st.childTks != 10 {
		t.Errorf("parseStat = %+v, %v", st, ok)
	}
	if _, ok := parseStat([]byte("garbage")); ok {
		t.Error("parseStat accepted garbage")
	}
}

func TestTreeAndTicks(t *testing.T) {
	t.Parallel()
	stats := map[int]procStat{
		1:  {pid: 1, ppid: 0, ticks: 1000},
		10: {pid: 10, ppid: 1, ticks: 5, childTks: 100},
		11: {pid: 11, ppid: 10, ticks: 7},
		12: {pid: 12, ppid: 11, ticks: 3},
		20: {pid: 20, ppid: 1, ticks: 50},
	}
	pids := tree(stats, 10)
	if len(pids) != 3 {
		t.Fatalf("tree(10) = %v, want 10, 11, 12", pids)
	}
	if got := treeTicks(stats, pids); got != 115 {
		t.Errorf("treeTicks = %d, want 5+7+3 live + 100 reaped", got)
	}
	if tree(stats, 99) != nil || treeTicks(stats, nil) != 0 {
		t.Error("a missing process has a tree")
	}
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	m := parseMetrics("# HELP x\n# TYPE x counter\npyide_sandbox_starts_total{path=\"warm\"} 12\npyide_sandbox_spares 3\nbad line\n")
	if m[`pyide_sandbox_starts_total{path="warm"}`] != 12 || m["pyide_sandbox_spares"] != 3 || len(m) != 2 {
		t.Errorf("parseMetrics = %v", m)
	}
}

func TestHistogramSummary(t *testing.T) {
	t.Parallel()
	page := `# HELP pyide_terminal_echo_seconds x
pyide_terminal_echo_seconds_bucket{le="0.001"} 50
pyide_terminal_echo_seconds_bucket{le="0.01"} 90
pyide_terminal_echo_seconds_bucket{le="0.1"} 100
pyide_terminal_echo_seconds_bucket{le="+Inf"} 100
pyide_terminal_echo_seconds_sum 0.5
pyide_terminal_echo_seconds_count 100
`
	s := histogramSummary(parseMetrics(page), "pyide_terminal_echo_seconds")
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	// p50: rank 50 ends the first bucket (1 ms); p90: rank 90 ends the
	// second (10 ms); p99: 9/10 of the way through the third, 10–100 ms.
	if s.Count != 100 || !near(s.P50, 1) || !near(s.P90, 10) || !near(s.P99, 91) || !near(s.Mean, 5) {
		t.Errorf("summary = %+v", s)
	}
	if got := histogramSummary(parseMetrics(page), "absent"); got.Count != 0 {
		t.Errorf("absent histogram = %+v", got)
	}
	tail := `h_bucket{le="0.5"} 1
h_bucket{le="+Inf"} 10
`
	if got := histogramSummary(parseMetrics(tail), "h"); got.P99 != 500 {
		t.Errorf("a quantile in +Inf = %v ms, want the last finite bound", got.P99)
	}
}
