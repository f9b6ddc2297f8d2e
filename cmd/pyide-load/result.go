package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Result is everything one run measured; result.json is this, indented.
type Result struct {
	Config struct {
		N            int               `json:"n"`
		Duration     string            `json:"duration"`
		Seed         uint64            `json:"seed"`
		Think        string            `json:"think"`  // pause between two actions of a student
		Server       string            `json:"server"` // "local" or the -server URL
		Started      time.Time         `json:"started"`
		Cores        int               `json:"cores"`
		MemTotal     uint64            `json:"mem_total_bytes"`
		ServerEnv    map[string]string `json:"server_env"`
		RosterImport string            `json:"roster_import"` // how long the CLI import of N users took
	} `json:"config"`

	Logins struct {
		Latency Summary `json:"latency"`
		WallMS  float64 `json:"wall_ms"` // all N at once, until the last answered
		Failed  int     `json:"failed"`
	} `json:"logins"`

	// Click to first output: sending `run` to the first output byte.
	Click struct {
		All      Summary `json:"all"`
		Warm     Summary `json:"warm"`
		Cold     Summary `json:"cold"`
		Unknown  Summary `json:"unknown"`
		Stampede Summary `json:"stampede"` // everyone's first run, all at once, spares ready
		Method   string  `json:"warm_cold_method"`
		// The server's own counters (all starts, including heavy and hostile runs).
		ServerWarm float64 `json:"server_warm_starts"`
		ServerCold float64 `json:"server_cold_starts"`
		// Time from the first socket opening until the server had a spare for
		// every connected student (the class is warm).
		ClassWarmMS float64 `json:"class_warm_ms"`
	} `json:"click_to_first_output"`

	REPL struct {
		Keystroke Summary `json:"keystroke_round_trip"` // one key to its echo
		Line      Summary `json:"line_round_trip"`      // Enter to the next prompt
		// ServerEcho is the server's own view (pyide_terminal_echo_seconds):
		// input in to the sandbox's next output, without the WebSocket and
		// this program's scheduling. Quantiles interpolated in buckets.
		ServerEcho Summary `json:"server_echo"`
	} `json:"repl"`
	Save Summary `json:"save"`

	Errors        map[string]int            `json:"errors"`
	ErrorExamples map[string]string         `json:"error_examples,omitempty"`
	ErrorTotal    int                       `json:"error_total"`
	Outcomes      map[string]map[string]int `json:"outcomes"` // heavy and hostile programs, by how they ended
	Counts        map[string]int            `json:"counts"`

	Resources struct {
		ServerCPUAvg   float64 `json:"server_cpu_avg_pct"` // % of one core, over the class
		ServerCPUPeak  float64 `json:"server_cpu_peak_pct"`
		ServerRSSPeak  uint64  `json:"server_rss_peak_bytes"`
		PgCPUAvg       float64 `json:"postgres_cpu_avg_pct"`
		PgCPUPeak      float64 `json:"postgres_cpu_peak_pct"`
		PgPSSPeak      uint64  `json:"postgres_pss_peak_bytes"`
		GenCPUAvg      float64 `json:"generator_cpu_avg_pct"`
		GenRSSPeak     uint64  `json:"generator_rss_peak_bytes"`
		EngineCPUAvg   float64 `json:"engine_cpu_avg_pct"`
		SandboxCPUAvg  float64 `json:"containers_cpu_avg_pct"`
		HostCPUAvg     float64 `json:"host_cpu_avg_pct"` // of all cores
		Load1Max       float64 `json:"load1_max"`
		Load1Before    float64 `json:"load1_before"`
		SandboxPeak    uint64  `json:"sandbox_mem_peak_bytes"` // sum of container cgroup usage
		SandboxPerUser uint64  `json:"sandbox_mem_per_student_bytes"`
		SandboxRSSPeak uint64  `json:"sandbox_rss_peak_bytes"`
		ContainersPeak int     `json:"containers_peak"`
		MemAvailBefore uint64  `json:"mem_available_before_bytes"`
		MemAvailMin    uint64  `json:"mem_available_min_bytes"`
		MemAvailMedian uint64  `json:"mem_available_median_bytes"`
		// Steady: before minus the median during the class (what having the
		// students connected costs). Peak: before minus the least seen (adds
		// transients: a burst of container creation, a memory bomb's 128 MB).
		HostGrowth     uint64 `json:"host_mem_growth_bytes"`
		HostPerUser    uint64 `json:"host_mem_per_student_bytes"`
		HostPeakGrowth uint64 `json:"host_mem_peak_growth_bytes"`
		HostPeakUser   uint64 `json:"host_mem_peak_per_student_bytes"`
	} `json:"resources"`

	Cleanup struct {
		DrainMS         float64 `json:"drain_after_logout_ms"` // logout until the server's containers were gone
		LeftAfterLogout int     `json:"left_after_logout"`
		ServerStopMS    float64 `json:"server_stop_ms"`
		ServerStopErr   string  `json:"server_stop_error,omitempty"`
		LeftOurs        int     `json:"containers_left_ours"`    // this server's (or these students')
		LeftAllManaged  int     `json:"containers_left_managed"` // every pyide.managed=true on the engine
	} `json:"cleanup"`

	Baseline *BaselineResult `json:"baseline,omitempty"`
	// Gain of the warm design: baseline / ours, for the everyone-clicks-at-once case.
	Gain struct {
		P50 float64 `json:"p50_ratio"`
		P99 float64 `json:"p99_ratio"`
	} `json:"gain"`

	Histograms map[string][]Bucket `json:"histograms"`
	Timeline   []window            `json:"repl_timeline"` // keystroke round trip and sessions per 5 s
	Samples    []sample            `json:"samples"`
}

