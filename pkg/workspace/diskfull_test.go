package workspace

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestDiskFull fills a small real file system: the save that does not fit
// is refused with a clear 507, and the file keeps its previous content.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the data folder")
	}
	var dir string
	ev := newEnv(t, func(o *Options) {
		dir = t.TempDir()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
			t.Skipf("cannot mount a tmpfs here: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
		o.DataPath = dir
	})
	old := strings.Repeat("a", 600<<10)
	if r := ev.put("alice", "Local/alice/data.txt", old); r.Code != 200 {
		t.Fatalf("first save: %d %s", r.Code, r.errMsg())
	}
	r := ev.put("alice", "Local/alice/data.txt", strings.Repeat("b", 1800<<10))
	if r.Code != 507 || !strings.Contains(r.errMsg(), "disk is full") {
		t.Fatalf("save past the disk: %d %q", r.Code, r.errMsg())
	}
	ev.dir = dir
	if got := ev.read("Local/alice/data.txt"); got != old {
		t.Fatalf("the old file was damaged: %d bytes, want %d", len(got), len(old))
	}
	// Once there is room again, saving works.
	if r := ev.put("alice", "Local/alice/data.txt", "small"); r.Code != 200 {
		t.Fatalf("save after the disk-full error: %d %s", r.Code, r.errMsg())
	}
}
