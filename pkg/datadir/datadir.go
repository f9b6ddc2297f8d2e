// Package datadir owns the layout of the data folder (IDE_DATA_PATH) as far
// as the server's own state goes: the embedded database cluster, the admin
// socket, the default backups folder and generated password files all live
// in one private folder, PrivateName, that belongs to the server with mode
// 0700. No sandbox mount and no file API path ever contains it: both only
// address Local, Lecture Notes, Assignments, Tests and Submissions below
// the data folder, and a name starting with a dot is none of those.
//
// Prepare creates that folder (or mends its owner and mode) and moves a data
// folder laid out the old way, with those files at the top, into it. It
// never deletes anything but the old secret key nothing reads and a stale
// socket, and never touches the course's folders.
package datadir

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// PrivateName is the server-private folder inside the data folder.
const PrivateName = ".server"

// Names in the private folder, which were the names at the top of the data
// folder before it existed.
const (
	clusterName = "pgdata"
	socketName  = "pyide.sock"
	backupsName = "backups"
	// oldSecretKey was IDE_SECRET_KEY's file; nothing has read it since.
	oldSecretKey = "secret.key"
)

// Layout names the paths of one data folder.
type Layout struct{ Root string }

// Private is the server-private folder.
func (l Layout) Private() string { return filepath.Join(l.Root, PrivateName) }

// Cluster is the embedded database cluster's folder: in the private folder,
// or where the private folder's link "pgdata" leads when Prepare found that
// the database's system user cannot reach the data folder (a clone under a
// 0700 home; see placeCluster). Only the server writes the private folder,
// so that link is its own.
func (l Layout) Cluster() string {
	in := filepath.Join(l.Private(), clusterName)
	if target, err := os.Readlink(in); err == nil && filepath.IsAbs(target) {
		return target
	}
	return in
}

// AdminSocket is where a running server answers the CLI.
func (l Layout) AdminSocket() string { return filepath.Join(l.Private(), socketName) }

// Backups is the default BACKUP_DIR.
func (l Layout) Backups() string { return filepath.Join(l.Private(), backupsName) }

// DefaultExternalRoot holds the clusters of data folders the database's
// system user cannot reach, one folder each, named after the data folder.
const DefaultExternalRoot = "/var/lib/pyide"

// ServerPrivate reports whether a name at the top of the data folder is the
// server's own, never data: the private folder, and what the old layout
// kept at the top (should one still be there, a backup must not carry it).
func ServerPrivate(name string) bool {
	switch name {
	case PrivateName, clusterName, socketName, backupsName, oldSecretKey:
		return true
	}
	return isPasswordFile(name)
}

// isPasswordFile matches the files `pyide user import` once wrote generated
// passwords to, at the top of the data folder.
func isPasswordFile(name string) bool {
	return strings.HasPrefix(name, "passwords-") && (strings.HasSuffix(name, ".csv") || strings.HasSuffix(name, ".txt"))
}

// Options say who may reach the private folder and how to move an old
// layout.
type Options struct {
	// ClusterUser is set when the server runs as root and the embedded
	// database runs as this system user (see pgcluster): its group may
	// pass through the private folder (mode 0710) to the cluster's own
	// folder. Nil: the folder is the server's alone (0700).
	ClusterUser *user.User
	// SandboxUID is the student's uid (and gid) inside sandboxes: the
	// cluster's group must not be theirs.
	SandboxUID int
	// BackupDir is the configured BACKUP_DIR: an old DATA/backups is moved
	// into the private folder unless it is the folder chosen.
	BackupDir string
	// StopCluster stops a database cluster still running in dir (left by a
	// killed server), so that it can be moved. Nil: none is expected.
	StopCluster func(dir string) error
	// ExternalRoot is where the cluster goes when ClusterUser cannot reach
	// the data folder; default DefaultExternalRoot.
	ExternalRoot string
	Logger       *slog.Logger
}

