package backup

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pythonide/pyide/pkg/datadir"
)

// ErrBadArchive is returned for an archive that is damaged, tampered with
// or unsafe to extract; nothing has been written when it is returned.
var ErrBadArchive = errors.New("not a valid pyide backup")

// ErrNotEmpty is returned when Restore would overwrite existing data.
var ErrNotEmpty = errors.New("restore target is not empty")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadArchive, fmt.Sprintf(format, args...))
}

// maxManifest bounds the manifest read into memory.
const maxManifest = 256 << 20

// openArchive streams an archive's tar entries.
func openArchive(name string) (*tar.Reader, func(), error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		f.Close()
		return nil, nil, bad("%v", err)
	}
	return tar.NewReader(zr), func() { zr.Close(); f.Close() }, nil
}

// checkEntry refuses any entry that could land outside the target or is
// not something Create writes: absolute or unclean names, "..", links out
// of the data folder, hard links, devices and fifos.
func checkEntry(h *tar.Header) (Entry, error) {
	name := h.Name
	if name == "" || strings.ContainsRune(name, 0) || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) {
		return Entry{}, bad("unsafe entry name %q", name)
	}
	trimmed := strings.TrimSuffix(name, "/")
	if path.Clean(trimmed) != trimmed || trimmed == ".." || strings.HasPrefix(trimmed, "../") {
		return Entry{}, bad("unsafe entry name %q", name)
	}
	for _, seg := range strings.Split(trimmed, "/") {
		if seg == ".." || seg == "." {
			return Entry{}, bad("unsafe entry name %q", name)
		}
	}
	inData := strings.HasPrefix(name, dataPrefix) && trimmed != "data"
	if first, _, _ := strings.Cut(strings.TrimPrefix(trimmed, dataPrefix), "/"); inData && first == datadir.PrivateName {
		// pyide never archives it; a cluster or socket planted there
		// would be the server's own.
		return Entry{}, bad("entry %q is in the server's private folder", name)
	}
	switch h.Typeflag {
	case tar.TypeReg:
		if name != manifestName && name != dumpName && !inData {
			return Entry{}, bad("unexpected entry %q", name)
		}
		return Entry{Name: name, Type: "file", Size: h.Size}, nil
	case tar.TypeDir:
		if !inData || !strings.HasSuffix(name, "/") {
			return Entry{}, bad("unexpected folder %q", name)
		}
		return Entry{Name: name, Type: "dir"}, nil
	case tar.TypeSymlink:
		if !inData || !linkInside(strings.TrimPrefix(name, dataPrefix), h.Linkname) {
			return Entry{}, bad("symlink %q -> %q leads out of the data folder", name, h.Linkname)
		}
		return Entry{Name: name, Type: "symlink", Link: h.Linkname}, nil
	}
	return Entry{}, bad("entry %q has a type pyide never writes (%q)", name, h.Typeflag)
}

// Verify reads a whole archive, checks every entry against the manifest
// (same names, types, sizes and SHA-256 sums; nothing missing, nothing
// added) and refuses unsafe entries. It writes nothing.
func Verify(ctx context.Context, archive string) (Manifest, error) {
	tr, closeFn, err := openArchive(archive)
	if err != nil {
		return Manifest{}, err
	}
	defer closeFn()
	seen := map[string]Entry{}
	names := map[string]bool{}
	var m *Manifest
	for {
		if err := ctx.Err(); err != nil {
			return Manifest{}, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, bad("%v", err)
		}
		e, err := checkEntry(h)
		if err != nil {
			return Manifest{}, err
		}
		// A second entry of one name ("a/" and "a" are one) could swap a
		// folder for a link between the check and the extraction.
		key := strings.TrimSuffix(e.Name, "/")
		if names[key] {
			return Manifest{}, bad("entry %q appears twice", e.Name)
		}
		names[key] = true
		if e.Name == manifestName {
			body, err := io.ReadAll(io.LimitReader(tr, maxManifest))
			if err != nil {
				return Manifest{}, bad("%v", err)
			}
			m = new(Manifest)
			if err := json.Unmarshal(body, m); err != nil {
				return Manifest{}, bad("manifest: %v", err)
			}
			continue
		}
		if e.Type == "file" {
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return Manifest{}, bad("%s: %v", e.Name, err)
			}
			e.Size, e.SHA256 = n, hexSum(h)
		}
		seen[e.Name] = e
	}
	if m == nil {
		return Manifest{}, bad("no %s", manifestName)
	}
	if m.Format != FormatVersion {
		return Manifest{}, bad("format %d; this pyide reads format %d", m.Format, FormatVersion)
	}
	if len(m.Entries) != len(seen) {
		return Manifest{}, bad("the manifest lists %d entries, the archive holds %d", len(m.Entries), len(seen))
	}
	hasDump := false
	for _, want := range m.Entries {
		got, ok := seen[want.Name]
		if !ok {
			return Manifest{}, bad("%s is in the manifest but not in the archive", want.Name)
		}
		if got != want {
			return Manifest{}, bad("%s does not match its checksum or size in the manifest", want.Name)
		}
		hasDump = hasDump || want.Name == dumpName
	}
	if !hasDump {
		return Manifest{}, bad("no %s", dumpName)
	}
	st, err := os.Stat(archive)
	if err != nil {
		return Manifest{}, err
	}
	m.Path, m.Size = archive, st.Size()
	return *m, nil
}

