package workspace

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
)

// Level is what a user may do with a path.
type Level int

// Levels, ordered: a higher level includes the lower ones.
const (
	None Level = iota
	Read
	Write
)

func (l Level) String() string {
	switch l {
	case Read:
		return "read"
	case Write:
		return "write"
	default:
		return "none"
	}
}

// The roots of the tree. Paths are case-sensitive: "local" is not a root.
const (
	RootLocal       = "Local"
	RootLectures    = "Lecture Notes"
	RootAssignments = "Assignments"
	RootTests       = "Tests"
	RootSubmissions = "Submissions"
)

// Roots lists the roots in the order the IDE shows them.
var Roots = []string{RootLocal, RootLectures, RootAssignments, RootTests, RootSubmissions}

// Limits on a tree path, in bytes.
const (
	MaxPathBytes    = 1024
	MaxSegmentBytes = 255
)

// userRe is the username shape of the users table; a Local/<user> or
// Submissions/<x>/<user> folder must have it, so that no look-alike of a
// username (fullwidth letters, a trailing zero-width space) can name one.
var userRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ErrBadPath is wrapped by every error of ParsePath.
var ErrBadPath = errors.New("invalid path")

// Path is a checked tree path: "" (the list of roots) or a root followed by
// zero or more names. Its zero value is the list of roots.
type Path struct {
	segs []string
}

// ParsePath checks a tree path as a client sent it. It rejects rather than
// repairs: "..", ".", absolute paths, backslashes, NUL and other control or
// invisible format characters, empty segments (so also a trailing slash),
// overlong paths, names with leading or trailing spaces, names that are not
// valid UTF-8 or not in Unicode NFC, unknown roots, and user folders that are
// not valid usernames. Rejecting non-NFC input (instead of normalising it)
// means every accepted path has exactly one spelling, so two different
// strings never reach the same file.
func ParsePath(s string) (Path, error) {
	if s == "" {
		return Path{}, nil
	}
	if len(s) > MaxPathBytes {
		return Path{}, fmt.Errorf("%w: longer than %d bytes", ErrBadPath, MaxPathBytes)
	}
	if !utf8.ValidString(s) {
		return Path{}, fmt.Errorf("%w: not valid UTF-8", ErrBadPath)
	}
	if !norm.NFC.IsNormalString(s) {
		return Path{}, fmt.Errorf("%w: not in Unicode normal form C", ErrBadPath)
	}
	if strings.HasPrefix(s, "/") {
		return Path{}, fmt.Errorf("%w: absolute paths are not allowed", ErrBadPath)
	}
	segs := strings.Split(s, "/")
	for _, seg := range segs {
		if err := checkName(seg); err != nil {
			return Path{}, err
		}
	}
	p := Path{segs: segs}
	if !isRoot(segs[0]) {
		return Path{}, fmt.Errorf("%w: %q is not a folder of the course tree", ErrBadPath, segs[0])
	}
	if u, ok := p.userSegment(); ok && !userRe.MatchString(u) {
		return Path{}, fmt.Errorf("%w: %q is not a user name", ErrBadPath, u)
	}
	return p, nil
}

// CheckName checks one file or folder name (what a user types, or an
// uploaded file's name) with the same rules as a segment of ParsePath.
func CheckName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not valid UTF-8", ErrBadPath)
	}
	if !norm.NFC.IsNormalString(name) {
		return fmt.Errorf("%w: not in Unicode normal form C", ErrBadPath)
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("%w: a name cannot contain /", ErrBadPath)
	}
	return checkName(name)
}

func checkName(seg string) error {
	switch {
	case seg == "":
		return fmt.Errorf("%w: empty name (double or trailing slash)", ErrBadPath)
	case seg == "." || seg == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrBadPath, seg)
	case len(seg) > MaxSegmentBytes:
		return fmt.Errorf("%w: a name is longer than %d bytes", ErrBadPath, MaxSegmentBytes)
	case strings.HasPrefix(seg, fstree.TempPrefix):
		// A half-written file of an atomic write is never addressable.
		return fmt.Errorf("%w: names starting with %s are reserved", ErrBadPath, fstree.TempPrefix)
	}
	for _, r := range seg {
		switch {
		case r == '\\':
			return fmt.Errorf("%w: backslashes are not allowed", ErrBadPath)
		case r == 0, unicode.Is(unicode.Cc, r):
			return fmt.Errorf("%w: control characters are not allowed", ErrBadPath)
		case unicode.Is(unicode.Cf, r), r == utf8.RuneError:
			// Bidi overrides and zero-width characters make names that
			// look like other names.
			return fmt.Errorf("%w: invisible formatting characters are not allowed", ErrBadPath)
		}
	}
	first, _ := utf8.DecodeRuneInString(seg)
	last, _ := utf8.DecodeLastRuneInString(seg)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return fmt.Errorf("%w: a name cannot start or end with a space", ErrBadPath)
	}
	return nil
}

