package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/workspace"
)

// Target is what a Run gives a sandbox: the script's path inside it ("" for
// an empty REPL) and the folders it mounts, each approved by the policy.
type Target struct {
	File   string
	Mounts []sandbox.Mount
	// Grading: staff run a student's file in a read-only grading sandbox.
	Grading bool
	// Folders maps each mount's path inside the sandbox to its tree path
	// ("/home/student" → "Local/alice"), so the browser can name the files
	// of a traceback as the tree does.
	Folders map[string]string
}

// Files is what the hub needs of the workspace (see WorkspaceFiles).
type Files interface {
	// Target decides, as of now, what u's sandbox runs for the tree path
	// ("" for an empty REPL) and which folders it gets. Its error is shown
	// to the user.
	Target(u auth.User, treePath string) (Target, error)
	// Mounts lists the folders u's own sandbox gets now: a spare's, and
	// what a running sandbox is checked against when the rules change.
	Mounts(u auth.User) ([]sandbox.Mount, error)
	// TrimToQuota takes back what u's programs wrote since since beyond
	// u's disk quota (after a sandbox was stopped for it) and names the
	// files it removed or cut.
	TrimToQuota(u auth.User, since time.Time) ([]string, error)
}

// WorkspaceFiles is Files over the course tree: the workspace's permission
// policy (with its course state and clock) decides what a user's sandbox
// sees and may run.
type WorkspaceFiles struct {
	W *workspace.Workspace
}

// Target implements Files.
func (f WorkspaceFiles) Target(u auth.User, treePath string) (Target, error) {
	t, err := f.W.RunTarget(u, treePath)
	if err != nil {
		return Target{}, err
	}
	folders := make(map[string]string, len(t.Mounts))
	for _, m := range t.Mounts {
		folders[m.Target] = m.TreePath()
	}
	return Target{File: t.File, Mounts: sandboxMounts(t.Mounts), Grading: t.Grading, Folders: folders}, nil
}

// TrimToQuota implements Files.
func (f WorkspaceFiles) TrimToQuota(u auth.User, since time.Time) ([]string, error) {
	return f.W.TrimToQuota(context.Background(), u, since)
}

// Mounts implements Files.
func (f WorkspaceFiles) Mounts(u auth.User) ([]sandbox.Mount, error) {
	ms, err := f.W.Mounts(u)
	return sandboxMounts(ms), err
}

func sandboxMounts(ms []workspace.Mount) []sandbox.Mount {
	out := make([]sandbox.Mount, len(ms))
	for i, m := range ms {
		out[i] = sandbox.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Dev: m.Dev, Ino: m.Ino}
	}
	return out
}

// forUser is what the user is told of a failed Target: the workspace's own
// words, or, for anything else (a host path, an errno), plain words while
// the details go to the log (internal is true).
func forUser(err error) (msg string, internal bool) {
	var we *workspace.Error
	if errors.As(err, &we) || errors.Is(err, workspace.ErrBadPath) {
		return err.Error(), false
	}
	return "your files could not be prepared for running; try again, and tell your professor if it keeps happening", true
}

// covered reports whether every folder of had is still granted by now, with
// at least the same rights: the same folder (device and inode) at the same
// place, and writable only if it was.
func covered(had, now []sandbox.Mount) bool {
	for _, h := range had {
		ok := false
		for _, n := range now {
			if n.Source == h.Source && n.Target == h.Target && n.Dev == h.Dev && n.Ino == h.Ino && (h.ReadOnly || !n.ReadOnly) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// ReadFile implements SharedFiles.
func (f WorkspaceFiles) ReadFile(ctx context.Context, u auth.User, treePath string) ([]byte, string, error) {
	file, err := f.W.Open(ctx, u, treePath)
	if err != nil {
		return nil, "", err
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxSharedFile+1))
	if err != nil {
		return nil, "", err
	}
	if len(b) > maxSharedFile {
		return nil, "", fmt.Errorf("%s is larger than %d KB", treePath, maxSharedFile>>10)
	}
	return b, file.Version, nil
}

// CopyToLocal implements SharedFiles: the copy is made through the
// workspace (created first, so nothing of the user's is overwritten).
func (f WorkspaceFiles) CopyToLocal(ctx context.Context, to auth.User, name string, content []byte) (string, error) {
	if err := workspace.CheckName(name); err != nil {
		return "", err
	}
	if err := f.W.EnsureUserDirs(to.Username); err != nil {
		return "", err
	}
	stem, ext := name, ""
	if i := strings.LastIndex(name, "."); i > 0 {
		stem, ext = name[:i], name[i:]
	}
	for n := 1; n <= 50; n++ {
		try := name
		if n > 1 {
			try = fmt.Sprintf("%s-%d%s", stem, n, ext)
		}
		p := workspace.RootLocal + "/" + to.Username + "/" + try
		err := f.W.Create(ctx, to, p, false)
		if errors.Is(err, workspace.ErrConflict) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, err := f.W.Save(ctx, to, p, content, ""); err != nil {
			return "", err
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: too many copies of %s in your folder; delete some first", workspace.ErrConflict, name)
}

// maxSharedFile bounds a broadcast's file as followers see it.
const maxSharedFile = 1 << 20
