package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

func compliant(t *testing.T) (*container.Config, *container.HostConfig) {
	t.Helper()
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{opts: o}
	spec := Spec{User: "alice", Role: "student", Mounts: []Mount{
		{Source: "/srv/pyide/Local/alice", Target: "/home/student"},
		{Source: "/srv/pyide/Lecture Notes", Target: "/course/Lecture Notes", ReadOnly: true},
	}}
	return m.containerConfig(spec, "abc", false)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	pint := func(v int64) *int64 { return &v }
	pbool := func(v bool) *bool { return &v }
	setUlimit := func(name string, hard int64) func(*container.Config, *container.HostConfig) {
		return func(_ *container.Config, hc *container.HostConfig) {
			hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: name, Soft: hard, Hard: hard})
		}
	}
	dropUlimit := func(name string) func(*container.Config, *container.HostConfig) {
		return func(_ *container.Config, hc *container.HostConfig) {
			var keep []*container.Ulimit
			for _, u := range hc.Ulimits {
				if u.Name != name {
					keep = append(keep, u)
				}
			}
			hc.Ulimits = keep
		}
	}
	addMount := func(mt mount.Mount) func(*container.Config, *container.HostConfig) {
		return func(_ *container.Config, hc *container.HostConfig) { hc.Mounts = append(hc.Mounts, mt) }
	}
	tests := []struct {
		name   string
		mutate func(*container.Config, *container.HostConfig)
		want   string // part of the error
	}{
		{"memory unset", func(_ *container.Config, hc *container.HostConfig) { hc.Memory = 0 }, "memory limit unset"},
		{"swap above memory", func(_ *container.Config, hc *container.HostConfig) { hc.MemorySwap = hc.Memory * 2 }, "memory+swap"},
		{"unlimited swap", func(_ *container.Config, hc *container.HostConfig) { hc.MemorySwap = -1 }, "memory+swap"},
		{"oom killer disabled", func(_ *container.Config, hc *container.HostConfig) { hc.OomKillDisable = pbool(true) }, "OOM"},
		{"no cpu limit", func(_ *container.Config, hc *container.HostConfig) { hc.NanoCPUs = 0 }, "CPU limit"},
		{"no pids limit", func(_ *container.Config, hc *container.HostConfig) { hc.PidsLimit = nil }, "pids"},
		{"unlimited pids", func(_ *container.Config, hc *container.HostConfig) { hc.PidsLimit = pint(-1) }, "pids"},
		{"privileged", func(_ *container.Config, hc *container.HostConfig) { hc.Privileged = true }, "privileged"},
		{"capability added", func(_ *container.Config, hc *container.HostConfig) { hc.CapAdd = []string{"SYS_ADMIN"} }, "capabilities added"},
		{"capabilities kept", func(_ *container.Config, hc *container.HostConfig) { hc.CapDrop = []string{"NET_RAW"} }, "not all dropped"},
		{"network bridge", func(_ *container.Config, hc *container.HostConfig) { hc.NetworkMode = "bridge" }, "network mode"},
		{"network host", func(_ *container.Config, hc *container.HostConfig) { hc.NetworkMode = "host" }, "network mode"},
		{"network default", func(_ *container.Config, hc *container.HostConfig) { hc.NetworkMode = "" }, "network mode"},
		{"networking enabled", func(cfg *container.Config, _ *container.HostConfig) { cfg.NetworkDisabled = false }, "networking not disabled"},
		{"published ports", func(_ *container.Config, hc *container.HostConfig) { hc.PublishAllPorts = true }, "ports"},
		{"rootfs writable", func(_ *container.Config, hc *container.HostConfig) { hc.ReadonlyRootfs = false }, "root filesystem"},
		{"docker socket mount", addMount(mount.Mount{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/home/student/d.sock"}), "forbidden"},
		{"docker socket elsewhere", addMount(mount.Mount{Type: mount.TypeBind, Source: "/srv/docker.sock", Target: "/home/student/d.sock"}), "Docker socket"},
		{"host root mount", addMount(mount.Mount{Type: mount.TypeBind, Source: "/", Target: "/course/x"}), "must not be /"},
		{"etc mount", addMount(mount.Mount{Type: mount.TypeBind, Source: "/etc", Target: "/course/etc"}), "forbidden"},
		{"unclean source", addMount(mount.Mount{Type: mount.TypeBind, Source: "/srv/a/../../etc", Target: "/course/x"}), "clean"},
		{"mount target outside", addMount(mount.Mount{Type: mount.TypeBind, Source: "/srv/x", Target: "/usr/lib"}), "outside"},
		{"volume mount", addMount(mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/course/v"}), "mount type"},
		{"shared propagation", addMount(mount.Mount{Type: mount.TypeBind, Source: "/srv/x", Target: "/course/x", BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}}), "propagation"},
		{"binds used", func(_ *container.Config, hc *container.HostConfig) { hc.Binds = []string{"/srv/x:/home/student"} }, "Binds"},
		{"volumes from", func(_ *container.Config, hc *container.HostConfig) { hc.VolumesFrom = []string{"other"} }, "Binds"},
		{"no no-new-privileges", func(_ *container.Config, hc *container.HostConfig) { hc.SecurityOpt = nil }, "no-new-privileges"},
		{"seccomp unconfined", func(_ *container.Config, hc *container.HostConfig) {
			hc.SecurityOpt = append(hc.SecurityOpt, "seccomp=unconfined")
		}, "unconfined"},
		{"apparmor unconfined", func(_ *container.Config, hc *container.HostConfig) {
			hc.SecurityOpt = append(hc.SecurityOpt, "apparmor=unconfined")
		}, "unconfined"},
		{"root user empty", func(cfg *container.Config, _ *container.HostConfig) { cfg.User = "" }, "uid:gid"},
		{"root user by name", func(cfg *container.Config, _ *container.HostConfig) { cfg.User = "root" }, "uid:gid"},
		{"root uid", func(cfg *container.Config, _ *container.HostConfig) { cfg.User = "0:0" }, "non-root"},
		{"root gid", func(cfg *container.Config, _ *container.HostConfig) { cfg.User = "1000:0" }, "non-root"},
		{"named user", func(cfg *container.Config, _ *container.HostConfig) { cfg.User = "student" }, "uid:gid"},
		{"missing init", func(_ *container.Config, hc *container.HostConfig) { hc.Init = nil }, "init"},
		{"init false", func(_ *container.Config, hc *container.HostConfig) { hc.Init = pbool(false) }, "init"},
		{"json-file unbounded", func(_ *container.Config, hc *container.HostConfig) {
			hc.LogConfig = container.LogConfig{Type: "json-file"}
		}, "max-size"},
		{"default log driver", func(_ *container.Config, hc *container.HostConfig) { hc.LogConfig = container.LogConfig{} }, "log driver"},
		{"syslog driver", func(_ *container.Config, hc *container.HostConfig) {
			hc.LogConfig = container.LogConfig{Type: "syslog"}
		}, "log driver"},
		{"host pid", func(_ *container.Config, hc *container.HostConfig) { hc.PidMode = "host" }, "namespace"},
		{"host ipc", func(_ *container.Config, hc *container.HostConfig) { hc.IpcMode = "host" }, "ipc"},
		{"host uts", func(_ *container.Config, hc *container.HostConfig) { hc.UTSMode = "host" }, "namespace"},
		{"host userns", func(_ *container.Config, hc *container.HostConfig) { hc.UsernsMode = "host" }, "namespace"},
		{"host cgroupns", func(_ *container.Config, hc *container.HostConfig) { hc.CgroupnsMode = "host" }, "namespace"},
		{"unmasked proc", func(_ *container.Config, hc *container.HostConfig) { hc.MaskedPaths = []string{} }, "masked"},
		{"device", func(_ *container.Config, hc *container.HostConfig) {
			hc.Devices = []container.DeviceMapping{{PathOnHost: "/dev/kvm", PathInContainer: "/dev/kvm"}}
		}, "devices"},
		{"sysctl", func(_ *container.Config, hc *container.HostConfig) {
			hc.Sysctls = map[string]string{"kernel.shm_rmid_forced": "1"}
		}, "sysctls"},
		{"tmp without size", func(_ *container.Config, hc *container.HostConfig) { hc.Tmpfs = map[string]string{"/tmp": "rw"} }, "/tmp"},
		{"no tmp", func(_ *container.Config, hc *container.HostConfig) { hc.Tmpfs = nil }, "/tmp"},
		{"extra tmpfs without size", func(_ *container.Config, hc *container.HostConfig) { hc.Tmpfs["/var/x"] = "rw" }, "without a size"},
		{"huge shm", func(_ *container.Config, hc *container.HostConfig) { hc.ShmSize = 4 << 30 }, "shm"},
		{"no nofile", dropUlimit("nofile"), "nofile"},
		{"no fsize", dropUlimit("fsize"), "fsize"},
		{"no cpu ulimit", dropUlimit("cpu"), "cpu ulimit"},
		{"nproc ulimit", setUlimit("nproc", 64), "nproc"},
		{"unlabelled", func(cfg *container.Config, _ *container.HostConfig) { delete(cfg.Labels, LabelManaged) }, "label"},
	}
	cfg, hc := compliant(t)
	if err := Validate(hc, cfg); err != nil {
		t.Fatalf("compliant config refused: %v", err)
	}
	if err := Validate(nil, cfg); err == nil {
		t.Error("nil host config accepted")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, hc := compliant(t)
			tt.mutate(cfg, hc)
			err := Validate(hc, cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	root, err := realRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mkdir := func(name string) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bind := func(src, target string) Mount {
		m, err := Bind(src, target, false)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	dir := mkdir("home")
	sockDir := mkdir("sock")
	if err := os.WriteFile(filepath.Join(sockDir, "docker.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "etc-link")
	if err := os.Symlink("/etc", link); err != nil {
		t.Fatal(err)
	}
	ok := bind(dir, "/home/student")
	outside := bind(t.TempDir(), "/home/student") // a real folder, approved, but not under root
	// Approved, then replaced by a link to another folder under the root.
	swapped := bind(mkdir("swapped"), "/home/student")
	other := mkdir("other")
	if err := os.Rename(swapped.Source, filepath.Join(root, "swapped-away")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, swapped.Source); err != nil {
		t.Fatal(err)
	}
	// Approved, then replaced by another real folder of the same name.
	replaced := bind(mkdir("replaced"), "/home/student")
	if err := os.Rename(replaced.Source, filepath.Join(root, "replaced-away")); err != nil {
		t.Fatal(err)
	}
	mkdir("replaced")
	// A link in a middle component.
	mkdir("real")
	inner := bind(mkdir("real/inner"), "/home/student")
	if err := os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "via")); err != nil {
		t.Fatal(err)
	}
	viaLink := inner
	viaLink.Source = filepath.Join(root, "via", "inner")
	unapproved := Mount{Source: dir, Target: "/home/student"}
	tests := []struct {
		name string
		spec Spec
		ok   bool
	}{
		{"home", Spec{User: "alice", Mounts: []Mount{ok}}, true},
		{"course ro", Spec{User: "alice", Mounts: []Mount{ok, {Source: dir, Target: "/course/notes", ReadOnly: true, Dev: ok.Dev, Ino: ok.Ino}}}, true},
		{"file in home", Spec{User: "alice", File: "/home/student/a.py", Mounts: []Mount{ok}}, true},
		{"empty user", Spec{Mounts: []Mount{ok}}, false},
		{"user with slash", Spec{User: "../x", Mounts: []Mount{ok}}, false},
		{"never approved", Spec{User: "a", Mounts: []Mount{unapproved}}, false},
		{"outside the root", Spec{User: "a", Mounts: []Mount{outside}}, false},
		{"the root itself", Spec{User: "a", Mounts: []Mount{{Source: root, Target: "/home/student", Dev: ok.Dev, Ino: ok.Ino}}}, false},
		{"replaced by a link", Spec{User: "a", Mounts: []Mount{swapped}}, false},
		{"replaced by another folder", Spec{User: "a", Mounts: []Mount{replaced}}, false},
		{"link in a middle component", Spec{User: "a", Mounts: []Mount{viaLink}}, false},
		{"relative source", Spec{User: "a", Mounts: []Mount{{Source: "srv/x", Target: "/home/student", Dev: 1, Ino: 1}}}, false},
		{"missing source", Spec{User: "a", Mounts: []Mount{{Source: filepath.Join(dir, "nope"), Target: "/home/student", Dev: 1, Ino: 1}}}, false},
		{"root source", Spec{User: "a", Mounts: []Mount{{Source: "/", Target: "/home/student", Dev: 1, Ino: 1}}}, false},
		{"var run", Spec{User: "a", Mounts: []Mount{{Source: "/var/run", Target: "/home/student", Dev: 1, Ino: 1}}}, false},
		{"proc", Spec{User: "a", Mounts: []Mount{{Source: "/proc", Target: "/home/student", Dev: 1, Ino: 1}}}, false},
		{"dir holding a docker.sock", Spec{User: "a", Mounts: []Mount{{Source: sockDir, Target: "/home/student", Dev: ok.Dev, Ino: 1}}}, false},
		{"symlink to etc", Spec{User: "a", Mounts: []Mount{{Source: link, Target: "/home/student", Dev: 1, Ino: 1}}}, false},
		{"target outside", Spec{User: "a", Mounts: []Mount{{Source: dir, Target: "/opt/pyide", Dev: ok.Dev, Ino: ok.Ino}}}, false},
		{"target prefix trick", Spec{User: "a", Mounts: []Mount{{Source: dir, Target: "/home/studentx", Dev: ok.Dev, Ino: ok.Ino}}}, false},
		{"duplicate target", Spec{User: "a", Mounts: []Mount{ok, ok}}, false},
		{"file outside mounts", Spec{User: "a", File: "/etc/passwd", Mounts: []Mount{ok}}, false},
		{"relative file", Spec{User: "a", File: "a.py", Mounts: []Mount{ok}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.spec.validate(root)
			if (err == nil) != tt.ok {
				t.Errorf("validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	t.Run("no root configured", func(t *testing.T) {
		if err := (Spec{User: "a", Mounts: []Mount{ok}}).validate(""); err == nil {
			t.Error("a mount was accepted with no MountRoot")
		}
	})
	t.Run("Bind refuses a link", func(t *testing.T) {
		if _, err := Bind(link, "/home/student", false); err == nil {
			t.Error("Bind approved a symbolic link")
		}
		if _, err := Bind(viaLink.Source, "/home/student", false); err == nil {
			t.Error("Bind approved a path through a symbolic link")
		}
	})
}

// TestSandboxUser: sandboxes never run as root, nor under the server's
// own uid or gid.
func TestSandboxUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		uid, gid, suid, sgid int
		ok                   bool
	}{
		{"root server, sandbox 1000", 1000, 1000, 0, 0, true},
		{"dedicated server user", 1000, 1000, 990, 990, true},
		{"same uid", 1000, 1000, 1000, 990, false},
		{"same gid", 1000, 1000, 990, 1000, false},
		{"root sandbox", 0, 0, 990, 990, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSandboxUser(tt.uid, tt.gid, tt.suid, tt.sgid)
			if (err == nil) != tt.ok {
				t.Errorf("checkSandboxUser = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestMountRoot: the data folder may live in a home folder (a clone under
// /root), but a whole system folder may not be the root of mounts.
func TestMountRoot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		root string
		ok   bool
	}{
		{"/root/pyide/data", true},
		{"/home/teacher/pyide/data", true},
		{"/var/lib/pyide", true},
		{"/root", false},
		{"/home", false},
		{"/", false},
		{"/etc/pyide", false},
		{"/proc/1", false},
	} {
		if err := checkRoot(tc.root); (err == nil) != tc.ok {
			t.Errorf("MountRoot %s: %v, want ok=%v", tc.root, err, tc.ok)
		}
	}
}
