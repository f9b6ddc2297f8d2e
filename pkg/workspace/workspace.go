// Package workspace owns the course file tree on disk (IDE_DATA_PATH) and
// is the only code that writes it: the one permission policy every path
// goes through, safe file access, file metadata, revisions, trash and
// quota, and the folders (and the file) a sandbox gets for a Run. Its
// operations (List, Open, Save, Create, Move, Copy, Trash, RestoreTrash,
// uploads, revisions, RunTarget, and what pkg/course asks of the tree) know
// nothing of HTTP and fail with typed errors; http.go is a thin front for
// /api/files that maps them to statuses.
//
// It must never follow a symbolic link: every path is opened one folder at
// a time through os.Root, each checked not to be a link, so a link made by
// a student's program can lead neither out of the data folder nor into
// another user's folder. It never lets anyone create, move, rename, delete
// or restore a folder the server keeps (the mount sources, see
// Path.Managed), never moves or restores a link, never writes a file in
// place (temp, fsync, rename) and never serves user files as active content
// (HTML, SVG, JS are text/plain).
package workspace

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/store"
)

// Options configure a Workspace. Zero values take the defaults.
type Options struct {
	DataPath       string
	DB             *store.DB
	MaxFileBytes   int64         // per file; default 10 MB
	QuotaBytes     int64         // per student; default 100 MB
	RevisionsKept  int           // per file; default 50
	TrashRetention time.Duration // default 30 days
	// SandboxUID owns what the server creates in the tree when it runs as
	// root, so the non-root container can change it; default 1000.
	SandboxUID int
	Logger     *slog.Logger
	Clock      func() time.Time
	// Course answers the time-dependent questions of the policy; default
	// StaticCourse{} (assignments published, no test open, submissions open).
	Course CourseState
}

// Defaults.
const (
	DefaultMaxFileBytes   = 10 << 20
	DefaultQuotaBytes     = 100 << 20
	DefaultRevisionsKept  = 50
	DefaultTrashRetention = 30 * 24 * time.Hour
	DefaultSandboxUID     = 1000
	// RevisionContentBytes: revisions of larger files keep only the hash.
	RevisionContentBytes = 1 << 20
	// tempMaxAge: a temporary file older than this is a crashed write's.
	tempMaxAge = time.Hour
	trashDir   = ".trash"
	// movingDir stages moves where no sandbox reaches (see rename); no
	// user name starts with a dot, so it is no one's trash.
	movingDir  = trashDir + "/.moving"
	movingNote = ".from"
)

// Workspace is the course file tree and its API.
type Workspace struct {
	opts    Options
	tree    *fstree.Tree
	absData string
	// locks serialise writes to one path (check If-Match, then write);
	// striped so the table stays small.
	locks [64]sync.Mutex
}