func isRoot(s string) bool {
	for _, r := range Roots {
		if s == r {
			return true
		}
	}
	return false
}

// MustPath parses s and panics on error; for constants and tests.
func MustPath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String is the tree path.
func (p Path) String() string { return strings.Join(p.segs, "/") }

// IsTop reports whether p is the list of roots.
func (p Path) IsTop() bool { return len(p.segs) == 0 }

// Depth is the number of segments.
func (p Path) Depth() int { return len(p.segs) }

// Seg returns segment i, or "".
func (p Path) Seg(i int) string {
	if i < 0 || i >= len(p.segs) {
		return ""
	}
	return p.segs[i]
}

// Name is the last segment.
func (p Path) Name() string { return p.Seg(len(p.segs) - 1) }

// Parent is p without its last segment; the parent of a root is the top.
func (p Path) Parent() Path {
	if len(p.segs) == 0 {
		return p
	}
	return Path{segs: p.segs[:len(p.segs)-1]}
}

// Child appends one name, already checked with CheckName.
func (p Path) Child(name string) Path {
	segs := make([]string, len(p.segs), len(p.segs)+1)
	copy(segs, p.segs)
	return Path{segs: append(segs, name)}
}

// Within reports whether p is base or lies under it.
func (p Path) Within(base Path) bool {
	if len(p.segs) < len(base.segs) {
		return false
	}
	for i, s := range base.segs {
		if p.segs[i] != s {
			return false
		}
	}
	return true
}

// userSegment is the user a path belongs to: Local/<u>/… and
// Submissions/<x>/<u>/….
func (p Path) userSegment() (string, bool) {
	switch {
	case p.Seg(0) == RootLocal && p.Depth() >= 2:
		return p.Seg(1), true
	case p.Seg(0) == RootSubmissions && p.Depth() >= 3:
		return p.Seg(2), true
	}
	return "", false
}

// Owner is the user whose space p is in ("" for course material); quota is
// charged to it.
func (p Path) Owner() string {
	u, _ := p.userSegment()
	return u
}

// Managed reports whether p is a folder the server creates and keeps: the
// list of roots, the roots, and the folders directly in a folders-only
// folder (Local/<user>, Assignments/<slug>, Tests/<slug>,
// Submissions/<item>, Submissions/<item>/<user>). Every mount source of a
// sandbox is one of them, so no API creates, moves, renames, deletes or
// restores one, or anything onto one: the name a container is created
// with must lead to the folder the policy approved.
func (p Path) Managed() bool {
	return p.Depth() <= 1 || p.Parent().FoldersOnly()
}

// FoldersOnly reports whether p may only hold folders: the roots other than
// Lecture Notes hold one folder per user, assignment or test, and a
// Submissions/<x> folder holds one folder per user.
func (p Path) FoldersOnly() bool {
	switch p.Seg(0) {
	case RootLocal, RootAssignments, RootTests:
		return p.Depth() == 1
	case RootSubmissions:
		return p.Depth() <= 2
	}
	return p.IsTop()
}

// CourseState is what the policy needs to know about the course; the course
// package implements it. Every method must be safe for concurrent use.
type CourseState interface {
	// AssignmentPublished reports whether students may see Assignments/<slug>.
	AssignmentPublished(slug string, now time.Time) bool
	// ItemPublished reports whether students may know of an item (an
	// assignment or a test) at all: a draft, or a folder no item owns,
	// must look exactly like a name that does not exist.
	ItemPublished(slug string, now time.Time) bool
	// TestOpen reports whether the test's window is open for username.
	TestOpen(slug, username string, now time.Time) bool
	// SubmissionOpen reports whether username may still change
	// Submissions/<item>/<username>.
	SubmissionOpen(item, username string, now time.Time) bool
	// ExamRestriction reports whether a student is inside a test that
	// restricts the workspace (only the test's material and their own
	// submission folder for it are visible) or the empty REPL; test is
	// "" when none applies.
	ExamRestriction(username string, now time.Time) (test string, restrictWorkspace, restrictREPL bool)
}

