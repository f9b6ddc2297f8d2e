package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// sample is the machine's state at one moment of the run.
type sample struct {
	At           float64 `json:"t_s"`            // seconds since the class began (negative: before)
	ServerCPU    float64 `json:"server_cpu_pct"` // of one core, since the previous sample
	ServerRSS    uint64  `json:"server_rss_bytes"`
	PgCPU        float64 `json:"postgres_cpu_pct"`
	PgPSS        uint64  `json:"postgres_pss_bytes"`
	GenCPU       float64 `json:"generator_cpu_pct"`
	GenRSS       uint64  `json:"generator_rss_bytes"`
	EngineCPU    float64 `json:"engine_cpu_pct"`     // dockerd, containerd, shims
	SandboxCPU   float64 `json:"containers_cpu_pct"` // every container on the engine
	HostCPU      float64 `json:"host_cpu_pct"`       // the whole machine, % of all cores
	Load1        float64 `json:"load1"`
	MemAvailable uint64  `json:"mem_available_bytes"`
	// From the server's /metrics; -1 when it did not answer.
	Running float64 `json:"sandboxes_running"`
	Spares  float64 `json:"sandbox_spares"`
	Sockets float64 `json:"websockets"`
	Queued  float64 `json:"queued"`
	// From the containers' cgroups (refreshed every few seconds).
	Containers int    `json:"containers"`
	SandboxMem uint64 `json:"sandbox_mem_bytes"`
	SandboxRSS uint64 `json:"sandbox_rss_bytes"`
}

// sampler reads /proc, the server's metrics and the containers' cgroups
// once a second until stopped. It is cheap (a few hundred small file
// reads) so it does not itself load the machine it measures.
type sampler struct {
	start      time.Time // class start; set before logins
	serverPID  func() int
	pgPID      func() int
	metricsURL string
	docker     *client.Client
	filters    client.Filters // selects the server's sandboxes

	mu      sync.Mutex
	samples []sample
	last    map[string]float64 // last metrics scrape
}

func (s *sampler) run(ctx context.Context) {
	hc := &http.Client{Timeout: 3 * time.Second}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var prevAt time.Time
	var prevSrv, prevPg, prevGen, prevEng, prevBusy, prevTotal, prevCont uint64
	var cMem, cRSS uint64
	var cN int
	self := os.Getpid()
	for i := 0; ; i++ {
		now := time.Now()
		stats := allStats()
		srv := tree(stats, s.serverPID())
		pg := tree(stats, s.pgPID())
		gen := tree(stats, self)
		st, pt, gt := treeTicks(stats, srv), treeTicks(stats, pg), treeTicks(stats, gen)
		et, ct := engineTicks(stats), containersCPU()
		busy, total := hostTicks()
		smp := sample{
			At:           now.Sub(s.start).Seconds(),
			ServerRSS:    rssBytes(srv),
			PgPSS:        pssBytes(pg),
			GenRSS:       rssBytes([]int{self}),
			MemAvailable: memAvailable(),
			Load1:        load1(),
			Running:      -1, Spares: -1, Sockets: -1, Queued: -1,
		}
		if !prevAt.IsZero() {
			el := now.Sub(prevAt).Seconds() * clockTicks / 100
			pct := func(cur, prev uint64) float64 {
				if cur < prev { // the process tree changed (server restarted)
					return 0
				}
				return float64(cur-prev) / el
			}
			smp.ServerCPU, smp.PgCPU, smp.GenCPU = pct(st, prevSrv), pct(pt, prevPg), pct(gt, prevGen)
			smp.EngineCPU = pct(et, prevEng)
			if ct >= prevCont {
				smp.SandboxCPU = float64(ct-prevCont) / 1e7 / now.Sub(prevAt).Seconds()
			}
			if total > prevTotal && busy >= prevBusy {
				smp.HostCPU = 100 * float64(busy-prevBusy) / float64(total-prevTotal)
			}
		}
		prevAt, prevSrv, prevPg, prevGen = now, st, pt, gt
		prevEng, prevBusy, prevTotal, prevCont = et, busy, total, ct
		if m := scrape(ctx, hc, s.metricsURL); m != nil {
			smp.Running, smp.Spares = m["pyide_sandboxes_running"], m["pyide_sandbox_spares"]
			smp.Sockets, smp.Queued = m["pyide_websocket_connections"], m["pyide_sandbox_queue_length"]
			s.mu.Lock()
			s.last = m
			s.mu.Unlock()
		}
		if i%3 == 0 && s.docker != nil {
			cN, cMem, cRSS = s.containers(ctx)
		}
		smp.Containers, smp.SandboxMem, smp.SandboxRSS = cN, cMem, cRSS
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// containers sums the cgroup memory of the server's sandboxes.
func (s *sampler) containers(ctx context.Context) (n int, usage, rss uint64) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := s.docker.ContainerList(lctx, client.ContainerListOptions{Filters: s.filters})
	if err != nil {
		return 0, 0, 0
	}
	for _, c := range res.Items {
		u, r := containerMemory(c.ID)
		usage += u
		rss += r
	}
	return len(res.Items), usage, rss
}

func (s *sampler) snapshot() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample(nil), s.samples...)
}

func (s *sampler) metrics() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// scrape fetches and parses a Prometheus text page; nil on any failure.
func scrape(ctx context.Context, hc *http.Client, url string) map[string]float64 {
	if url == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil
	}
	return parseMetrics(string(b))
}

// parseMetrics reads `name{labels} value` lines, keyed by everything
// before the value exactly as written (e.g. `x_total{path="warm"}`).
func parseMetrics(text string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// histogramSummary reads a Prometheus histogram (seconds) from a parsed
// page as a Summary in milliseconds: count, and p50/p90/p99 interpolated
// linearly inside their bucket (the first bucket from 0). A quantile that
// falls in the +Inf bucket is reported as the last finite bound.
func histogramSummary(m map[string]float64, name string) Summary {
	type bucket struct{ le, n float64 }
	var bs []bucket
	prefix := name + `_bucket{le="`
	for k, v := range m {
		le, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		le = strings.TrimSuffix(le, `"}`)
		b, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		bs = append(bs, bucket{b, v})
	}
	if len(bs) == 0 {
		return Summary{}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	total := bs[len(bs)-1].n
	if total == 0 {
		return Summary{}
	}
	q := func(p float64) float64 {
		rank := p * total
		lo, below := 0.0, 0.0
		for _, b := range bs {
			if b.n >= rank {
				if math.IsInf(b.le, 1) {
					return lo * 1000
				}
				if b.n == below {
					return b.le * 1000
				}
				return (lo + (b.le-lo)*(rank-below)/(b.n-below)) * 1000
			}
			lo, below = b.le, b.n
		}
		return lo * 1000
	}
	s := Summary{Count: int(total), P50: q(0.5), P90: q(0.9), P99: q(0.99)}
	if sum, ok := m[name+"_sum"]; ok {
		s.Mean = sum / total * 1000
	}
	return s
}
