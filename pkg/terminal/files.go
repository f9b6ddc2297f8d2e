package terminal

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/workspace"
)

// WorkspaceFiles is Files over the course tree: the workspace's permission
// policy and mounts decide what a user's sandbox sees and may run.
type WorkspaceFiles struct {
	W      *workspace.Workspace
	Course workspace.CourseState // nil: workspace.StaticCourse{}
	Clock  func() time.Time      // nil: time.Now
}

func (f WorkspaceFiles) state() (workspace.CourseState, time.Time) {
	st := f.Course
	if st == nil {
		st = workspace.StaticCourse{}
	}
	now := time.Now()
	if f.Clock != nil {
		now = f.Clock()
	}
	return st, now
}

// Mounts implements Files.
func (f WorkspaceFiles) Mounts(u auth.User) ([]sandbox.Mount, error) {
	st, now := f.state()
	ms, err := f.W.Mounts(u, st, now)
	if err != nil {
		return nil, err
	}
	out := make([]sandbox.Mount, len(ms))
	for i, m := range ms {
		out[i] = sandbox.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
	}
	return out, nil
}

// errNoFile hides whether a file the user may not read exists.
var errNoFile = errors.New("no such file")

// RunPath implements Files: the policy must grant at least read, and the
// path must name a regular file (not a folder, not a link) in one of the
// user's mounts.
func (f WorkspaceFiles) RunPath(u auth.User, treePath string) (string, error) {
	st, now := f.state()
	if _, err := workspace.ParsePath(treePath); err != nil {
		return "", err
	}
	if workspace.Access(u, treePath, st, now) < workspace.Read {
		return "", errNoFile
	}
	cpath, err := f.W.ContainerPath(u, st, now, treePath)
	if errors.Is(err, workspace.ErrNotMounted) {
		return "", errNoFile
	}
	if err != nil {
		return "", err
	}
	ms, err := f.W.Mounts(u, st, now)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if cpath == m.Target {
			return "", errors.New("is a folder, not a file")
		}
		rel, ok := strings.CutPrefix(cpath, m.Target+"/")
		if !ok {
			continue
		}
		// os.Root never resolves a link out of the mounted folder; a link
		// as the file itself is refused by Lstat's answer below.
		root, err := os.OpenRoot(m.Source)
		if err != nil {
			return "", err
		}
		fi, err := root.Lstat(rel)
		root.Close()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", errNoFile
		case err != nil:
			return "", err
		case fi.IsDir():
			return "", errors.New("is a folder, not a file")
		case !fi.Mode().IsRegular():
			return "", errors.New("is not a regular file")
		}
		return cpath, nil
	}
	return "", errNoFile
}
