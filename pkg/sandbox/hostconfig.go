package sandbox

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// Labels on every container this package creates.
const (
	LabelManaged = "pyide.managed"
	LabelUser    = "pyide.user"
	LabelSession = "pyide.session"
	LabelServer  = "pyide.server"
	LabelRole    = "pyide.role"
	LabelFile    = "pyide.file"
	LabelSpare   = "pyide.spare"
)

// detachKeys replaces Docker's Ctrl-P Ctrl-Q, which a student pressing Ctrl-P
// for history would hit. It starts with NUL, which Write never forwards, so
// the sequence cannot be typed at all.
const detachKeys = "ctrl-@,ctrl-^,ctrl-_"

const (
	// sessionCPUSlack seconds lets the watcher, not the kernel, end a
	// session at its CPU budget, so the student is told why.
	sessionCPUSlack = 5
	// runscPidsSlack is the host tasks gVisor needs beside the student's.
	runscPidsSlack = 192
	homeDir        = "/home/student"
	nofileMax      = 256
	fsizeMax       = 10 << 20
)

var (
	runnerCmd = []string{"python3", "/opt/pyide/runner.py", "--control"}
	// supervisorCmd keeps the container reusable (see Options.NoReuse).
	supervisorCmd = []string{"python3", "/opt/pyide/supervisor.py"}
)

// containerConfig builds the create request for one session or spare.
func (m *Manager) containerConfig(spec Spec, id string, spare bool) (*container.Config, *container.HostConfig) {
	o := m.opts
	labels := map[string]string{
		LabelManaged: "true",
		LabelUser:    spec.User,
		LabelSession: id,
		LabelServer:  o.ServerID,
		LabelRole:    spec.Role,
		LabelFile:    spec.File,
	}
	if spare {
		labels[LabelSpare] = "true"
	}
	cmd := runnerCmd
	if m.reuse() {
		cmd = supervisorCmd
	}
	cfg := &container.Config{
		Hostname:  "pyide",
		User:      fmt.Sprintf("%d:%d", o.SandboxUID, o.SandboxGID),
		Tty:       true,
		OpenStdin: true,
		// With networking disabled the engine gives the container a bare
		// namespace (loopback only) and skips libnetwork entirely: no
		// sandbox, no prestart hook that re-executes dockerd. That halves
		// the engine's CPU per container (measured: ~130 → ~60 ms).
		NetworkDisabled: true,
		StdinOnce:       false,
		Env: []string{
			"HOME=" + homeDir,
			"LANG=C.UTF-8",
			"PYTHONDONTWRITEBYTECODE=1",
			"PYIDE_CPU_SECONDS=" + strconv.Itoa(o.CPUSeconds),
			"PYIDE_REPL_AFTER_ERROR=" + strconv.FormatBool(o.ReplAfterError),
			// The supervisor resets in place (kill -1) only where this says
			// it is the container's own namespace.
			"PYIDE_SANDBOX=1",
		},
		Cmd:        cmd,
		Image:      o.Image,
		WorkingDir: homeDir,
		Labels:     labels,
	}
	mounts := make([]mount.Mount, 0, len(spec.Mounts))
	for _, sm := range spec.Mounts {
		mounts = append(mounts, mount.Mount{
			Type:        mount.TypeBind,
			Source:      sm.Source,
			Target:      sm.Target,
			ReadOnly:    sm.ReadOnly,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
		})
	}
	init := true
	pids := o.PidsLimit
	if o.Runtime == "runsc" {
		// The cgroup holds gVisor's own host threads too (its Go runtime,
		// the gofer, one per running task on the ptrace platform): at 64
		// the sentry itself fails to make a thread and the sandbox dies.
		pids += runscPidsSlack
	}
	hc := &container.HostConfig{
		LogConfig:      container.LogConfig{Type: "none"},
		NetworkMode:    "none",
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		ConsoleSize:    [2]uint{24, 80},
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		IpcMode:        container.IPCModePrivate,
		Tmpfs: map[string]string{
			"/tmp": fmt.Sprintf("rw,nosuid,nodev,noexec,size=%dm,mode=1777", o.TmpfsMB),
		},
		ShmSize: o.ShmMB << 20,
		Runtime: o.Runtime,
		Init:    &init,
		Mounts:  mounts,
		Resources: container.Resources{
			Memory:     o.MemoryMB << 20,
			MemorySwap: o.MemoryMB << 20,
			NanoCPUs:   o.NanoCPUs,
			PidsLimit:  &pids,
			Ulimits: []*container.Ulimit{
				{Name: "nofile", Soft: nofileMax, Hard: nofileMax},
				{Name: "fsize", Soft: fsizeMax, Hard: fsizeMax},
				// Per process, a backstop only: the server's cgroup watcher
				// ends the session at SessionCPU for all its processes
				// together (reason timeout), a few seconds before this.
				{Name: "cpu", Soft: int64(o.SessionCPU) + sessionCPUSlack, Hard: int64(o.SessionCPU) + sessionCPUSlack},
				// A core dump would land in the student's workspace.
				{Name: "core", Soft: 0, Hard: 0},
			},
		},
	}
	return cfg, hc
}

