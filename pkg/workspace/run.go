package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
)

// Mount is a folder of the tree bound into a sandbox, as the policy
// approved it.
type Mount struct {
	Source   string // absolute host path
	Target   string // path inside the container
	ReadOnly bool
	// Dev and Ino identify the folder approved, reached through the tree
	// (never through a link): the sandbox checks, just before the engine
	// resolves Source, that the name still leads to it.
	Dev, Ino uint64
	tree     string // the tree path of Source
}

// TreePath is the folder's path as the tree shows it ("Local/alice"): how
// the browser names a file a program reports by its path inside.
func (m Mount) TreePath() string { return m.tree }

// Where folders appear inside a sandbox.
const (
	HomeTarget        = "/home/student"
	CourseTarget      = "/course"
	SubmissionsTarget = "/submissions"
)

// Target is what a Run gives a sandbox.
type Target struct {
	// File is the script's path inside the container; "" opens an empty
	// REPL.
	File   string
	Mounts []Mount
	// Grading: a member of staff runs a student's file. The sandbox has
	// that student's folder read-only as its home, course material
	// read-only, no Tests, no other student, nothing writable: what the
	// student wrote never runs with staff's rights.
	Grading bool
}

// errNoFile hides whether a file the user may not read exists.
var errNoFile = fail(ErrNotFound, "no such file")

// RunTarget decides, as of now, what u's sandbox runs for the tree path
// raw ("" for an empty REPL) and which folders it gets. The path is parsed
// and checked once, the folders are computed once.
func (w *Workspace) RunTarget(u auth.User, raw string) (Target, error) {
	st, now := w.opts.Course, w.now()
	if !userRe.MatchString(u.Username) || (u.Role != auth.RoleStudent && !u.Teaches()) {
		return Target{}, fmt.Errorf("workspace: no sandbox for %q (%s)", u.Username, u.Role)
	}
	if raw == "" {
		if !u.Teaches() {
			if _, _, noREPL := st.ExamRestriction(u.Username, now); noREPL {
				return Target{}, fail(ErrForbidden, "the empty REPL is switched off during this test; run a file instead")
			}
		}
		ms, err := w.mountsFor(u, st, now)
		return Target{Mounts: ms}, err
	}
	p, err := ParsePath(raw)
	if err != nil {
		return Target{}, err
	}
	if AccessPath(u, p, st, now) < Read {
		return Target{}, errNoFile
	}
	if err := w.checkRunnable(p); err != nil {
		return Target{}, err
	}
	if owner := p.Owner(); u.Teaches() && owner != "" && owner != u.Username {
		return w.gradingTarget(p, st, now)
	}
	ms, err := w.mountsFor(u, st, now)
	if err != nil {
		return Target{}, err
	}
	file, ok := containerPath(ms, p)
	if !ok {
		return Target{}, errNoFile
	}
	return Target{File: file, Mounts: ms}, nil
}

// checkRunnable: the path names a regular file, reached without a link.
func (w *Workspace) checkRunnable(p Path) error {
	fi, err := w.tree.Lstat(p.String())
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return errNoFile
	case err != nil:
		return fsError(err, p)
	case fi.IsDir():
		return fail(ErrInvalid, "%s is a folder, not a file", p)
	case !fi.Mode().IsRegular():
		return fail(ErrInvalid, "%s is not a regular file", p)
	}
	return nil
}

func containerPath(ms []Mount, p Path) (string, bool) {
	for _, m := range ms {
		if p.Within(MustPath(m.tree)) {
			return path.Join(m.Target, strings.TrimPrefix(p.String(), m.tree)), true
		}
	}
	return "", false
}

// gradingTarget is the sandbox in which staff run the student's file p:
// the student's folder holding it (Local/<student> or
// Submissions/<item>/<student>) read-only as the home, Lecture Notes and the
// published assignments read-only.
func (w *Workspace) gradingTarget(p Path, st CourseState, now time.Time) (Target, error) {
	home := p.Seg(0) + "/" + p.Seg(1)
	if p.Seg(0) == RootSubmissions {
		home += "/" + p.Seg(2)
	}
	hm, err := w.mount(home, HomeTarget, true)
	if err != nil {
		return Target{}, err
	}
	ms := []Mount{hm}
	course, err := w.courseMounts(st, now)
	if err != nil {
		return Target{}, err
	}
	ms = append(ms, course...)
	file, _ := containerPath(ms, p)
	return Target{File: file, Mounts: ms, Grading: true}, nil
}