// New opens the data folder, creating it and the roots when missing.
func New(opts Options) (*Workspace, error) {
	if opts.DataPath == "" {
		return nil, errors.New("workspace: DataPath is required")
	}
	if opts.DB == nil {
		return nil, errors.New("workspace: DB is required")
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.QuotaBytes <= 0 {
		opts.QuotaBytes = DefaultQuotaBytes
	}
	if opts.RevisionsKept <= 0 {
		opts.RevisionsKept = DefaultRevisionsKept
	}
	if opts.TrashRetention <= 0 {
		opts.TrashRetention = DefaultTrashRetention
	}
	if opts.SandboxUID <= 0 {
		opts.SandboxUID = DefaultSandboxUID
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Course == nil {
		opts.Course = StaticCourse{}
	}
	if err := os.MkdirAll(opts.DataPath, 0o755); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	// Mount sources must be real host paths: resolve a linked data folder
	// once, here, where the operator configured it.
	abs, err := filepath.Abs(opts.DataPath)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	// The server gives what it creates to the sandbox user, never its own
	// uid, so the non-root container can change it; that takes root or
	// CAP_CHOWN.
	chown := fstree.MayChown()
	if !chown {
		opts.Logger.Warn("workspace: this server may not give files to the sandbox user (it is neither root nor holds CAP_CHOWN): students' programs will not be able to write their own folders; see deploy/README.md",
			"sandbox_uid", opts.SandboxUID)
	}
	t, err := fstree.Open(abs, chown, opts.SandboxUID)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	root := t.Root()
	for _, r := range append([]string{trashDir}, Roots...) {
		if err := root.Mkdir(r, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			t.Close()
			return nil, fmt.Errorf("workspace: %w", err)
		}
	}
	// Only the server reads the trash.
	_ = root.Chmod(trashDir, 0o700)
	// Course material is the server's: every sandbox mounts it read-only
	// and staff edit it through the file API.
	w := &Workspace{opts: opts, tree: t, absData: abs}
	w.recoverMoves()
	return w, nil
}

// Close releases the data folder.
func (w *Workspace) Close() error { return w.tree.Close() }

func (w *Workspace) now() time.Time { return w.opts.Clock() }

func (w *Workspace) access(u auth.User, p Path) Level {
	return AccessPath(u, p, w.opts.Course, w.now())
}

func (w *Workspace) lock(p string) func() {
	h := fnv.New32a()
	_, _ = io.WriteString(h, p)
	m := &w.locks[h.Sum32()%uint32(len(w.locks))]
	m.Lock()
	return m.Unlock
}

// EnsureUserDirs creates Local/<username>/ when missing, owned by the
// sandbox user.
func (w *Workspace) EnsureUserDirs(username string) error {
	if !userRe.MatchString(username) {
		return fmt.Errorf("workspace: %q is not a user name", username)
	}
	return w.mkdirAll(RootLocal + "/" + username)
}

// mkdirAll makes rel and its missing parents; existing folders are fine.
// The callers only need the folder to exist, not a handle on it.
func (w *Workspace) mkdirAll(rel string) error {
	d, err := w.tree.MkdirAll(rel, 0o755)
	if err != nil {
		return err
	}
	return d.Close()
}

// isText reports whether b is worth a revision: UTF-8 without NUL bytes.
func isText(b []byte) bool {
	return utf8.Valid(b) && !strings.ContainsRune(string(b), 0)
}

// audit records an action; a failure is logged, never shown to the user
// whose action already happened.
func (w *Workspace) audit(ctx context.Context, u auth.User, action string, p Path, details map[string]any) {
	if err := w.opts.DB.Audit(ctx, u.Username, action, p.String(), details); err != nil {
		w.opts.Logger.Error("workspace: audit failed", "action", action, "path", p.String(), "error", err)
	}
}

// auditWrite records writes outside the user's own Local folder.
func (w *Workspace) auditWrite(ctx context.Context, u auth.User, action string, p Path, details map[string]any) {
	if p.Seg(0) == RootLocal && p.Seg(1) == u.Username {
		return
	}
	w.audit(ctx, u, action, p, details)
}

// auditStaffRead records a professor, admin or teaching assistant looking into a student's
// Local folder.
func (w *Workspace) auditStaffRead(ctx context.Context, u auth.User, action string, p Path) {
	if u.Teaches() && p.Seg(0) == RootLocal && p.Depth() >= 2 && p.Seg(1) != u.Username {
		w.audit(ctx, u, action, p, nil)
	}
}

// record updates the metadata of a file just written by u.
func (w *Workspace) record(ctx context.Context, p Path, wr fstree.Written, by string) {
	m := store.FileMeta{Path: p.String(), Parent: p.Parent().String(), Owner: p.Owner(),
		Size: wr.Size, Hash: wr.Hash, Modified: w.now(), UpdatedBy: by}
	if fi, err := w.tree.Lstat(p.String()); err == nil {
		m.Modified = fi.ModTime()
	}
	if err := w.opts.DB.UpsertFile(ctx, m); err != nil {
		w.opts.Logger.Error("workspace: recording file metadata", "path", m.Path, "error", err)
	}
}

// addRevision keeps a version of a text file.
func (w *Workspace) addRevision(ctx context.Context, p Path, content []byte, hash, author string) error {
	rev := store.Revision{Path: p.String(), Size: int64(len(content)), Hash: hash, Author: author, Created: w.now()}
	if len(content) <= RevisionContentBytes {
		rev.Content = content
	}
	_, err := w.opts.DB.AddRevision(ctx, rev, w.opts.RevisionsKept)
	return err
}

// keepOverwritten makes sure the version about to be overwritten is in the
// history: if a sandbox (or anything but the API) changed the file since
// the last save, that version (its content old, hash h) is kept as a
// revision by "(disk)". Large, empty and binary files are not kept.
func (w *Workspace) keepOverwritten(ctx context.Context, p Path, old []byte, h string) error {
	if len(old) == 0 || len(old) > RevisionContentBytes || !isText(old) {
		return nil
	}
	last, err := w.opts.DB.LatestRevisionHash(ctx, p.String())
	if err != nil || last == h {
		return err
	}
	return w.addRevision(ctx, p, old, h, "(disk)")
}

// current reads the file at p as it is now: its content when small enough
// to keep as a revision, its hash and size. A missing file is all zero.
func (w *Workspace) current(p Path) (content []byte, hash string, size int64, err error) {
	f, fi, err := w.tree.OpenFile(p.String())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", 0, nil
	}
	if err != nil {
		return nil, "", 0, err
	}
	defer f.Close()
	if fi.Size() > RevisionContentBytes {
		h, err := fstree.HashReader(f)
		return nil, h, fi.Size(), err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, "", 0, err
	}
	return b, fstree.HashOf(b), int64(len(b)), nil
}

// quotaCheck refuses a student's write that would take them past the
// quota; grow is the net change in bytes. It counts what is on disk, so
// what their programs wrote behind the API counts too.
func (w *Workspace) quotaCheck(u auth.User, grow int64) error {
	if u.IsStaff() || grow <= 0 {
		return nil
	}
	used, err := w.DiskUsage(u.Username)
	if err != nil {
		return err
	}
	if used+grow > w.opts.QuotaBytes {
		return &QuotaError{Used: used, Limit: w.opts.QuotaBytes}
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// sizeOf is the bytes of regular files at or under rel.
func (w *Workspace) sizeOf(rel string) (int64, error) {
	fi, err := w.tree.Lstat(rel)
	if err != nil {
		return 0, err
	}
	if !fi.IsDir() {
		if fi.Mode().IsRegular() {
			return fi.Size(), nil
		}
		return 0, nil
	}
	var total int64
	err = w.tree.Walk(rel, func(_ string, fi fs.FileInfo) error {
		if fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// DiskUsage is the bytes of a student's files on disk: their Local folder,
// their submission folders and their trash, as the sandbox wrote them
// (sizes of regular files; links and folders count nothing).
func (w *Workspace) DiskUsage(user string) (int64, error) {
	if !userRe.MatchString(user) {
		return 0, fmt.Errorf("workspace: %q is not a user name", user)
	}
	rels := []string{RootLocal + "/" + user, trashDir + "/" + user}
	for _, item := range w.folders(RootSubmissions) {
		rels = append(rels, RootSubmissions+"/"+item+"/"+user)
	}
	var total int64
	for _, rel := range rels {
		n, err := w.sizeOf(rel)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return total, err
		}
		total += n
	}
	return total, nil
}

// OverQuota reports whether a student's files on disk take more than the
// quota. When they do, the metadata is brought in line, so the listings and
// the file API (which refuses to grow past the quota) see it. Staff have no
// quota.
func (w *Workspace) OverQuota(ctx context.Context, u auth.User) bool {
	if u.IsStaff() {
		return false
	}
	used, err := w.DiskUsage(u.Username)
	if err != nil {
		w.opts.Logger.Warn("workspace: measuring disk usage", "user", u.Username, "error", err)
		return false
	}
	if used <= w.opts.QuotaBytes {
		return false
	}
	for _, rel := range []string{RootLocal + "/" + u.Username} {
		if err := w.syncTree(ctx, MustPath(rel)); err != nil {
			w.opts.Logger.Warn("workspace: reconciling an over-quota folder", "path", rel, "error", err)
		}
	}
	for _, item := range w.folders(RootSubmissions) {
		if p, err := ParsePath(RootSubmissions + "/" + item + "/" + u.Username); err == nil {
			_ = w.syncTree(ctx, p)
		}
	}
	return true
}

// TrimToQuota is the quota applied a moment late: a student's program that
// wrote past the quota (it is stopped as soon as that is seen) keeps only
// what fits, as if the disk had refused the rest. Files written since
// since are taken back, newest first: removed when all of it is over,
// else cut to what fits. Files from before are never touched. It returns
// the tree paths it removed or cut.
func (w *Workspace) TrimToQuota(ctx context.Context, u auth.User, since time.Time) ([]string, error) {
	if u.IsStaff() {
		return nil, nil
	}
	used, err := w.DiskUsage(u.Username)
	if err != nil || used <= w.opts.QuotaBytes {
		return nil, err
	}
	type written struct {
		rel  string
		size int64
		mod  time.Time
	}
	var recent []written
	rels := []string{RootLocal + "/" + u.Username}
	for _, item := range w.folders(RootSubmissions) {
		rels = append(rels, RootSubmissions+"/"+item+"/"+u.Username)
	}
	for _, rel := range rels {
		err := w.tree.Walk(rel, func(p string, fi fs.FileInfo) error {
			if fi.Mode().IsRegular() && !fi.ModTime().Before(since) {
				recent = append(recent, written{p, fi.Size(), fi.ModTime()})
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	sort.Slice(recent, func(i, j int) bool { return recent[i].mod.After(recent[j].mod) })
	excess := used - w.opts.QuotaBytes
	var trimmed []string
	for _, f := range recent {
		if excess <= 0 {
			break
		}
		d, name, err := w.tree.ParentDir(f.rel)
		if err != nil {
			continue
		}
		if f.size <= excess {
			err = d.Remove(name)
			excess -= f.size
		} else {
			err = truncateIn(d, name, f.size-excess)
			excess = 0
		}
		d.Close()
		if err != nil {
			w.opts.Logger.Warn("workspace: taking back what went over the quota", "path", f.rel, "error", err)
			continue
		}
		trimmed = append(trimmed, f.rel)
	}
	for _, rel := range rels {
		if p, err := ParsePath(rel); err == nil {
			_ = w.syncTree(ctx, p)
		}
	}
	w.audit(ctx, u, "file.quota_trim", MustPath(RootLocal+"/"+u.Username), map[string]any{"files": trimmed, "over_by": used - w.opts.QuotaBytes})
	return trimmed, nil
}

// truncateIn cuts the regular file name in d to size, never through a link.
func truncateIn(d *os.Root, name string, size int64) error {
	f, err := d.OpenFile(name, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fstree.ErrNotRegular
	}
	return f.Truncate(size)
}
