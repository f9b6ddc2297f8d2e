package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cgroupFiles locates a container's CPU and memory accounting files. Reading
// them costs a few microseconds, unlike the stats API, so every session can
// be checked twice a second.
type cgroupFiles struct {
	cpu    string // cpuacct.usage (v1, ns) or cpu.stat (v2, usage_usec)
	memory string // memory.usage_in_bytes (v1) or memory.current (v2)
	pids   string // pids.current
	v2     bool
}

// oomKills is how many processes of the container the kernel has killed
// for its memory limit (the oom_kill line of memory.oom_control, v1, or
// memory.events, v2); -1 when it would not say.
func (c cgroupFiles) oomKills() int64 {
	name := "memory.oom_control"
	if c.v2 {
		name = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(c.memory), name))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// tasks is the number of tasks in the container's cgroup; -1 when unknown.
func (c cgroupFiles) tasks() int64 {
	if c.pids == "" {
		return -1
	}
	b, err := os.ReadFile(c.pids)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// pageCache is a signature of the container's file pages (cached, dirty,
// under writeback): it changes whenever a process of the container writes
// a file.
func (c cgroupFiles) pageCache() (int64, error) {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(c.memory), "memory.stat"))
	if err != nil {
		return 0, err
	}
	keys := map[string]bool{"cache": true, "dirty": true, "writeback": true}
	if c.v2 {
		keys = map[string]bool{"file": true, "file_dirty": true, "file_writeback": true}
	}
	var sig int64
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok || !keys[k] {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		// Weighted, so that pages moving from dirty to writeback to
		// clean change the sum too.
		sig = sig*31 + n
	}
	return sig, nil
}

// findCgroup tries the conventional cgroupfs and systemd layouts, then the
// container's init process as the host sees it. Every candidate path must
// name the container id, so a reused PID in another namespace cannot point
// the watcher at some other cgroup.
func findCgroup(id string, pid int) (cgroupFiles, bool) {
	const root = "/sys/fs/cgroup"
	rels := []string{"/docker/" + id, "/system.slice/docker-" + id + ".scope"}
	if pid > 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				parts := strings.SplitN(sc.Text(), ":", 3)
				if len(parts) == 3 && strings.Contains(parts[2], id) {
					rels = append(rels, parts[2])
				}
			}
		}
	}
	for _, rel := range rels {
		v1cpu := []string{filepath.Join(root, "cpuacct", rel, "cpuacct.usage"), filepath.Join(root, "cpu,cpuacct", rel, "cpuacct.usage")}
		for _, c := range v1cpu {
			if fileExists(c) {
				return cgroupFiles{cpu: c, memory: filepath.Join(root, "memory", rel, "memory.usage_in_bytes"),
					pids: filepath.Join(root, "pids", rel, "pids.current")}, true
			}
		}
		if c := filepath.Join(root, rel, "cpu.stat"); fileExists(c) {
			return cgroupFiles{cpu: c, memory: filepath.Join(root, rel, "memory.current"), pids: filepath.Join(root, rel, "pids.current"), v2: true}, true
		}
	}
	return cgroupFiles{}, false
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (c cgroupFiles) cpuUsage() (time.Duration, error) {
	b, err := os.ReadFile(c.cpu)
	if err != nil {
		return 0, err
	}
	if !c.v2 {
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return time.Duration(n), err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Duration(n) * time.Microsecond, err
		}
	}
	return 0, fmt.Errorf("no usage_usec in %s", c.cpu)
}

func (c cgroupFiles) memoryUsage() (int64, error) {
	b, err := os.ReadFile(c.memory)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// readNR is read(2)'s number as /proc/PID/syscall shows it.
var readNR = map[string]string{"amd64": "0", "arm64": "63", "riscv64": "63", "386": "3", "arm": "3"}[runtime.GOARCH]

// readingStdin tells whether a process of the container is blocked in
// read(0, ...), i.e. the runner waits for its control line. known is false
// when the kernel would not say (no access to /proc, another pid namespace,
// a sandboxed runtime), and the caller must judge otherwise.
func (c cgroupFiles) readingStdin() (waiting, known bool) {
	if readNR == "" {
		return false, false
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(c.cpu), "cgroup.procs"))
	if err != nil {
		return false, false
	}
	for _, pid := range strings.Fields(string(b)) {
		sc, err := os.ReadFile("/proc/" + pid + "/syscall")
		if err != nil {
			continue
		}
		known = true
		f := strings.Fields(string(sc))
		if len(f) >= 2 && f[0] == readNR && f[1] == "0x0" {
			return true, true
		}
	}
	return false, known
}
