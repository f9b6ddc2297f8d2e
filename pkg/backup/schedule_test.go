package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

// TestConsistentWhileFilesChange takes backups while a writer replaces
// files the way the workspace does (temporary file, then rename), with
// sizes that change on every version: every archived file must be exactly
// one of the versions written, never a mix or a prefix.
func TestConsistentWhileFilesChange(t *testing.T) {
	src := t.TempDir()
	url := storetest.NewURL(t)
	dir := filepath.Join(src, "Local", "alice")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const files = 16
	version := func(i, k int) []byte {
		filler := strings.Repeat(fmt.Sprintf("%d:%d ", i, k), (k*7919)%40000)
		return []byte(fmt.Sprintf("# file %d version %d\n%s\n# end %d\n", i, k, filler, k))
	}
	var (
		mu      sync.Mutex
		written = map[string]map[string]bool{} // archive name -> sha256s
		writes  atomic.Int64
	)
	record := func(i int, b []byte) {
		sum := sha256.Sum256(b)
		name := fmt.Sprintf("data/Local/alice/f%02d.py", i)
		mu.Lock()
		if written[name] == nil {
			written[name] = map[string]bool{}
		}
		written[name][hex.EncodeToString(sum[:])] = true
		mu.Unlock()
	}
	replace := func(i, k int) error {
		b := version(i, k)
		// Recorded before it becomes visible, so a backup can never see a
		// version the test does not know.
		record(i, b)
		tmp := filepath.Join(dir, fmt.Sprintf("%s%d-%d", tempPrefix, i, k))
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("f%02d.py", i)))
	}
	for i := 0; i < files; i++ {
		if err := replace(i, 0); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	writerDone := make(chan error, 1)
	go func() {
		for k := 1; ; k++ {
			if ctx.Err() != nil {
				writerDone <- nil
				return
			}
			if err := replace(k%files, k); err != nil {
				writerDone <- err
				return
			}
			writes.Add(1)
		}
	}()
	defer func() {
		cancel()
		if err := <-writerDone; err != nil {
			t.Errorf("writer: %v", err)
		}
	}()
	servertest.Eventually(t, servertest.WaitLong, "the writer to start", func() bool { return writes.Load() > 100 })

	opts := Options{DataPath: src, DatabaseURL: url, Dir: filepath.Join(src, "backups"), BinDir: storetest.Cluster(t).BinDir()}
	for round := 0; round < 3; round++ {
		before := writes.Load()
		m, err := Create(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		during := writes.Load() - before
		if _, err := Verify(context.Background(), m.Path); err != nil {
			t.Fatalf("an archive taken under writes does not verify: %v", err)
		}
		entries := archiveEntries(t, m.Path)
		seen := 0
		mu.Lock()
		for name, body := range entries {
			if strings.Contains(name, tempPrefix) {
				t.Errorf("archive holds a temporary file: %s", name)
			}
			versions, ok := written[name]
			if !ok {
				continue
			}
			seen++
			sum := sha256.Sum256(body)
			if !versions[hex.EncodeToString(sum[:])] {
				t.Errorf("%s in the archive (%d bytes) is not any version written", name, len(body))
			}
		}
		mu.Unlock()
		if seen != files {
			t.Errorf("archive holds %d of the %d files", seen, files)
		}
		t.Logf("round %d: %d files replaced during a %d-byte backup", round, during, m.Size)
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	base := time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)
	var names []string
	for d := 0; d < 5; d++ {
		names = append(names, archivePrefix+base.AddDate(0, 0, d).Format(timeLayout)+archiveSuffix)
	}
	second := archivePrefix + base.AddDate(0, 0, 4).Format(timeLayout) + "-1" + archiveSuffix
	others := []string{"notes.txt", ".pyide-backup-123.tmp", "pyide-backup-garbage.tar.gz"}
	for _, n := range append(append(names, second), others...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Prune(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 3 {
		t.Errorf("removed %v, want the 3 oldest", removed)
	}
	all, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, a := range all {
		kept = append(kept, filepath.Base(a.Path))
	}
	want := []string{second, names[4], names[3]}
	if strings.Join(kept, " ") != strings.Join(want, " ") {
		t.Errorf("kept %v, want newest first %v", kept, want)
	}
	for _, n := range others {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("Prune touched %s, which is not an archive: %v", n, err)
		}
	}
	if _, err := Prune(dir, 0); err == nil {
		t.Error("Prune(dir, 0) would remove every backup")
	}
}

func TestSchedule(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src)
	url := storetest.NewURL(t)
	opts := Options{DataPath: src, DatabaseURL: url, Dir: t.TempDir(), BinDir: storetest.Cluster(t).BinDir()}

	t.Run("backs up, prunes and reports the last success", func(t *testing.T) {
		s := &Schedule{Options: opts, Every: 200 * time.Millisecond, Keep: 2}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		seen := map[string]bool{}
		var last time.Time
		servertest.Eventually(t, servertest.WaitLong, "three scheduled backups", func() bool {
			all, _ := List(opts.Dir)
			for _, a := range all {
				seen[a.Path] = true
			}
			if l := s.LastSuccess(); l.Before(last) {
				t.Fatalf("last success went back from %v to %v", last, l)
			} else {
				last = l
			}
			return len(seen) >= 3
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if all, _ := List(opts.Dir); len(all) != 2 {
			t.Errorf("%d archives kept, want 2", len(all))
		}
		if time.Since(s.LastSuccess()) > time.Minute {
			t.Errorf("last success %v", s.LastSuccess())
		}
	})

	t.Run("a restarted server counts from the newest archive", func(t *testing.T) {
		dir := t.TempDir()
		at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		if err := os.WriteFile(filepath.Join(dir, archivePrefix+at.Format(timeLayout)+archiveSuffix), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Dir = dir
		s := &Schedule{Options: o, Every: 24 * time.Hour, Keep: 2}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		servertest.Eventually(t, servertest.WaitLong, "the last success to be read", func() bool { return !s.LastSuccess().IsZero() })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !s.LastSuccess().Equal(at) {
			t.Errorf("last success %v, want %v from the archive's name", s.LastSuccess(), at)
		}
		if all, _ := List(dir); len(all) != 1 {
			t.Errorf("a backup ran although the newest is an hour old of 24: %d archives", len(all))
		}
	})
}
