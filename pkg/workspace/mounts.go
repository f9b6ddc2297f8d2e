package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
)

// Mount is a folder of the tree bound into a user's sandbox.
type Mount struct {
	Source   string // absolute host path
	Target   string // path inside the container
	ReadOnly bool
	tree     string // the tree path of Source
}

// Where folders appear inside a sandbox.
const (
	HomeTarget        = "/home/student"
	CourseTarget      = "/course"
	SubmissionsTarget = "/submissions"
)

// Mounts lists the folders u's sandbox gets, as of now:
//
//   - Local/<self> → /home/student, read-write (created when missing);
//   - Lecture Notes → /course/Lecture Notes, read-only;
//   - each published assignment → /course/Assignments/<slug>, read-only;
//   - each test open for u → /course/Tests/<slug>, read-only;
//   - each of u's submission folders → /submissions/<x>, read-write while
//     open (created when the item's folder exists and it is open),
//     read-only after.
//
// A professor or admin gets their own Local folder as home, Lecture Notes,
// Assignments and Tests read-write under /course, and Submissions
// read-only at /course/Submissions: grading scripts read student work but
// cannot change it. Nobody gets another user's Local folder.
//
// Folders that are links are never mounted: Docker would follow them.
func (w *Workspace) Mounts(u auth.User, st CourseState, now time.Time) ([]Mount, error) {
	if !userRe.MatchString(u.Username) || (u.Role != auth.RoleStudent && !u.IsStaff()) {
		return nil, fmt.Errorf("workspace: no sandbox folders for %q (%s)", u.Username, u.Role)
	}
	if err := w.EnsureUserDirs(u.Username); err != nil {
		return nil, err
	}
	home := RootLocal + "/" + u.Username
	ms := []Mount{w.mount(home, HomeTarget, false)}
	if u.IsStaff() {
		for _, r := range []string{RootLectures, RootAssignments, RootTests} {
			ms = append(ms, w.mount(r, CourseTarget+"/"+r, false))
		}
		return append(ms, w.mount(RootSubmissions, CourseTarget+"/"+RootSubmissions, true)), nil
	}
	if ex, ok := st.(ExamState); ok {
		if test, restrict, _ := ex.ExamRestriction(u.Username, now); restrict {
			return w.examMounts(u, st, now, test)
		}
	}
	ms = append(ms, w.mount(RootLectures, CourseTarget+"/"+RootLectures, true))
	for _, slug := range w.folders(RootAssignments) {
		if st.AssignmentPublished(slug, now) {
			rel := RootAssignments + "/" + slug
			ms = append(ms, w.mount(rel, CourseTarget+"/"+rel, true))
		}
	}
	for _, slug := range w.folders(RootTests) {
		if st.TestOpen(slug, u.Username, now) {
			rel := RootTests + "/" + slug
			ms = append(ms, w.mount(rel, CourseTarget+"/"+rel, true))
		}
	}
	for _, item := range w.folders(RootSubmissions) {
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
		ms = append(ms, w.mount(rel, SubmissionsTarget+"/"+item, !open))
	}
	return ms, nil
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
	ms := []Mount{w.mount(rel, HomeTarget, !open)}
	if st.TestOpen(test, u.Username, now) {
		t := RootTests + "/" + test
		ms = append(ms, w.mount(t, CourseTarget+"/"+t, true))
	}
	return ms, nil
}

func (w *Workspace) mount(rel, target string, ro bool) Mount {
	return Mount{Source: filepath.Join(w.absData, filepath.FromSlash(rel)), Target: target, ReadOnly: ro, tree: rel}
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

// ErrNotMounted: the tree path is not inside any of the user's mounts.
var ErrNotMounted = errors.New("not available in your sandbox")

// ContainerPath maps a tree path to where it appears inside u's sandbox,
// e.g. Local/alice/hw/a.py → /home/student/hw/a.py.
func (w *Workspace) ContainerPath(u auth.User, st CourseState, now time.Time, treePath string) (string, error) {
	p, err := ParsePath(treePath)
	if err != nil {
		return "", err
	}
	if AccessPath(u, p, st, now) == None {
		return "", ErrNotMounted
	}
	ms, err := w.Mounts(u, st, now)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if p.Within(MustPath(m.tree)) {
			return path.Join(m.Target, strings.TrimPrefix(p.String(), m.tree)), nil
		}
	}
	return "", fmt.Errorf("%s: %w", treePath, ErrNotMounted)
}
