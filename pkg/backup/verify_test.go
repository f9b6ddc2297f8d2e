package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pythonide/pyide/pkg/store/storetest"
)

// rewrite copies an archive entry by entry through edit, which may change
// a header or the body, or drop the entry (nil header).
func rewrite(t *testing.T, src, dst string, edit func(h *tar.Header, body []byte) (*tar.Header, []byte)) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		h, body = edit(h, body)
		if h == nil {
			continue
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedArchiveRefused(t *testing.T) {
	src := t.TempDir()
	srcURL := storetest.NewURL(t)
	seed(t, srcURL)
	writeTree(t, src)
	m := backupOf(t, src, srcURL)
	bin := storetest.Cluster(t).BinDir()

	tests := []struct {
		name string
		edit func(h *tar.Header, body []byte) (*tar.Header, []byte)
	}{
		{"one byte of a file changed", func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == "data/Local/alice/data.bin" {
				b = bytes.Clone(b)
				b[100] ^= 1
			}
			return h, b
		}},
		{"database dump truncated", func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == dumpName {
				b = b[:len(b)/2]
			}
			return h, b
		}},
		{"file missing", func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == "data/Local/alice/hello.py" {
				return nil, nil
			}
			return h, b
		}},
		{"file added", func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == "data/Local/alice/hello.py" {
				h.Name = "data/Local/alice/hello2.py"
			}
			return h, b
		}},
		{"manifest missing", func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == manifestName {
				return nil, nil
			}
			return h, b
		}},
		{"manifest of another format", func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if h.Name == manifestName {
				var m Manifest
				_ = json.Unmarshal(b, &m)
				m.Format = 99
				b, _ = json.Marshal(m)
			}
			return h, b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.tar.gz")
			rewrite(t, m.Path, bad, tt.edit)
			if _, err := Verify(context.Background(), bad); !errors.Is(err, ErrBadArchive) {
				t.Fatalf("Verify: want ErrBadArchive, got %v", err)
			}
			dst, dstURL := t.TempDir(), storetest.NewEmptyURL(t)
			_, err := Restore(context.Background(), bad, Options{DataPath: dst, DatabaseURL: dstURL, BinDir: bin})
			if !errors.Is(err, ErrBadArchive) {
				t.Fatalf("Restore: want ErrBadArchive, got %v", err)
			}
			t.Log(err)
			assertUntouched(t, dst, dstURL)
		})
	}

	// An untouched copy still passes, so the edits above are what failed.
	same := filepath.Join(t.TempDir(), "same.tar.gz")
	rewrite(t, m.Path, same, func(h *tar.Header, b []byte) (*tar.Header, []byte) { return h, b })
	if _, err := Verify(context.Background(), same); err != nil {
		t.Fatalf("an unchanged copy fails: %v", err)
	}
}

func assertUntouched(t *testing.T, dst, url string) {
	t.Helper()
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Errorf("a refused restore wrote %d entries into the data folder", len(entries))
	}
	if n, err := userRelations(context.Background(), url); err != nil || n != 0 {
		t.Errorf("a refused restore wrote %d relations (%v)", n, err)
	}
}

