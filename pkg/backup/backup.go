// Package backup owns pyide's backup archives: Create writes one
// tar.gz holding a pg_dump of the database, the data folder (without the
// server's private folder — database cluster, backups, password files —
// and temporary files) and a manifest of sizes and SHA-256 checksums; Restore brings an archive back into an empty
// data folder and an empty database; Prune and Schedule keep the newest N.
//
// backup never reads outside the data folder (every file is opened through
// an os.Root, so a symlink a student's program plants cannot lead it out),
// never archives a half-written file, and never extracts an entry that
// could land outside the target folder.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/pythonide/pyide/pkg/datadir"
	"github.com/pythonide/pyide/pkg/fstree"
)

// FormatVersion is the archive layout this package writes and reads.
const FormatVersion = 1

// Names inside an archive.
const (
	manifestName = "manifest.json"
	dumpName     = "database.dump"
	dataPrefix   = "data/"
)

// tempPrefix names the temporary files of atomic writes in the data folder
// (pkg/fstree); they are never archived, because a file only becomes real
// when it is renamed to its final name.
const tempPrefix = fstree.TempPrefix

// Options say where the data and the database are.
type Options struct {
	DataPath    string // IDE_DATA_PATH
	DatabaseURL string // a URL or a key=value connection string
	// BinDir is the embedded cluster's binaries folder; pg_dump and
	// pg_restore there match the server, so they are tried first.
	BinDir string
	// Dir is where Create writes the archive (BACKUP_DIR). When it lies
	// inside DataPath it is left out of the archive.
	Dir     string
	Version string // pyide's version, for the manifest; default: the build's
	// Force lets Restore write into a data folder or database that is not
	// empty: files in the archive replace those on disk, and database
	// objects in the dump are dropped and recreated.
	Force  bool
	Logger *slog.Logger
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Manifest describes one archive; it is the archive's last entry.
type Manifest struct {
	Format          int       `json:"format"`
	PyideVersion    string    `json:"pyide_version"`
	Created         time.Time `json:"created"`
	SchemaVersion   int64     `json:"schema_version"`
	PostgresVersion string    `json:"postgres_version"`
	Entries         []Entry   `json:"entries"`

	// Path and Size describe the archive file; they are not stored in it.
	Path string `json:"-"`
	Size int64  `json:"-"`
}

// Entry is one archived file, folder or symlink.
type Entry struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // "file", "dir" or "symlink"
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Link   string `json:"link,omitempty"`
}

// Files counts the regular files under data/.
func (m Manifest) Files() (n int, bytes int64) {
	for _, e := range m.Entries {
		if e.Type == "file" && strings.HasPrefix(e.Name, dataPrefix) {
			n++
			bytes += e.Size
		}
	}
	return n, bytes
}

// archivePrefix and archiveSuffix frame an archive's name; the UTC time in
// between makes names sort by age.
const (
	archivePrefix = "pyide-backup-"
	archiveSuffix = ".tar.gz"
	timeLayout    = "20060102T150405Z"
)

// Create writes one archive into opts.Dir and returns its manifest. The
// archive appears under its final name only when complete.
func Create(ctx context.Context, opts Options) (Manifest, error) {
	start := time.Now()
	log := opts.logger()
	m, pgDump, err := begin(ctx, opts, start)
	if err != nil {
		return Manifest{}, err
	}
	log.Info("backup started", "folder", opts.Dir)

	// Archives hold password hashes: owner only.
	tmp, err := os.CreateTemp(opts.Dir, ".pyide-backup-*.tmp")
	if err != nil {
		return Manifest{}, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return Manifest{}, err
	}
	dump, err := dumpDatabase(ctx, pgDump, opts)
	if err != nil {
		return Manifest{}, err
	}
	defer os.Remove(dump)
	skipped, err := writeArchive(ctx, tmp, dump, opts, &m)
	if err != nil {
		return Manifest{}, err
	}
	size, err := syncAndClose(tmp)
	if err != nil {
		return Manifest{}, err
	}
	final, err := publish(tmp.Name(), opts.Dir, m.Created)
	if err != nil {
		return Manifest{}, err
	}
	done = true
	m.Path, m.Size = final, size
	files, fileBytes := m.Files()
	log.Info("backup written", "archive", final, "bytes", m.Size, "files", files, "file_bytes", fileBytes,
		"skipped", skipped, "duration", time.Since(start).Round(time.Millisecond).String())
	return m, nil
}

