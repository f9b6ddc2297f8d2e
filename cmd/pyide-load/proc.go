package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc on every
// architecture we run on.
const clockTicks = 100

// procStat is what we read of /proc/<pid>/stat.
type procStat struct {
	comm      string
	pid, ppid int
	ticks     uint64 // utime + stime
	childTks  uint64 // cutime + cstime: children already reaped
}

// parseStat parses one /proc/<pid>/stat line. The command name is in
// parentheses and may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, bool) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return procStat{}, false
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state): field k is f[k-3].
	if len(f) < 15 {
		return procStat{}, false
	}
	num := func(k int) uint64 { v, _ := strconv.ParseUint(f[k-3], 10, 64); return v }
	ppid, _ := strconv.Atoi(f[1])
	return procStat{comm: string(b[open+1 : end]), pid: pid, ppid: ppid, ticks: num(14) + num(15), childTks: num(16) + num(17)}, true
}

// allStats reads every process once.
func allStats() map[int]procStat {
	ents, _ := os.ReadDir("/proc")
	res := make(map[int]procStat, len(ents))
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		if st, ok := parseStat(b); ok {
			res[st.pid] = st
		}
	}
	return res
}

// tree is root and all its live descendants.
func tree(stats map[int]procStat, root int) []int {
	if _, ok := stats[root]; !ok {
		return nil
	}
	kids := map[int][]int{}
	for _, st := range stats {
		kids[st.ppid] = append(kids[st.ppid], st.pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// treeTicks is the CPU time of a process tree: its live members plus the
// children the root already reaped (a postgres backend that ended).
func treeTicks(stats map[int]procStat, pids []int) uint64 {
	if len(pids) == 0 {
		return 0
	}
	t := stats[pids[0]].childTks
	for _, p := range pids {
		t += stats[p].ticks
	}
	return t
}

// statusKB reads one "Key:   123 kB" line of a /proc file.
func statusKB(path, key string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			v, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

// rssBytes sums resident memory over pids.
func rssBytes(pids []int) uint64 {
	var kb uint64
	for _, p := range pids {
		kb += statusKB(filepath.Join("/proc", strconv.Itoa(p), "status"), "VmRSS")
	}
	return kb << 10
}

// pssBytes sums proportional set size: for postgres, whose backends share
// one big shared-memory segment, summed RSS would count it once per backend.
func pssBytes(pids []int) uint64 {
	var kb uint64
	for _, p := range pids {
		kb += statusKB(filepath.Join("/proc", strconv.Itoa(p), "smaps_rollup"), "Pss")
	}
	return kb << 10
}

func memAvailable() uint64 { return statusKB("/proc/meminfo", "MemAvailable") << 10 }

// containerMemory reads a container's cgroup memory use: cgroup v1
// (cgroupfs driver, as here) or v2 (systemd driver). Zero when neither
// exists (the container just ended).
func containerMemory(id string) (usage, rss uint64) {
	v1 := filepath.Join("/sys/fs/cgroup/memory/docker", id)
	if b, err := os.ReadFile(filepath.Join(v1, "memory.usage_in_bytes")); err == nil {
		usage, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		rss = statKey(filepath.Join(v1, "memory.stat"), "total_rss")
		return usage, rss
	}
	for _, dir := range []string{"/sys/fs/cgroup/system.slice/docker-" + id + ".scope", "/sys/fs/cgroup/docker/" + id} {
		if b, err := os.ReadFile(filepath.Join(dir, "memory.current")); err == nil {
			usage, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
			rss = statKey(filepath.Join(dir, "memory.stat"), "anon")
			return usage, rss
		}
	}
	return 0, 0
}

// statKey reads "key value" from a cgroup memory.stat file.
func statKey(path, key string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// engineTicks is the CPU time of the Docker engine: dockerd, containerd and
// every container's shim (which also reaps runc, so its children count).
// Under a class these can cost more than the server itself.
func engineTicks(stats map[int]procStat) uint64 {
	var t uint64
	for _, st := range stats {
		switch st.comm {
		case "dockerd", "containerd", "containerd-shim", "containerd-shi": // comm is cut at 15 bytes
			t += st.ticks + st.childTks
		}
	}
	return t
}

// hostTicks is the machine's busy and total CPU time from /proc/stat.
func hostTicks() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// containersCPU is the CPU time of every container on the engine, in
// nanoseconds (cgroup v1 cpuacct; 0 elsewhere).
func containersCPU() uint64 {
	b, err := os.ReadFile("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage")
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// load1 is the one-minute load average: on a shared machine it shows what
// else was running.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