// craft builds an archive whose manifest matches its entries exactly, so
// that only the entries' shape can be the reason for a refusal.
func craft(t *testing.T, entries []*tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	m := Manifest{Format: FormatVersion}
	write := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
			body = nil
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
		e := Entry{Name: h.Name, Type: map[byte]string{tar.TypeReg: "file", tar.TypeDir: "dir", tar.TypeSymlink: "symlink"}[h.Typeflag], Link: h.Linkname}
		if e.Type == "file" {
			sum := sha256.Sum256(body)
			e.Size, e.SHA256 = int64(len(body)), hex.EncodeToString(sum[:])
		}
		m.Entries = append(m.Entries, e)
	}
	write(&tar.Header{Name: dumpName, Typeflag: tar.TypeReg, Mode: 0o600}, []byte("not a dump"))
	for _, h := range entries {
		write(h, []byte("pwned\n"))
	}
	body, _ := json.Marshal(m)
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	_ = tw.Close()
	_ = zw.Close()
	p := filepath.Join(t.TempDir(), "crafted.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnsafeEntriesRefused(t *testing.T) {
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	link := func(name, target string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
	}
	tests := []struct {
		name    string
		entries []*tar.Header
	}{
		{"parent escape", []*tar.Header{reg("../evil")}},
		{"parent escape inside data", []*tar.Header{reg("data/../../evil")}},
		{"dot-dot in the middle", []*tar.Header{reg("data/Local/../../evil")}},
		{"absolute name", []*tar.Header{reg("/tmp/evil")}},
		{"unclean name", []*tar.Header{reg("data//Local/x")}},
		{"dot segment", []*tar.Header{reg("data/./x")}},
		{"entry outside data", []*tar.Header{reg("evil.sh")}},
		{"symlink to an absolute path", []*tar.Header{link("data/Local/x", "/etc")}},
		{"symlink up and out", []*tar.Header{link("data/Local/x", "../../..")}},
		{"symlink out, then a file through it", []*tar.Header{link("data/out", ".."), reg("data/out/evil")}},
		{"hard link", []*tar.Header{{Name: "data/x", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}},
		{"device", []*tar.Header{{Name: "data/x", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}},
		{"fifo", []*tar.Header{{Name: "data/x", Typeflag: tar.TypeFifo}}},
		{"the server's private folder", []*tar.Header{{Name: "data/.server/", Typeflag: tar.TypeDir, Mode: 0o700}, reg("data/.server/pgdata/data/pg_hba.conf")}},
		{"same name twice", []*tar.Header{{Name: "data/a/", Typeflag: tar.TypeDir, Mode: 0o755}, link("data/a", "b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive := craft(t, tt.entries)
			if _, err := Verify(context.Background(), archive); !errors.Is(err, ErrBadArchive) {
				t.Fatalf("Verify: want ErrBadArchive, got %v", err)
			}
			// The data folder sits inside a parent that must stay empty
			// too: nothing may land beside it.
			parent := t.TempDir()
			dst := filepath.Join(parent, "data")
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			url := storetest.NewEmptyURL(t)
			_, err := Restore(context.Background(), archive, Options{DataPath: dst, DatabaseURL: url, BinDir: storetest.Cluster(t).BinDir()})
			if !errors.Is(err, ErrBadArchive) {
				t.Fatalf("Restore: want ErrBadArchive, got %v", err)
			}
			assertUntouched(t, dst, url)
			if entries, _ := os.ReadDir(parent); len(entries) != 1 {
				t.Errorf("something was written beside the data folder: %v", entries)
			}
		})
	}

	// A link that stays inside is kept: the crafted archive is otherwise
	// valid, so Verify accepts it.
	ok := craft(t, []*tar.Header{{Name: "data/a/", Typeflag: tar.TypeDir, Mode: 0o755}, reg("data/a/f"), link("data/a/l", "f"), link("data/b", "a/f")})
	if _, err := Verify(context.Background(), ok); err != nil {
		t.Fatalf("safe links refused: %v", err)
	}
}

func TestLinkInside(t *testing.T) {
	tests := []struct {
		name, rel, target string
		want              bool
	}{
		{"sibling", "Local/a/x", "y", true},
		{"down", "Local/a/x", "sub/y", true},
		{"up inside", "Local/a/x", "../b/y", true},
		{"to the top", "Local/a/x", "../..", true},
		{"one too far", "Local/a/x", "../../..", false},
		{"far out", "Local/a/x", "../../../../etc/passwd", false},
		{"absolute", "Local/a/x", "/etc/passwd", false},
		{"empty", "Local/a/x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := linkInside(tt.rel, tt.target); got != tt.want {
				t.Errorf("linkInside(%q, %q) = %v, want %v", tt.rel, tt.target, got, tt.want)
			}
		})
	}
}