// begin checks opts, makes the backup folder, and learns what the manifest
// says of the database and which pg_dump can dump it; nothing is written
// yet.
func begin(ctx context.Context, opts Options, start time.Time) (Manifest, string, error) {
	if opts.DataPath == "" || opts.DatabaseURL == "" || opts.Dir == "" {
		return Manifest{}, "", errors.New("backup: DataPath, DatabaseURL and Dir are required")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return Manifest{}, "", fmt.Errorf("backup folder: %w", err)
	}
	info, err := inspectDB(ctx, opts.DatabaseURL)
	if err != nil {
		return Manifest{}, "", fmt.Errorf("backup: %w", err)
	}
	pgDump, err := findTool(ctx, "pg_dump", opts.BinDir, info.serverMajor)
	if err != nil {
		return Manifest{}, "", fmt.Errorf("backup: %w", err)
	}
	m := Manifest{
		Format: FormatVersion, PyideVersion: opts.Version, Created: start.UTC().Truncate(time.Second),
		SchemaVersion: info.schemaVersion, PostgresVersion: info.serverVersion,
	}
	if m.PyideVersion == "" {
		m.PyideVersion = buildVersion()
	}
	return m, pgDump, nil
}

// dumpDatabase writes the database's dump to a file beside the archive and
// returns its name: a tar entry needs its size up front, so the dump cannot
// stream into the archive. The caller removes the file.
func dumpDatabase(ctx context.Context, pgDump string, opts Options) (string, error) {
	f, err := os.CreateTemp(opts.Dir, ".pyide-backup-*.dump")
	if err != nil {
		return "", err
	}
	f.Close()
	if err := runTool(ctx, pgDump, opts.DatabaseURL, "--format=custom", "--no-password", "--file="+f.Name()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("backup: dumping the database: %w", err)
	}
	return f.Name(), nil
}

// writeArchive writes the whole archive into f: the dump, the data folder,
// and last the manifest, which m becomes.
func writeArchive(ctx context.Context, f *os.File, dump string, opts Options, m *Manifest) (skipped int, err error) {
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	w := &archiveWriter{tw: tar.NewWriter(zw), m: m}
	if err := w.addDump(dump); err != nil {
		return 0, err
	}
	skipped, err = w.addDataFolder(ctx, opts)
	if err != nil {
		return 0, err
	}
	if err := w.addManifest(); err != nil {
		return 0, err
	}
	for _, c := range []io.Closer{w.tw, zw} {
		if err := c.Close(); err != nil {
			return 0, err
		}
	}
	return skipped, bw.Flush()
}

// syncAndClose makes f durable, closes it and returns its size.
func syncAndClose(f *os.File) (int64, error) {
	if err := f.Sync(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), f.Close()
}