// CheckDataFolder returns ErrNotEmpty when the data folder holds anything
// but the server's private folder (the embedded cluster, whose database is
// checked separately, and the backups), the backups folder and lost+found.
// A missing folder is empty.
func CheckDataFolder(opts Options) error {
	entries, err := os.ReadDir(opts.DataPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	ignore := skipDirs(opts)
	var found []string
	for _, e := range entries {
		if !ignore[e.Name()] && !datadir.ServerPrivate(e.Name()) {
			found = append(found, e.Name())
		}
	}
	if len(found) > 0 {
		sort.Strings(found)
		if len(found) > 5 {
			found = append(found[:5], "…")
		}
		return fmt.Errorf("%w: the data folder %s holds %s (restore into an empty folder, or pass --force to overwrite)",
			ErrNotEmpty, opts.DataPath, strings.Join(found, ", "))
	}
	return nil
}

func checkDatabase(ctx context.Context, opts Options) error {
	n, err := userRelations(ctx, opts.DatabaseURL)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: the database already holds %d tables or sequences (restore into an empty database, or pass --force to replace what the backup holds)", ErrNotEmpty, n)
	}
	return nil
}

// Restore verifies an archive, then restores its database dump into
// opts.DatabaseURL (in one transaction) and its files into opts.DataPath.
// Both must be empty unless opts.Force.
func Restore(ctx context.Context, archive string, opts Options) (Manifest, error) {
	start := time.Now()
	log := opts.logger()
	if opts.DataPath == "" || opts.DatabaseURL == "" {
		return Manifest{}, errors.New("restore: DataPath and DatabaseURL are required")
	}
	m, err := Verify(ctx, archive)
	if err != nil {
		return Manifest{}, err
	}
	if !opts.Force {
		if err := CheckDataFolder(opts); err != nil {
			return Manifest{}, err
		}
		if err := checkDatabase(ctx, opts); err != nil {
			return Manifest{}, err
		}
	}
	info, err := inspectDB(ctx, opts.DatabaseURL)
	if err != nil {
		return Manifest{}, fmt.Errorf("restore: %w", err)
	}
	// pg_restore must read the dump's format and speak to the target.
	need := info.serverMajor
	if d := majorOf(m.PostgresVersion); d > need {
		need = d
	}
	pgRestore, err := findTool(ctx, "pg_restore", opts.BinDir, need)
	if err != nil {
		return Manifest{}, fmt.Errorf("restore: %w", err)
	}
	want := map[string]Entry{}
	for _, e := range m.Entries {
		want[e.Name] = e
	}
	if err := os.MkdirAll(opts.DataPath, 0o755); err != nil {
		return Manifest{}, err
	}
	root, err := os.OpenRoot(opts.DataPath)
	if err != nil {
		return Manifest{}, err
	}
	defer root.Close()

	tr, closeFn, err := openArchive(archive)
	if err != nil {
		return Manifest{}, err
	}
	defer closeFn()
	x := extractor{root: root, force: opts.Force, asRoot: os.Geteuid() == 0}
	for {
		if err := ctx.Err(); err != nil {
			return Manifest{}, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, bad("%v", err)
		}
		// Checked again: the file may have changed since Verify.
		e, err := checkEntry(h)
		if err != nil {
			return Manifest{}, err
		}
		switch e.Name {
		case manifestName:
		case dumpName:
			// The dump comes first, so a database that cannot be restored
			// leaves the data folder untouched.
			if err := restoreDump(ctx, tr, want[dumpName], pgRestore, opts); err != nil {
				return Manifest{}, err
			}
			log.Info("database restored", "archive", archive, "schema_version", m.SchemaVersion)
		default:
			if err := x.extract(tr, h, e, want[e.Name]); err != nil {
				return Manifest{}, err
			}
		}
	}
	if err := x.finish(); err != nil {
		return Manifest{}, err
	}
	files, bytes := m.Files()
	log.Info("restore done", "archive", archive, "files", files, "file_bytes", bytes,
		"duration", time.Since(start).Round(time.Millisecond).String())
	return m, nil
}