// Prepare makes the data folder and its private folder, mends the private
// folder's owner and mode, and moves an old layout's files into it.
func Prepare(root string, opts Options) (Layout, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := Layout{Root: root}
	// Readable, so that a cluster running as another user can pass.
	if err := os.MkdirAll(root, 0o755); err != nil {
		return l, fmt.Errorf("data folder: %w", err)
	}
	if err := l.preparePrivate(opts); err != nil {
		return l, err
	}
	if err := l.upgrade(opts); err != nil {
		return l, err
	}
	return l, l.placeCluster(opts)
}

// placeCluster makes the cluster's folder outside the data folder when the
// database's system user could not reach it inside (a clone under root's
// 0700 home): the home's mode is not ours to change.
func (l Layout) placeCluster(opts Options) error {
	u := opts.ClusterUser
	in := filepath.Join(l.Private(), clusterName)
	if u == nil {
		return nil
	}
	if _, err := os.Lstat(in); err == nil {
		return nil // a cluster lives here already, or the link to it
	}
	blocked := unreachable(l.Private(), u)
	if blocked == "" {
		return nil
	}
	abs, err := filepath.Abs(l.Root)
	if err != nil {
		return err
	}
	root := opts.ExternalRoot
	if root == "" {
		root = DefaultExternalRoot
	}
	sum := sha256.Sum256([]byte(abs))
	ext := filepath.Join(root, "db-"+hex.EncodeToString(sum[:6]), clusterName)
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return fmt.Errorf("the embedded database's user %s: group %q: %w", u.Username, u.Gid, err)
	}
	parent := filepath.Dir(ext)
	if err := os.MkdirAll(filepath.Dir(parent), 0o755); err != nil {
		return fmt.Errorf("a folder for the embedded database: %w", err)
	}
	// Like the private folder: the server's, the database's group may pass.
	if err := os.Mkdir(parent, 0o710); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("a folder for the embedded database: %w", err)
	}
	if err := os.Lchown(parent, os.Geteuid(), gid); err != nil {
		return fmt.Errorf("a folder for the embedded database: %w", err)
	}
	if err := os.Chmod(parent, 0o710); err != nil {
		return err
	}
	if err := os.Mkdir(ext, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("a folder for the embedded database: %w", err)
	}
	if err := os.Symlink(ext, in); err != nil {
		return fmt.Errorf("recording where the embedded database is: %w", err)
	}
	opts.Logger.Info("the embedded database's user cannot enter the data folder's parents, so its cluster is kept outside the data folder; the data folder's parents were left as they are",
		"user", u.Username, "blocked_at", blocked, "cluster", ext)
	return nil
}

// unreachable names the first folder on the way to dir that u may not pass
// through, or "" when u reaches dir. Supplementary groups are not counted,
// as the database's system user has none worth counting on.
func unreachable(dir string, u *user.User) string {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	var chain []string
	for p := abs; ; p = filepath.Dir(p) {
		chain = append(chain, p)
		if p == "/" {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		st, err := os.Stat(chain[i])
		if err != nil {
			return chain[i]
		}
		sys := st.Sys().(*syscall.Stat_t)
		mode := st.Mode().Perm()
		switch {
		case int(sys.Uid) == uid:
			if mode&0o100 == 0 {
				return chain[i]
			}
		case int(sys.Gid) == gid:
			if mode&0o010 == 0 {
				return chain[i]
			}
		case mode&0o001 == 0:
			return chain[i]
		}
	}
	return ""
}

func (l Layout) preparePrivate(opts Options) error {
	p := l.Private()
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("the server's private folder: %w", err)
	}
	st, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("the server's private folder: %w", err)
	}
	if !st.IsDir() {
		// A symlink could lead anywhere a sandbox reaches.
		return fmt.Errorf("%s is not a folder (%v); it must be the server's private folder: move it away and start again", p, st.Mode().Type())
	}
	sys := st.Sys().(*syscall.Stat_t)
	euid := os.Geteuid()
	if int(sys.Uid) != euid {
		if euid == 0 {
			// Root running a command on a server user's folder: it may
			// enter, and must not take the folder from that user.
			return nil
		}
		// With CAP_CHOWN a dedicated server user takes over a folder
		// another account made; without it the operator must.
		if err := os.Lchown(p, euid, -1); err != nil {
			return fmt.Errorf("%s belongs to uid %d, but the server runs as uid %d: give it to the server (chown -R %d %s)", p, sys.Uid, euid, euid, p)
		}
	}
	mode := os.FileMode(0o700)
	if u := opts.ClusterUser; u != nil {
		gid, err := strconv.Atoi(u.Gid)
		if err != nil {
			return fmt.Errorf("the embedded database's user %s: group %q: %w", u.Username, u.Gid, err)
		}
		if gid == opts.SandboxUID {
			return fmt.Errorf("the embedded database's user %s has group %d, the sandboxes' own group (SANDBOX_UID); give it another group, or set DATABASE_URL", u.Username, gid)
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			return fmt.Errorf("the server's private folder: %w", err)
		}
		mode = 0o710
		opts.Logger.Info("the server runs as root and the embedded database as "+u.Username+", whose group may pass through the private folder",
			"private_folder", p, "mode", "0710", "cluster", l.Cluster())
	}
	if st.Mode().Perm() != mode {
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("the server's private folder: %w", err)
		}
	}
	return nil
}

