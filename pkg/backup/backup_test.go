package backup

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/store/storetest"
)

// leftOut are the data folder's paths a backup must not hold: the server's
// private folder, what an old layout kept at the top, links out,
// temporary files and fifos.
var leftOut = []string{".server", "pgdata", "backups", "secret.key", "passwords-20250101-000000.csv",
	"Local/alice/link-out", "Local/alice/link-up", "Local/alice/.pyide-tmp-123", "Local/alice/fifo"}

func backupOf(t *testing.T, src, url string) Manifest {
	t.Helper()
	start := time.Now()
	m, err := Create(context.Background(), Options{
		DataPath: src, DatabaseURL: url, Dir: filepath.Join(src, "backups"),
		BinDir: storetest.Cluster(t).BinDir(), Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup: %d bytes, %d entries in %v", m.Size, len(m.Entries), time.Since(start).Round(time.Millisecond))
	return m
}

func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	srcURL := storetest.NewURL(t)
	seed(t, srcURL)
	writeTree(t, src)
	m := backupOf(t, src, srcURL)

	if !regexp.MustCompile(`/pyide-backup-\d{8}T\d{6}Z\.tar\.gz$`).MatchString(m.Path) {
		t.Errorf("archive name %s", m.Path)
	}
	if st, err := os.Stat(m.Path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("archive mode: %v %v (it holds password hashes: owner only)", st.Mode(), err)
	}
	if m.SchemaVersion < 1 || m.PostgresVersion == "" || m.PyideVersion != "test" || m.Format != FormatVersion {
		t.Errorf("manifest header: %+v", m)
	}
	entries := archiveEntries(t, m.Path)
	for _, rel := range leftOut {
		for name := range entries {
			if name == dataPrefix+rel || strings.HasPrefix(name, dataPrefix+rel+"/") {
				t.Errorf("archive holds %s, which must be left out", name)
			}
		}
	}
	for _, name := range []string{manifestName, dumpName, "data/Local/alice/data.bin", "data/Local/alice/empty-folder/", "data/Local/alice/link-inside.py"} {
		if _, ok := entries[name]; !ok {
			t.Errorf("archive lacks %s", name)
		}
	}
	var stored Manifest
	if err := json.Unmarshal(entries[manifestName], &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Entries) != len(entries)-1 {
		t.Errorf("manifest lists %d entries, archive has %d besides it", len(stored.Entries), len(entries)-1)
	}

	// Restore into a folder that does not exist yet and an empty database.
	dst := filepath.Join(t.TempDir(), "data")
	dstURL := storetest.NewEmptyURL(t)
	start := time.Now()
	got, err := Restore(context.Background(), m.Path, Options{DataPath: dst, DatabaseURL: dstURL, BinDir: storetest.Cluster(t).BinDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore: %v", time.Since(start).Round(time.Millisecond))
	if got.SchemaVersion != m.SchemaVersion || len(got.Entries) != len(m.Entries) {
		t.Errorf("restore returned manifest %+v", got)
	}

	want := treeOf(t, src, leftOut...)
	diffMaps(t, "files", want, treeOf(t, dst))
	diffDB(t, dumpDB(t, srcURL), dumpDB(t, dstURL))

	// The restored database goes on where the old one stopped.
	conn := connect(t, dstURL)
	if _, err := conn.Exec(context.Background(), `INSERT INTO users (username, role, password_hash) VALUES ('carol', 'student', 'x')`); err != nil {
		t.Errorf("inserting after restore (identity sequences restored?): %v", err)
	}
}

func TestRestoreRefusesNonEmptyTargets(t *testing.T) {
	src := t.TempDir()
	srcURL := storetest.NewURL(t)
	seed(t, srcURL)
	writeTree(t, src)
	m := backupOf(t, src, srcURL)
	bin := storetest.Cluster(t).BinDir()
	ctx := context.Background()

	t.Run("data folder not empty", func(t *testing.T) {
		dst := t.TempDir()
		if err := os.WriteFile(filepath.Join(dst, "notes.txt"), []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Only the server's private folder (and an old layout's cluster
		// and backups) and lost+found may be there already.
		for _, d := range []string{".server", "pgdata", "backups", "lost+found"} {
			if err := os.Mkdir(filepath.Join(dst, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		dstURL := storetest.NewEmptyURL(t)
		_, err := Restore(ctx, m.Path, Options{DataPath: dst, DatabaseURL: dstURL, BinDir: bin})
		if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "notes.txt") {
			t.Fatalf("want ErrNotEmpty naming notes.txt, got %v", err)
		}
		if n, _ := userRelations(ctx, dstURL); n != 0 {
			t.Errorf("refused restore still wrote %d relations", n)
		}
		if err := os.Remove(filepath.Join(dst, "notes.txt")); err != nil {
			t.Fatal(err)
		}
		if err := CheckDataFolder(Options{DataPath: dst}); err != nil {
			t.Errorf("a folder with only .server, pgdata, backups and lost+found counts as empty: %v", err)
		}
	})

	t.Run("database not empty", func(t *testing.T) {
		dst := t.TempDir()
		migrated := storetest.NewURL(t)
		_, err := Restore(ctx, m.Path, Options{DataPath: dst, DatabaseURL: migrated, BinDir: bin})
		if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("want ErrNotEmpty mentioning --force, got %v", err)
		}
		if entries, _ := os.ReadDir(dst); len(entries) != 0 {
			t.Errorf("refused restore wrote %d entries into the data folder", len(entries))
		}

		// --force replaces what the archive holds.
		if _, err := Restore(ctx, m.Path, Options{DataPath: dst, DatabaseURL: migrated, BinDir: bin, Force: true}); err != nil {
			t.Fatal(err)
		}
		diffDB(t, dumpDB(t, srcURL), dumpDB(t, migrated))
		diffMaps(t, "files", treeOf(t, src, leftOut...), treeOf(t, dst))
	})
}

func TestCreateNeedsItsOptions(t *testing.T) {
	if _, err := Create(context.Background(), Options{DataPath: t.TempDir()}); err == nil {
		t.Fatal("Create without a database or folder succeeded")
	}
	if _, err := Create(context.Background(), Options{DataPath: t.TempDir(), DatabaseURL: "host=/nonexistent dbname=x", Dir: t.TempDir()}); err == nil {
		t.Fatal("Create against an unreachable database succeeded")
	}
}
