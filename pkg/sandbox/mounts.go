package sandbox

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount binds a host folder into the container. The caller decides which
// folders a user gets and approves each with Bind; this package refuses
// anything outside the allowed shape, and a folder that is no longer the
// one approved.
type Mount struct {
	Source   string // absolute host path of a folder
	Target   string // under /home/student, /course or /submissions
	ReadOnly bool
	// Dev and Ino identify the folder that was approved. The engine
	// resolves Source by name when it creates and starts the container, so
	// just before both the name must still lead, without a symbolic link
	// in any component, to this very folder.
	Dev, Ino uint64
}

// ErrMountChanged: a mount source is not the folder that was approved (it
// was replaced, or a link now stands somewhere on its path).
var ErrMountChanged = errors.New("sandbox: a folder to mount is not the one approved")

// Bind approves the folder at source for target: it opens it without
// following a link in any component and records its identity. Callers that
// already hold the folder open (and checked it their own way) may fill Dev
// and Ino themselves.
func Bind(source, target string, readOnly bool) (Mount, error) {
	dev, ino, err := identify(source)
	if err != nil {
		return Mount{}, err
	}
	return Mount{Source: source, Target: target, ReadOnly: readOnly, Dev: dev, Ino: ino}, nil
}

// identify opens the folder p one name at a time from /, refusing a link at
// every step, and returns its device and inode.
func identify(p string) (dev, ino uint64, err error) {
	fd, err := openFolder(p)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, 0, fmt.Errorf("mount source %q: %w", p, err)
	}
	var sock unix.Stat_t
	if unix.Fstatat(fd, "docker.sock", &sock, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return 0, 0, fmt.Errorf("mount source %q contains a Docker socket", p)
	}
	return uint64(st.Dev), st.Ino, nil
}

// openFolder opens the folder p (absolute, clean) with O_PATH, one name at
// a time with O_NOFOLLOW|O_DIRECTORY: a symbolic link, or anything that is
// not a folder, anywhere on the path fails.
func openFolder(p string) (int, error) {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return -1, fmt.Errorf("mount source %q must be an absolute clean path", p)
	}
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open("/", flags, 0)
	if err != nil {
		return -1, err
	}
	if p == "/" {
		return fd, nil
	}
	for _, name := range strings.Split(p[1:], "/") {
		next, err := unix.Openat(fd, name, flags, 0)
		if err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				return -1, fmt.Errorf("%w: %q: %s is a symbolic link or not a folder", ErrMountChanged, p, name)
			}
			return -1, fmt.Errorf("mount source %q: %w", p, err)
		}
		unix.Close(fd)
		fd = next
	}
	return fd, nil
}

// realRoot resolves the folder every mount source must lie under, as the
// operator configured it (links in it are theirs, and resolved once here).
func realRoot(root string) (string, error) {
	if root == "" {
		return "", nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("sandbox: MountRoot: %w", err)
	}
	if err := checkRoot(real); err != nil {
		return "", err
	}
	return real, nil
}

// checkRoot is the shape MountRoot must have: a folder of its own, not a
// system folder nor one of the homes' parents.
func checkRoot(root string) error {
	if err := checkSourcePath(root); err != nil {
		return fmt.Errorf("sandbox: MountRoot: %w", err)
	}
	for _, f := range forbiddenRoots {
		if root == f {
			return fmt.Errorf("sandbox: MountRoot %q would make a whole system folder mountable; use a folder of its own (the data folder)", root)
		}
	}
	return nil
}

// checkMount is the whole check of one source, run when a spec is accepted
// and again just before the engine creates and starts a container: the
// path's shape, that it lies strictly under root, and that it still is the
// approved folder, reached without a link.
func checkMount(root string, m Mount) error {
	if err := checkSourcePath(m.Source); err != nil {
		return err
	}
	if root == "" {
		return fmt.Errorf("mount source %q: no MountRoot is configured, so no folder may be mounted", m.Source)
	}
	if m.Source == root || !within(m.Source, root) {
		return fmt.Errorf("mount source %q is not inside %s", m.Source, root)
	}
	if m.Dev == 0 && m.Ino == 0 {
		return fmt.Errorf("mount source %q was never approved (see Bind)", m.Source)
	}
	dev, ino, err := identify(m.Source)
	if err != nil {
		return err
	}
	if dev != m.Dev || ino != m.Ino {
		return fmt.Errorf("%w: %q was replaced after it was approved", ErrMountChanged, m.Source)
	}
	return nil
}

// checkMounts runs checkMount on every mount of a spec.
func checkMounts(root string, ms []Mount) error {
	var errs []error
	for _, m := range ms {
		if err := checkMount(root, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