// upgrade moves what the old layout kept at the top of the data folder into
// the private folder, one log line each.
func (l Layout) upgrade(opts Options) error {
	log := opts.Logger
	old := func(name string) string { return filepath.Join(l.Root, name) }
	exists := func(p string) bool {
		_, err := os.Lstat(p)
		return err == nil
	}

	if exists(old(clusterName)) {
		if exists(l.Cluster()) {
			return fmt.Errorf("there is a database cluster both in %s (the old place) and in %s; keep the one that holds the course (the other may be moved away) and start again", old(clusterName), l.Cluster())
		}
		if opts.StopCluster != nil {
			if err := opts.StopCluster(old(clusterName)); err != nil {
				return fmt.Errorf("stopping the embedded database left running in %s, to move it: %w", old(clusterName), err)
			}
		}
		if err := move(old(clusterName), l.Cluster()); err != nil {
			return err
		}
		log.Info("moved the embedded database into the server's private folder", "from", old(clusterName), "to", l.Cluster())
	}

	if exists(old(backupsName)) && filepath.Clean(opts.BackupDir) != old(backupsName) {
		if exists(l.Backups()) {
			return fmt.Errorf("there is a backups folder both in %s (the old place) and in %s; move the old archives by hand and start again", old(backupsName), l.Backups())
		}
		if err := move(old(backupsName), l.Backups()); err != nil {
			return err
		}
		log.Info("moved the backups into the server's private folder", "from", old(backupsName), "to", l.Backups())
	}

	if st, err := os.Lstat(old(socketName)); err == nil && st.Mode().Type() == fs.ModeSocket {
		if err := os.Remove(old(socketName)); err != nil {
			return fmt.Errorf("removing the old admin socket: %w", err)
		}
		log.Info("removed the old admin socket; the server answers the CLI in its private folder now", "path", old(socketName), "new", l.AdminSocket())
	}

	if exists(old(oldSecretKey)) {
		if err := os.Remove(old(oldSecretKey)); err != nil {
			return fmt.Errorf("deleting the old secret key: %w", err)
		}
		log.Info("deleted the old secret key: nothing uses it", "path", old(oldSecretKey))
	}

	entries, err := os.ReadDir(l.Root)
	if err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isPasswordFile(e.Name()) {
			continue
		}
		to := filepath.Join(l.Private(), e.Name())
		if exists(to) {
			return fmt.Errorf("%s is also in the server's private folder; move one of them away and start again", old(e.Name()))
		}
		if err := os.Chmod(old(e.Name()), 0o600); err != nil {
			return err
		}
		if err := move(old(e.Name()), to); err != nil {
			return err
		}
		log.Info("moved generated passwords into the server's private folder, out of every backup; hand them out and delete the file", "from", old(e.Name()), "to", to)
	}
	return nil
}

func move(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("moving %s into the server's private folder: %w", from, err)
	}
	return nil
}