func restoreDump(ctx context.Context, r io.Reader, want Entry, pgRestore string, opts Options) error {
	f, err := os.CreateTemp("", "pyide-restore-*.dump")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if hexSum(h) != want.SHA256 {
		return bad("%s changed since it was verified", dumpName)
	}
	args := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--no-password"}
	if opts.Force {
		args = append(args, "--clean", "--if-exists")
	}
	args = append(args, f.Name())
	if err := runTool(ctx, pgRestore, opts.DatabaseURL, args...); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// extractor writes data/ entries under the root, so no name or link in the
// archive can place a file outside it.
type extractor struct {
	root   *os.Root
	force  bool
	asRoot bool
	dirs   []dirTimes
}

type dirTimes struct {
	rel   string
	perm  fs.FileMode
	mtime time.Time
}

func (x *extractor) extract(r io.Reader, h *tar.Header, e, want Entry) error {
	rel := strings.TrimSuffix(strings.TrimPrefix(e.Name, dataPrefix), "/")
	if parent := path.Dir(rel); parent != "." {
		if err := x.root.MkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	perm := fs.FileMode(h.Mode) & fs.ModePerm
	switch e.Type {
	case "dir":
		// Owner-writable until finish, so a read-only folder can still be
		// filled.
		if err := x.root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := x.root.Chmod(rel, perm|0o700); err != nil {
			return err
		}
		x.dirs = append(x.dirs, dirTimes{rel, perm, h.ModTime})
	case "symlink":
		if x.force {
			_ = x.root.Remove(rel)
		}
		if err := x.root.Symlink(e.Link, rel); err != nil {
			return err
		}
	case "file":
		if err := x.writeFile(r, rel, perm, want); err != nil {
			return err
		}
		if err := x.root.Chtimes(rel, h.ModTime, h.ModTime); err != nil {
			return err
		}
	}
	if x.asRoot {
		// Sandboxes run as an unprivileged uid that must own its
		// workspace again.
		return x.root.Lchown(rel, h.Uid, h.Gid)
	}
	return nil
}

// writeFile writes through a temporary name and renames, checking the
// bytes against the manifest before they become visible.
func (x *extractor) writeFile(r io.Reader, rel string, perm fs.FileMode, want Entry) error {
	// A short random name: the final name may already be near NAME_MAX.
	tmp := path.Join(path.Dir(rel), tempPrefix+"restore-"+rand.Text())
	f, err := x.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	// No fsync per file (thousands of them would dominate the restore):
	// finish syncs the whole file system once.
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && hexSum(h) != want.SHA256 {
		err = bad("%s changed since it was verified", want.Name)
	}
	if err == nil {
		err = x.root.Chmod(tmp, perm)
	}
	if err == nil && !x.force {
		// Without --force nothing may be replaced, even if the folder
		// filled up since it was checked.
		if _, serr := x.root.Lstat(rel); serr == nil {
			err = fmt.Errorf("%w: %s exists", ErrNotEmpty, rel)
		}
	}
	if err == nil {
		err = x.root.Rename(tmp, rel)
	}
	if err != nil {
		_ = x.root.Remove(tmp)
	}
	return err
}

// finish sets folder modes and times last, since writing into a folder
// changes its time; deepest first.
func (x *extractor) finish() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := x.root.Chmod(d.rel, d.perm); err != nil {
			return err
		}
		if err := x.root.Chtimes(d.rel, d.mtime, d.mtime); err != nil {
			return err
		}
	}
	f, err := x.root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