// Validate refuses any configuration that is not fully hardened. It is
// fail-closed: every rule must be positively satisfied, so a field nobody
// thought of being set to its zero value cannot weaken a sandbox silently.
func Validate(hc *container.HostConfig, cfg *container.Config) error {
	if hc == nil || cfg == nil {
		return errors.New("sandbox: missing config")
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if hc.Memory <= 0 {
		bad("memory limit unset")
	}
	if hc.MemorySwap != hc.Memory {
		bad("memory+swap %d must equal memory %d", hc.MemorySwap, hc.Memory)
	}
	if hc.OomKillDisable != nil && *hc.OomKillDisable {
		bad("OOM killer disabled")
	}
	if hc.NanoCPUs <= 0 && hc.CPUQuota <= 0 {
		bad("no CPU limit")
	}
	if hc.PidsLimit == nil || *hc.PidsLimit <= 0 {
		bad("no pids limit")
	}
	if hc.NetworkMode != "none" {
		bad("network mode %q, want none", hc.NetworkMode)
	}
	if !cfg.NetworkDisabled {
		bad("networking not disabled")
	}
	if len(hc.PortBindings) > 0 || hc.PublishAllPorts || len(hc.Links) > 0 || len(hc.ExtraHosts) > 0 {
		bad("ports, links or extra hosts set")
	}
	if !hc.ReadonlyRootfs {
		bad("root filesystem writable")
	}
	if hc.Privileged {
		bad("privileged")
	}
	if len(hc.CapAdd) > 0 {
		bad("capabilities added: %v", hc.CapAdd)
	}
	if !slices.ContainsFunc(hc.CapDrop, func(c string) bool { return strings.EqualFold(c, "ALL") }) {
		bad("capabilities not all dropped")
	}
	nnp := false
	for _, o := range hc.SecurityOpt {
		switch {
		case o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true":
			nnp = true
		case strings.Contains(o, "unconfined") || strings.HasPrefix(o, "label=disable") || strings.HasPrefix(o, "label:disable"):
			bad("security option %q", o)
		}
	}
	if !nnp {
		bad("no-new-privileges not set")
	}
	if hc.Init == nil || !*hc.Init {
		bad("no init process")
	}
	if err := checkUser(cfg.User); err != nil {
		errs = append(errs, err)
	}
	if hc.PidMode != "" || hc.UTSMode != "" || hc.UsernsMode != "" || hc.CgroupnsMode.IsHost() || hc.Cgroup != "" {
		bad("host or shared namespace requested")
	}
	if hc.IpcMode != "" && hc.IpcMode != container.IPCModePrivate && hc.IpcMode != container.IPCModeNone {
		bad("ipc mode %q", hc.IpcMode)
	}
	// A non-nil empty list disables Docker's default masking of /proc paths.
	if hc.MaskedPaths != nil || hc.ReadonlyPaths != nil {
		bad("masked or read-only paths overridden")
	}
	if len(hc.Devices) > 0 || len(hc.DeviceRequests) > 0 || len(hc.DeviceCgroupRules) > 0 {
		bad("devices requested")
	}
	if len(hc.Sysctls) > 0 {
		bad("sysctls set")
	}
	if hc.CgroupParent != "" {
		bad("cgroup parent set")
	}
	switch hc.LogConfig.Type {
	case "none":
	case "json-file", "local":
		if hc.LogConfig.Config["max-size"] == "" {
			bad("log driver %s without max-size", hc.LogConfig.Type)
		}
	default:
		bad("log driver %q", hc.LogConfig.Type)
	}
	if len(hc.Binds) > 0 || len(hc.VolumesFrom) > 0 || hc.VolumeDriver != "" || len(cfg.Volumes) > 0 {
		bad("Binds, volumes or volumes-from used")
	}
	for _, mt := range hc.Mounts {
		if mt.Type != mount.TypeBind {
			bad("mount type %q on %s", mt.Type, mt.Target)
			continue
		}
		if err := checkSourcePath(mt.Source); err != nil {
			errs = append(errs, err)
		}
		if err := checkTargetPath(mt.Target); err != nil {
			errs = append(errs, err)
		}
		if mt.BindOptions != nil {
			if p := mt.BindOptions.Propagation; p != "" && p != mount.PropagationRPrivate && p != mount.PropagationPrivate {
				bad("mount propagation %q on %s", p, mt.Target)
			}
		}
	}
	if t, ok := hc.Tmpfs["/tmp"]; !ok || !strings.Contains(t, "size=") {
		bad("/tmp is not a size-limited tmpfs")
	}
	for dst, opts := range hc.Tmpfs {
		if !strings.Contains(opts, "size=") {
			bad("tmpfs %s without a size", dst)
		}
	}
	if hc.ShmSize <= 0 || hc.ShmSize > 256<<20 {
		bad("/dev/shm size %d not set or too large", hc.ShmSize)
	}
	ul := map[string]*container.Ulimit{}
	for _, u := range hc.Ulimits {
		if u != nil {
			ul[u.Name] = u
		}
	}
	if u := ul["nofile"]; u == nil || u.Hard <= 0 || u.Hard > 4096 {
		bad("nofile ulimit missing or too large")
	}
	if u := ul["fsize"]; u == nil || u.Hard <= 0 || u.Hard > 1<<30 {
		bad("fsize ulimit missing or too large")
	}
	if u := ul["cpu"]; u == nil || u.Hard <= 0 {
		bad("cpu ulimit missing")
	}
	if ul["nproc"] != nil {
		bad("nproc ulimit counts per host uid; use PidsLimit")
	}
	if cfg.Labels[LabelManaged] != "true" {
		bad("container not labelled %s", LabelManaged)
	}
	if len(errs) > 0 {
		return fmt.Errorf("sandbox: unsafe container config: %w", errors.Join(errs...))
	}
	return nil
}

// checkUser accepts only a numeric, non-root uid:gid, so the image cannot
// map a name to root.
func checkUser(u string) error {
	uid, gid, ok := strings.Cut(u, ":")
	if !ok {
		return fmt.Errorf("user %q must be numeric uid:gid", u)
	}
	for _, s := range []string{uid, gid} {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("user %q must be a numeric non-root uid:gid", u)
		}
	}
	return nil
}