// publish gives a finished archive its final name without replacing an
// archive of the same second (a link fails when the name exists).
func publish(tmp, dir string, at time.Time) (string, error) {
	base := archivePrefix + at.UTC().Format(timeLayout)
	for i := 0; i < 100; i++ {
		name := base + archiveSuffix
		if i > 0 {
			name = fmt.Sprintf("%s-%d%s", base, i, archiveSuffix)
		}
		final := filepath.Join(dir, name)
		err := os.Link(tmp, final)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := os.Remove(tmp); err != nil {
			return "", err
		}
		return final, syncDir(dir)
	}
	return "", fmt.Errorf("backup: too many archives named %s*", base)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

type archiveWriter struct {
	tw *tar.Writer
	m  *Manifest
	// buf holds one file while it is read, so that the size in the tar
	// header is the size of exactly the bytes archived.
	buf   bytes.Buffer
	spool *os.File // for files too large for buf
}

// memLimit is the largest file read into memory; larger ones (rare: the
// IDE's own limit is 10 MB) go through a spool file beside the archive.
const memLimit = 32 << 20

func (w *archiveWriter) addDump(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: dumpName, Typeflag: tar.TypeReg, Mode: 0o600, Size: st.Size(), ModTime: w.m.Created, Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w.tw, h), f)
	if err != nil {
		return err
	}
	w.m.Entries = append(w.m.Entries, Entry{Name: dumpName, Type: "file", Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// addManifest writes the manifest as it stands: the archive's last entry.
func (w *archiveWriter) addManifest() error {
	body, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: manifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(body)), ModTime: w.m.Created, Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = w.tw.Write(body)
	return err
}

// excluded reports whether a path of the data folder stays out of the
// archive.
func excluded(rel string, skipDirs map[string]bool) bool {
	if skipDirs[rel] || datadir.ServerPrivate(rel) {
		return true
	}
	return strings.HasPrefix(path.Base(rel), tempPrefix) || strings.HasPrefix(path.Base(rel), ".pyide-backup-")
}

// skipDirs lists the data folder's paths that are not data, beside the
// server's private folder (the database cluster, which is dumped instead,
// the default backups folder, password files; datadir.ServerPrivate): the
// backups when opts.Dir is inside, and fsck's lost+found.
func skipDirs(opts Options) map[string]bool {
	skip := map[string]bool{"lost+found": true}
	if opts.Dir != "" {
		data, _ := filepath.Abs(opts.DataPath)
		dir, _ := filepath.Abs(opts.Dir)
		if rel, err := filepath.Rel(data, dir); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			skip[filepath.ToSlash(rel)] = true
		}
	}
	return skip
}

func (w *archiveWriter) addDataFolder(ctx context.Context, opts Options) (skipped int, err error) {
	log := opts.logger()
	root, err := os.OpenRoot(opts.DataPath)
	if err != nil {
		return 0, fmt.Errorf("backup: data folder: %w", err)
	}
	defer root.Close()
	defer func() {
		if w.spool != nil {
			w.spool.Close()
			os.Remove(w.spool.Name())
		}
	}()
	skip := skipDirs(opts)
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// Deleted while we walked: it is simply not in this backup.
				return nil
			}
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if rel == "." {
			return nil
		}
		if excluded(rel, skip) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			return w.addDir(root, rel)
		case d.Type()&fs.ModeSymlink != 0:
			ok, err := w.addSymlink(root, rel)
			if !ok {
				skipped++
				log.Debug("backup: symlink leading out of the data folder left out", "path", rel)
			}
			return err
		case d.Type().IsRegular():
			ok, err := w.addFile(opts, root, rel)
			if !ok {
				skipped++
			}
			return err
		default:
			// Sockets (the admin socket), fifos and devices hold no data.
			return nil
		}
	})
	return skipped, err
}

func ownerOf(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

func (w *archiveWriter) addDir(root *os.Root, rel string) error {
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return fs.SkipDir
	}
	if err != nil {
		return err
	}
	uid, gid := ownerOf(fi)
	name := dataPrefix + rel + "/"
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Uid: uid, Gid: gid, Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	w.m.Entries = append(w.m.Entries, Entry{Name: name, Type: "dir"})
	return nil
}