// StaticCourse is a CourseState from fixed sets, for tools and tests: every
// assignment is published unless listed in Unpublished, no test is open
// unless listed in OpenTests, every submission is open unless listed in
// Locked, and a student is restricted only as Exams says.
type StaticCourse struct {
	Unpublished map[string]bool
	OpenTests   map[string]bool
	Locked      map[string]bool
	Exams       map[string]Exam // by username
}

// Exam is a restriction of StaticCourse.
type Exam struct {
	Test            string
	Workspace, REPL bool
}

// AssignmentPublished implements CourseState.
func (s StaticCourse) AssignmentPublished(slug string, _ time.Time) bool { return !s.Unpublished[slug] }

// ItemPublished implements CourseState.
func (s StaticCourse) ItemPublished(slug string, _ time.Time) bool { return !s.Unpublished[slug] }

// TestOpen implements CourseState.
func (s StaticCourse) TestOpen(slug, _ string, _ time.Time) bool { return s.OpenTests[slug] }

// SubmissionOpen implements CourseState.
func (s StaticCourse) SubmissionOpen(item, _ string, _ time.Time) bool { return !s.Locked[item] }

// ExamRestriction implements CourseState.
func (s StaticCourse) ExamRestriction(username string, _ time.Time) (string, bool, bool) {
	e := s.Exams[username]
	return e.Test, e.Workspace, e.REPL
}

// Access is the permission policy: what u may do with the tree path p. It is
// pure: a path that does not parse gets None.
func Access(u auth.User, p string, st CourseState, now time.Time) Level {
	pp, err := ParsePath(p)
	if err != nil {
		return None
	}
	return AccessPath(u, pp, st, now)
}

// AccessPath is Access for a parsed path.
func AccessPath(u auth.User, p Path, st CourseState, now time.Time) Level {
	if p.IsTop() {
		// Everyone may list the roots; nobody may write there.
		if u.Role == auth.RoleStudent || u.Teaches() {
			return Read
		}
		return None
	}
	if u.IsStaff() {
		return Write
	}
	if u.Role == auth.RoleTA && u.Username != "" {
		// A teaching assistant reads everything a professor can see, to
		// help and to grade, and writes only their own Local folder.
		if p.Seg(0) == RootLocal && p.Seg(1) == u.Username {
			return Write
		}
		return Read
	}
	if u.Role != auth.RoleStudent || u.Username == "" {
		return None // an unknown role fails closed
	}
	if test, restrict, _ := st.ExamRestriction(u.Username, now); restrict {
		// During a restricted test a student sees only that test's
		// material and their own work for it.
		switch {
		case p.Depth() == 1 && (p.Seg(0) == RootTests || p.Seg(0) == RootSubmissions):
			return Read
		case p.Seg(0) == RootTests && p.Seg(1) == test:
		case p.Seg(0) == RootSubmissions && p.Seg(1) == test && (p.Depth() == 2 || p.Seg(2) == u.Username):
		default:
			return None
		}
	}
	switch p.Seg(0) {
	case RootLocal:
		switch {
		case p.Depth() == 1:
			return Read // the listing shows only the student's own folder
		case p.Seg(1) == u.Username:
			return Write
		}
		return None
	case RootLectures:
		return Read
	case RootAssignments:
		if p.Depth() == 1 || st.AssignmentPublished(p.Seg(1), now) {
			return Read
		}
		return None
	case RootTests:
		if p.Depth() == 1 || st.TestOpen(p.Seg(1), u.Username, now) {
			return Read
		}
		return None
	case RootSubmissions:
		switch {
		case p.Depth() == 1:
			return Read // listings show only the items a student may know of
		case !st.ItemPublished(p.Seg(1), now):
			return None
		case p.Depth() == 2:
			return Read // listings show only the student's own folder
		case p.Seg(2) != u.Username:
			return None
		case st.SubmissionOpen(p.Seg(1), u.Username, now):
			return Write
		}
		return Read
	}
	return None
}