// courseMounts is the material every student may read: Lecture Notes and
// each published assignment, read-only under /course.
func (w *Workspace) courseMounts(st CourseState, now time.Time) ([]Mount, error) {
	lm, err := w.mount(RootLectures, CourseTarget+"/"+RootLectures, true)
	if err != nil {
		return nil, err
	}
	ms := []Mount{lm}
	for _, slug := range w.folders(RootAssignments) {
		if st.AssignmentPublished(slug, now) {
			rel := RootAssignments + "/" + slug
			m, err := w.mount(rel, CourseTarget+"/"+rel, true)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
	}
	return ms, nil
}

// Mounts lists the folders u's own sandbox gets now (RunTarget with "").
func (w *Workspace) Mounts(u auth.User) ([]Mount, error) {
	return w.mountsFor(u, w.opts.Course, w.now())
}

// mountsFor lists the folders u's own sandbox gets:
//
//   - Local/<self> → /home/student, read-write (created when missing);
//   - Lecture Notes → /course/Lecture Notes, read-only;
//   - each published assignment → /course/Assignments/<slug>, read-only;
//   - each test open for u → /course/Tests/<slug>, read-only;
//   - each of u's submission folders → /submissions/<x>, read-write while
//     open (created when the item's folder exists and it is open),
//     read-only after.
//
// A professor, admin or teaching assistant gets their own Local folder as home and Lecture
// Notes, Assignments, Tests and Submissions read-only under /course: course
// material is edited through the file API, and nothing a program does in a
// sandbox can change what students are given. Nobody gets another user's
// Local folder.
func (w *Workspace) mountsFor(u auth.User, st CourseState, now time.Time) ([]Mount, error) {
	if !userRe.MatchString(u.Username) || (u.Role != auth.RoleStudent && !u.Teaches()) {
		return nil, fmt.Errorf("workspace: no sandbox folders for %q (%s)", u.Username, u.Role)
	}
	if err := w.EnsureUserDirs(u.Username); err != nil {
		return nil, err
	}
	home, err := w.mount(RootLocal+"/"+u.Username, HomeTarget, false)
	if err != nil {
		return nil, err
	}
	ms := []Mount{home}
	if u.Teaches() {
		for _, r := range []string{RootLectures, RootAssignments, RootTests, RootSubmissions} {
			m, err := w.mount(r, CourseTarget+"/"+r, true)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
		return ms, nil
	}
	if test, restrict, _ := st.ExamRestriction(u.Username, now); restrict {
		ms, err := w.examMounts(u, st, now, test)
		return w.quotaHold(u, ms), err
	}
	course, err := w.courseMounts(st, now)
	if err != nil {
		return nil, err
	}
	ms = append(ms, course...)
	for _, slug := range w.folders(RootTests) {
		if st.TestOpen(slug, u.Username, now) {
			rel := RootTests + "/" + slug
			m, err := w.mount(rel, CourseTarget+"/"+rel, true)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
	}
	for _, item := range w.folders(RootSubmissions) {
		if !st.ItemPublished(item, now) {
			continue
		}
		rel := RootSubmissions + "/" + item + "/" + u.Username
		open := st.SubmissionOpen(item, u.Username, now)
		fi, err := w.tree.Lstat(rel)
		switch {
		case err == nil && fi.IsDir():
		case errors.Is(err, fs.ErrNotExist) && open:
			if err := w.tree.Mkdir(rel); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
		default:
			continue
		}
		m, err := w.mount(rel, SubmissionsTarget+"/"+item, !open)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return w.quotaHold(u, ms), nil
}

// quotaHold makes a student's folders read-only in their sandbox while
// their files take more than the quota, until they delete (and empty the
// trash) to get back under it.
func (w *Workspace) quotaHold(u auth.User, ms []Mount) []Mount {
	if u.IsStaff() || ms == nil {
		return ms
	}
	if used, err := w.DiskUsage(u.Username); err != nil || used <= w.opts.QuotaBytes {
		return ms
	}
	for i := range ms {
		ms[i].ReadOnly = true
	}
	return ms
}

// examMounts is a student's sandbox during a test that restricts the
// workspace: their work for the test is the home folder, the test's
// material is under /course, and nothing else is there.
func (w *Workspace) examMounts(u auth.User, st CourseState, now time.Time, test string) ([]Mount, error) {
	rel := RootSubmissions + "/" + test + "/" + u.Username
	open := st.SubmissionOpen(test, u.Username, now)
	if open {
		if err := w.mkdirAll(rel); err != nil {
			return nil, err
		}
	}
	home, err := w.mount(rel, HomeTarget, !open)
	if err != nil {
		return nil, err
	}
	ms := []Mount{home}
	if st.TestOpen(test, u.Username, now) {
		t := RootTests + "/" + test
		m, err := w.mount(t, CourseTarget+"/"+t, true)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// mount approves the folder rel: it is opened through the tree (a link
// anywhere on the way is refused) and its identity recorded, so the
// sandbox can check, just before the engine resolves the name, that it
// still leads here.
func (w *Workspace) mount(rel, target string, ro bool) (Mount, error) {
	d, err := w.tree.Dir(rel)
	if err != nil {
		return Mount{}, fmt.Errorf("workspace: %s cannot be mounted: %w", rel, err)
	}
	defer d.Close()
	fi, err := d.Stat(".")
	if err != nil {
		return Mount{}, err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Mount{}, fmt.Errorf("workspace: %s: no device and inode", rel)
	}
	return Mount{Source: filepath.Join(w.absData, filepath.FromSlash(rel)), Target: target, ReadOnly: ro,
		Dev: uint64(sys.Dev), Ino: sys.Ino, tree: rel}, nil
}

// folders lists the real (not linked) folders directly in a root whose
// names the API can address.
func (w *Workspace) folders(root string) []string {
	infos, err := w.tree.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []string
	for _, fi := range infos {
		if fi.IsDir() && CheckName(fi.Name()) == nil {
			out = append(out, fi.Name())
		}
	}
	return out
}