// addSymlink archives a symlink only when its target stays inside the data
// folder; links out (a student's program may make one to anything) would
// be refused by Restore, so they are left out here.
func (w *archiveWriter) addSymlink(root *os.Root, rel string) (bool, error) {
	target, err := root.Readlink(rel)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EINVAL) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if !linkInside(rel, target) {
		return false, nil
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return true, nil
	}
	uid, gid := ownerOf(fi)
	name := dataPrefix + rel
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: fi.ModTime(), Uid: uid, Gid: gid, Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return false, err
	}
	w.m.Entries = append(w.m.Entries, Entry{Name: name, Type: "symlink", Link: target})
	return true, nil
}

// linkInside reports whether a symlink at rel (slash-separated, relative to
// the data folder) pointing at target resolves, lexically, inside the data
// folder. Absolute targets never do: they mean different things on the
// server and in a sandbox.
func linkInside(rel, target string) bool {
	if target == "" || path.IsAbs(target) || strings.ContainsRune(target, 0) {
		return false
	}
	p := path.Join(path.Dir(rel), target)
	return p != ".." && !strings.HasPrefix(p, "../")
}

// addFile archives one whole version of a file. Writers replace files by
// renaming a complete temporary file over them, so the inode we opened
// never changes while we read it. A program in a sandbox may still write
// in place; a change of size or time during the read is caught and the
// file read again.
func (w *archiveWriter) addFile(opts Options, root *os.Root, rel string) (bool, error) {
	log := opts.logger()
	// O_NONBLOCK: if the name was swapped for a fifo since the walk saw
	// it, opening must not hang. A swapped-in link is followed only inside
	// the root, and the Stat below keeps regular files alone.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		log.Warn("backup: file left out", "path", rel, "error", err)
		return false, nil
	}
	defer f.Close()
	var (
		fi  fs.FileInfo
		src io.Reader
		n   int64
		sum string
	)
	for attempt := 1; ; attempt++ {
		fi, err = f.Stat()
		if err != nil {
			return false, err
		}
		if !fi.Mode().IsRegular() {
			return false, nil
		}
		src, n, sum, err = w.read(opts, f, fi.Size())
		if err != nil {
			return false, fmt.Errorf("backup: reading %s: %w", rel, err)
		}
		after, err := f.Stat()
		if err != nil {
			return false, err
		}
		if n == fi.Size() && after.Size() == fi.Size() && after.ModTime().Equal(fi.ModTime()) {
			break
		}
		if attempt == 3 {
			log.Warn("backup: file kept changing while it was read; archived the last read", "path", rel)
			break
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
	}
	uid, gid := ownerOf(fi)
	name := dataPrefix + rel
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: int64(fi.Mode().Perm()), Size: n, ModTime: fi.ModTime(), Uid: uid, Gid: gid, Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return false, err
	}
	if _, err := io.Copy(w.tw, src); err != nil {
		return false, err
	}
	w.m.Entries = append(w.m.Entries, Entry{Name: name, Type: "file", Size: n, SHA256: sum})
	return true, nil
}

// read copies the file into memory or the spool and hashes exactly the
// bytes it copied.
func (w *archiveWriter) read(opts Options, f *os.File, size int64) (io.Reader, int64, string, error) {
	h := sha256.New()
	if size <= memLimit {
		w.buf.Reset()
		n, err := io.Copy(io.MultiWriter(&w.buf, h), f)
		return bytes.NewReader(w.buf.Bytes()), n, hexSum(h), err
	}
	if w.spool == nil {
		s, err := os.CreateTemp(opts.Dir, ".pyide-backup-*.spool")
		if err != nil {
			return nil, 0, "", err
		}
		w.spool = s
	}
	if err := w.spool.Truncate(0); err != nil {
		return nil, 0, "", err
	}
	if _, err := w.spool.Seek(0, io.SeekStart); err != nil {
		return nil, 0, "", err
	}
	n, err := io.Copy(io.MultiWriter(w.spool, h), f)
	if err != nil {
		return nil, 0, "", err
	}
	if _, err := w.spool.Seek(0, io.SeekStart); err != nil {
		return nil, 0, "", err
	}
	return io.LimitReader(w.spool, n), n, hexSum(h), nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
