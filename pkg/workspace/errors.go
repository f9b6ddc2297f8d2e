package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/pythonide/pyide/pkg/fstree"
)

// Kinds of failure. Every error of the service wraps one of them (or
// ErrBadPath), so a caller can tell them apart with errors.Is and the HTTP
// layer can pick a status; the error's text is the message for the user.
var (
	ErrNotFound  = errors.New("not found")     // the path does not exist, or the user may not see it
	ErrForbidden = errors.New("not allowed")   // the user sees it but may not do this
	ErrInvalid   = errors.New("invalid")       // the request cannot be done as asked
	ErrConflict  = errors.New("conflict")      // something is in the way, or changed
	ErrStale     = errors.New("stale version") // If-Match did not match; see StaleError
	ErrTooLarge  = errors.New("too large")     // a file, an upload or the quota
	ErrNoSpace   = errors.New("disk full")     // the server's disk is full
)

// Error is a failure with the words the user sees.
type Error struct {
	Kind error  // one of the kinds above
	Msg  string // plain words: what happened and what to do
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func fail(kind error, format string, a ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, a...)}
}

// StaleError: a save with a version that is no longer the file's.
type StaleError struct {
	Current string // the version on disk now; "" when the file is gone
}

func (e *StaleError) Error() string {
	if e.Current == "" {
		return "the file was deleted since you opened it"
	}
	return "the file changed since you opened it; reload it or save under another name"
}
func (e *StaleError) Unwrap() error { return ErrStale }

// QuotaError: a student's write would take them past their quota.
type QuotaError struct{ Used, Limit int64 }

func (e *QuotaError) Error() string {
	return fmt.Sprintf("this would exceed your storage quota: %s used of %s; delete files and empty your trash (it counts until it is emptied or expires)",
		humanBytes(e.Used), humanBytes(e.Limit))
}
func (e *QuotaError) Unwrap() error { return ErrTooLarge }

func notFound(p string) error { return fail(ErrNotFound, "no such file or folder: %s", p) }

func tooLarge(name string, limit int64) error {
	return fail(ErrTooLarge, "%s is larger than the %s limit per file", name, humanBytes(limit))
}

// managedError refuses a change to a folder the server keeps.
func managedError(p Path) error {
	return fail(ErrForbidden, "%s is kept by the server (it is mounted into sandboxes): it cannot be created, moved, renamed, deleted or replaced here", p)
}

// fsError words an error of the tree about p; errors that are already the
// service's pass through.
func fsError(err error, p Path) error {
	var e *Error
	var se *StaleError
	var qe *QuotaError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e), errors.As(err, &se), errors.As(err, &qe), errors.Is(err, ErrBadPath):
		return err
	case errors.Is(err, fstree.ErrSymlink):
		return fail(ErrForbidden, "%s goes through a symbolic link, which the IDE does not follow", p)
	case errors.Is(err, fs.ErrNotExist):
		return notFound(p.String())
	case errors.Is(err, fs.ErrExist), errors.Is(err, syscall.ENOTEMPTY):
		return fail(ErrConflict, "%s already exists", p)
	case errors.Is(err, fstree.ErrNotRegular), errors.Is(err, syscall.EISDIR):
		return fail(ErrInvalid, "%s is not a regular file", p)
	case errors.Is(err, syscall.ENOTDIR):
		return fail(ErrInvalid, "%s: a part of the path is not a folder", p)
	case errors.Is(err, syscall.EINVAL):
		return fail(ErrInvalid, "cannot move %s into itself", p)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The write went to a temporary file; the old version is intact.
		return fail(ErrNoSpace, "the server's disk is full: %s was not saved (the previous version is unchanged); tell your professor", p)
	}
	return err
}
