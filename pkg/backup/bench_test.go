package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pythonide/pyide/pkg/store/storetest"
)

// TestLargeFile goes through the spool path (files above memLimit).
func TestLargeFile(t *testing.T) {
	src := t.TempDir()
	big := make([]byte, memLimit+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	if err := os.MkdirAll(filepath.Join(src, "Lecture Notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "Lecture Notes", "video.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	m := backupOf(t, src, storetest.NewURL(t))
	body := archiveEntries(t, m.Path)["data/Lecture Notes/video.bin"]
	want, got := sha256.Sum256(big), sha256.Sum256(body)
	if hex.EncodeToString(want[:]) != hex.EncodeToString(got[:]) {
		t.Fatalf("large file archived as %d bytes, not the %d written", len(body), len(big))
	}
	if spools, _ := filepath.Glob(filepath.Join(src, "backups", ".pyide-backup-*")); len(spools) != 0 {
		t.Errorf("temporary files left in the backups folder: %v", spools)
	}
}

// classTree is a course's worth of small files: students × files × size.
func classTree(b *testing.B, dir string, students, files, size int) int64 {
	r := rand.New(rand.NewPCG(3, 4))
	var total int64
	for s := 0; s < students; s++ {
		d := filepath.Join(dir, "Local", fmt.Sprintf("student%03d", s))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < files; f++ {
			// Half text (compresses), half random (does not).
			body := make([]byte, size)
			for i := range body {
				if f%2 == 0 {
					body[i] = "print('hello')\n"[i%15]
				} else {
					body[i] = byte(r.Uint32())
				}
			}
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%02d.py", f)), body, 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(size)
		}
	}
	return total
}

// BenchmarkBackupRestore: 200 students × 20 files × 16 KiB (≈ 64 MB) and
// an empty-ish database; reports archive size.
func BenchmarkBackupRestore(b *testing.B) {
	src := b.TempDir()
	total := classTree(b, src, 200, 20, 16<<10)
	url := storetest.NewURL(b)
	bin := storetest.Cluster(b).BinDir()
	out := b.TempDir() // outlives the sub-benchmarks: restore reads the archive
	var m Manifest
	b.Run("create", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			dir, err := os.MkdirTemp(out, "run")
			if err != nil {
				b.Fatal(err)
			}
			m, err = Create(context.Background(), Options{DataPath: src, DatabaseURL: url, Dir: dir, BinDir: bin})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(m.Size)/float64(total), "archive/data")
	})
	b.Run("restore", func(b *testing.B) {
		if m.Path == "" { // -bench …/restore alone
			var err error
			if m, err = Create(context.Background(), Options{DataPath: src, DatabaseURL: url, Dir: out, BinDir: bin}); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(total)
		for b.Loop() {
			b.StopTimer()
			dst, dstURL := filepath.Join(b.TempDir(), "data"), storetest.NewEmptyURL(b)
			b.StartTimer()
			if _, err := Restore(context.Background(), m.Path, Options{DataPath: dst, DatabaseURL: dstURL, BinDir: bin}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
