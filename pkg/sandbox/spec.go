package sandbox

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Spec describes one REPL session.
type Spec struct {
	User string
	Role string
	// Key identifies the user's tab: one active session per (User, Key).
	Key string
	// MaxSessions is the most sessions the user may have at once, this one
	// included (a session of the same Key it replaces does not count); 0
	// means no cap. Spares do not count.
	MaxSessions int
	// File is the script's path inside the container; "" opens an empty REPL.
	File   string
	Mounts []Mount
}

// Container paths a mount may land in.
var allowedTargets = []string{"/home/student", "/course", "/submissions"}

// Host paths that must never reach a sandbox: the Docker socket lives under
// /run (/var/run), and the rest expose the host itself. (A home folder is
// not among them: a data folder may live in one, as a clone under /root
// does, and every source must lie strictly under MountRoot anyway.)
var forbiddenSources = []string{"/var/run", "/run", "/proc", "/sys", "/dev", "/etc", "/boot", "/var/lib/docker"}

// Folders that may not be MountRoot itself: everything of the machine's
// root, or of root's home, would then be mountable.
var forbiddenRoots = []string{"/", "/root", "/home", "/var", "/var/lib", "/usr", "/srv", "/opt", "/mnt", "/media"}

var userRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// checkSourcePath is the lexical part of the source check, shared with Validate.
func checkSourcePath(src string) error {
	if src == "" || !path.IsAbs(src) || path.Clean(src) != src {
		return fmt.Errorf("mount source %q must be an absolute clean path", src)
	}
	if src == "/" {
		return errors.New("mount source must not be /")
	}
	for _, f := range forbiddenSources {
		if within(src, f) {
			return fmt.Errorf("mount source %q is under the forbidden %s", src, f)
		}
	}
	if strings.Contains(path.Base(src), "docker.sock") {
		return fmt.Errorf("mount source %q is a Docker socket", src)
	}
	return nil
}

func checkTargetPath(dst string) error {
	if dst == "" || !path.IsAbs(dst) || path.Clean(dst) != dst {
		return fmt.Errorf("mount target %q must be an absolute clean path", dst)
	}
	for _, a := range allowedTargets {
		if within(dst, a) {
			return nil
		}
	}
	return fmt.Errorf("mount target %q is outside %v", dst, allowedTargets)
}

// validate checks a spec's shape and that each mount is still the folder
// that was approved, under root.
func (s Spec) validate(root string) error {
	if !userRe.MatchString(s.User) {
		return fmt.Errorf("sandbox: invalid user name %q", s.User)
	}
	targets := map[string]bool{}
	for _, m := range s.Mounts {
		if err := checkTargetPath(m.Target); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := checkMount(root, m); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if targets[m.Target] {
			return fmt.Errorf("sandbox: two mounts on %s", m.Target)
		}
		targets[m.Target] = true
	}
	if s.File != "" {
		if !path.IsAbs(s.File) || path.Clean(s.File) != s.File {
			return fmt.Errorf("sandbox: file %q must be an absolute clean path", s.File)
		}
		if checkTargetPath(s.File) != nil {
			return fmt.Errorf("sandbox: file %q is outside the mounted folders", s.File)
		}
	}
	return nil
}

// writable reports whether any folder is mounted read-write.
func (s Spec) writable() bool {
	for _, m := range s.Mounts {
		if !m.ReadOnly {
			return true
		}
	}
	return false
}

// mountKey identifies a mount set so a spare is only used for the same one.
func (s Spec) mountKey() string {
	ms := slices.Clone(s.Mounts)
	slices.SortFunc(ms, func(a, b Mount) int { return strings.Compare(a.Target, b.Target) })
	var b strings.Builder
	b.WriteString(s.Role)
	for _, m := range ms {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%t\x00%d:%d", m.Source, m.Target, m.ReadOnly, m.Dev, m.Ino)
	}
	return b.String()
}

// containerName is deterministic per session so a retried create finds its
// own earlier attempt.
func containerName(user, id string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, user)
	return "pyide-" + safe + "-" + id
}