// resources fills the CPU and memory figures from the samples taken
// during the class (t in [0, span]).
func (r *Result) resources(samples []sample, span time.Duration, n int) {
	var before, during []uint64
	var cpuN int
	rs := &r.Resources
	for _, s := range samples {
		if s.At < 0 {
			before = append(before, s.MemAvailable)
			rs.Load1Before = s.Load1
			continue
		}
		if s.At > span.Seconds() {
			continue
		}
		cpuN++
		during = append(during, s.MemAvailable)
		rs.ServerCPUAvg += s.ServerCPU
		rs.PgCPUAvg += s.PgCPU
		rs.GenCPUAvg += s.GenCPU
		rs.EngineCPUAvg += s.EngineCPU
		rs.SandboxCPUAvg += s.SandboxCPU
		rs.HostCPUAvg += s.HostCPU
		rs.Load1Max = max(rs.Load1Max, s.Load1)
		rs.ServerCPUPeak = max(rs.ServerCPUPeak, s.ServerCPU)
		rs.PgCPUPeak = max(rs.PgCPUPeak, s.PgCPU)
		rs.ServerRSSPeak = max(rs.ServerRSSPeak, s.ServerRSS)
		rs.PgPSSPeak = max(rs.PgPSSPeak, s.PgPSS)
		rs.GenRSSPeak = max(rs.GenRSSPeak, s.GenRSS)
		rs.SandboxPeak = max(rs.SandboxPeak, s.SandboxMem)
		rs.SandboxRSSPeak = max(rs.SandboxRSSPeak, s.SandboxRSS)
		rs.ContainersPeak = max(rs.ContainersPeak, s.Containers)
		if rs.MemAvailMin == 0 || s.MemAvailable < rs.MemAvailMin {
			rs.MemAvailMin = s.MemAvailable
		}
	}
	if cpuN > 0 {
		rs.ServerCPUAvg /= float64(cpuN)
		rs.PgCPUAvg /= float64(cpuN)
		rs.GenCPUAvg /= float64(cpuN)
		rs.EngineCPUAvg /= float64(cpuN)
		rs.SandboxCPUAvg /= float64(cpuN)
		rs.HostCPUAvg /= float64(cpuN)
	}
	if len(before) > 0 {
		slices.Sort(before)
		rs.MemAvailBefore = before[len(before)/2]
	}
	if len(during) > 0 {
		slices.Sort(during)
		rs.MemAvailMedian = during[len(during)/2]
	}
	if n > 0 {
		rs.SandboxPerUser = rs.SandboxPeak / uint64(n)
		if rs.MemAvailBefore > rs.MemAvailMedian {
			rs.HostGrowth = rs.MemAvailBefore - rs.MemAvailMedian
			rs.HostPerUser = rs.HostGrowth / uint64(n)
		}
		if rs.MemAvailBefore > rs.MemAvailMin {
			rs.HostPeakGrowth = rs.MemAvailBefore - rs.MemAvailMin
			rs.HostPeakUser = rs.HostPeakGrowth / uint64(n)
		}
	}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// summaryText is the table printed at the end, ready to paste into a note.
func (r *Result) summaryText() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	row := func(name string, s Summary) {
		if s.Count == 0 {
			w("| %-34s | %8s | %8s | %6d |\n", name, "-", "-", 0)
			return
		}
		w("| %-34s | %8.1f | %8.1f | %6d |\n", name, s.P50, s.P99, s.Count)
	}
	w("pyide-load: N=%d, %s, think %s, seed %d, %d cores, started %s\n\n", r.Config.N, r.Config.Duration, r.Config.Think, r.Config.Seed, r.Config.Cores, r.Config.Started.Format(time.RFC3339))
	w("| %-34s | %8s | %8s | %6s |\n", "latency (ms)", "p50", "p99", "n")
	w("|%s|%s|%s|%s|\n", strings.Repeat("-", 36), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 8))
	row("login", r.Logins.Latency)
	row("click→output, warm", r.Click.Warm)
	row("click→output, cold", r.Click.Cold)
	if r.Click.Unknown.Count > 0 {
		row("click→output, unclassified", r.Click.Unknown)
	}
	row("click→output, all", r.Click.All)
	row("click→output, all N at once", r.Click.Stampede)
	if r.Baseline != nil {
		row("baseline docker run, all N at once", r.Baseline.Click)
	}
	row("REPL keystroke round trip", r.REPL.Keystroke)
	row("REPL line (Enter→prompt)", r.REPL.Line)
	row("REPL echo inside the server", r.REPL.ServerEcho)
	row("file save", r.Save)
	w("\n")
	w("logins: %d at once, all done in %.2f s (%d failed); roster import %s\n", r.Config.N, r.Logins.WallMS/1000, r.Logins.Failed, r.Config.RosterImport)
	w("class warm (a spare for every student) after %.1f s; warm/cold by %s; server counted %.0f warm, %.0f cold starts\n",
		r.Click.ClassWarmMS/1000, r.Click.Method, r.Click.ServerWarm, r.Click.ServerCold)
	if r.Baseline != nil && r.Gain.P50 > 0 {
		w("gain vs docker run per click (all N at once): p50 %.1fx, p99 %.1fx (baseline wall %.1f s, %d errors)\n",
			r.Gain.P50, r.Gain.P99, r.Baseline.WallMS/1000, sumMap(r.Baseline.Errors))
	}
	rs := r.Resources
	w("server CPU avg %.0f%% peak %.0f%% of a core, RSS peak %s; postgres CPU avg %.0f%% peak %.0f%%, PSS peak %s\n",
		rs.ServerCPUAvg, rs.ServerCPUPeak, mib(rs.ServerRSSPeak), rs.PgCPUAvg, rs.PgCPUPeak, mib(rs.PgPSSPeak))
	w("load generator CPU avg %.0f%%, RSS peak %s; Docker engine (dockerd, containerd, shims) CPU avg %.0f%%; all containers CPU avg %.0f%%\n",
		rs.GenCPUAvg, mib(rs.GenRSSPeak), rs.EngineCPUAvg, rs.SandboxCPUAvg)
	w("machine: %.0f%% of all %d cores busy on average; load average %.1f before, %.1f at most (other work on a shared machine shows here)\n",
		rs.HostCPUAvg, r.Config.Cores, rs.Load1Before, rs.Load1Max)
	w("sandboxes: peak %d containers, %s cgroup memory (%s per student, rss %s total)\n",
		rs.ContainersPeak, mib(rs.SandboxPeak), mib(rs.SandboxPerUser), mib(rs.SandboxRSSPeak))
	w("host MemAvailable %s before, median %s during: growth %s, %s per student (peak growth %s, %s per student)\n",
		mib(rs.MemAvailBefore), mib(rs.MemAvailMedian), mib(rs.HostGrowth), mib(rs.HostPerUser), mib(rs.HostPeakGrowth), mib(rs.HostPeakUser))
	w("errors: %d %s\n", r.ErrorTotal, fmtMap(r.Errors))
	for _, k := range sortedKeys(r.Outcomes) {
		w("  %s: %s\n", k, fmtMap(r.Outcomes[k]))
	}
	if len(r.Counts) > 0 {
		w("  counts: %s\n", fmtMap(r.Counts))
	}
	w("cleanup: containers gone %.1f s after logout (%d left), server stopped in %.1f s, left after stop: %d ours, %d pyide.managed on the engine\n",
		r.Cleanup.DrainMS/1000, r.Cleanup.LeftAfterLogout, r.Cleanup.ServerStopMS/1000, r.Cleanup.LeftOurs, r.Cleanup.LeftAllManaged)
	w("\ntargets (stated for N=120):\n")
	for _, g := range goals {
		if g.limit < 0 {
			continue
		}
		mark := "PASS"
		if !g.met(r) {
			mark = "FAIL"
		}
		w("  %s  %-36s %.1f %s (≤ %g)\n", mark, g.what, g.get(r), g.unit, g.limit)
	}
	return b.String()
}

func sumMap(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

func fmtMap(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
