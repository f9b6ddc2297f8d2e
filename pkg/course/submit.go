package course

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/workspace"
)

// source is one file to snapshot: where it is in the data folder and its
// name in the snapshot.
type source struct {
	rel  string
	name string
	size int64
}

// errAlreadyAuto: the student's test was auto-submitted already.
var errAlreadyAuto = errors.New("already auto-submitted")

// snapshot records a submission of srcs by user for item: under a per-student
// lock it runs check (which re-reads the rules and says whether the
// submission is late), numbers it, copies the files into a sealed snapshot
// folder and inserts the row. Nothing is kept if any step fails.
func (s *Service) snapshot(ctx context.Context, item, kind, user string, now time.Time, srcs []source, auto bool,
	check func(tx *store.DB) (late bool, err error)) (store.Submission, error) {
	var out store.Submission
	written := ""
	err := s.opts.DB.WithTx(ctx, func(tx *store.DB) error {
		if err := tx.LockSubmissions(ctx, item, user); err != nil {
			return err
		}
		late, err := check(tx)
		if err != nil {
			return err
		}
		n, err := tx.NextSubmissionN(ctx, item, user)
		if err != nil {
			return err
		}
		dir := path.Join(snapshotsDir, item, user, fmt.Sprintf("%d-%s", n, now.UTC().Format("20060102T150405Z")))
		files, err := s.writeSnapshot(dir, srcs)
		if err != nil {
			return err
		}
		written = dir
		out, err = tx.InsertSubmission(ctx, store.Submission{Item: item, Kind: kind, Username: user, N: n,
			SubmittedAt: now, Late: late, Auto: auto, Files: files, Snapshot: dir})
		return err
	})
	if err != nil && written != "" {
		s.dropSnapshot(written)
	}
	if err == nil && s.opts.OnSubmit != nil {
		s.opts.OnSubmit(out)
	}
	return out, err
}

// OpenSnapshotFile opens one file of a submission's sealed snapshot, for
// the grader; name must be one of sub.Files.
func (s *Service) OpenSnapshotFile(sub store.Submission, name string) (*os.File, fs.FileInfo, error) {
	return s.snaps.open(sub.Snapshot, name)
}

// writeSnapshot copies srcs from the tree into the sealed snapshot dir.
func (s *Service) writeSnapshot(dir string, srcs []source) ([]store.SubmissionFile, error) {
	return s.snaps.write(dir, srcs, s.opts.Files.OpenRegular, s.opts.MaxFileBytes, s.opts.MaxBytes)
}

// dropSnapshot removes a snapshot whose submission was not recorded.
func (s *Service) dropSnapshot(dir string) {
	if err := s.snaps.drop(dir); err != nil {
		s.opts.Logger.Error("course: removing an unrecorded snapshot", "dir", dir, "error", err)
	}
}

// mirror makes Submissions/<item>/<user> hold the files of sub, so the
// student and the professors see the submission in the tree.
func (s *Service) mirror(ctx context.Context, sub store.Submission) error {
	files := make([]workspace.SourceFile, 0, len(sub.Files))
	for _, f := range sub.Files {
		files = append(files, workspace.SourceFile{Name: f.Name, Open: func() (io.ReadCloser, error) {
			r, _, err := s.snaps.open(sub.Snapshot, f.Name)
			return r, err
		}})
	}
	return s.opts.Files.ReplaceSubmission(ctx, sub.Item, sub.Username, files)
}

// chosenSources turns the paths a student chose into the files to submit:
// each must be under their own Local folder and readable by them; a folder
// stands for every regular file under it. Names are relative to the folder
// holding all the chosen paths.
func (s *Service) chosenSources(u auth.User, paths []string, now time.Time) ([]source, error) {
	if len(paths) == 0 {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "choose at least one file to submit")
	}
	if len(paths) > s.opts.MaxFiles {
		return nil, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("at most %d files per submission", s.opts.MaxFiles))
	}
	parsed := make([]workspace.Path, 0, len(paths))
	for _, raw := range paths {
		p, err := workspace.ParsePath(raw)
		if err != nil {
			return nil, echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		if p.Seg(0) != workspace.RootLocal || p.Seg(1) != u.Username || p.Depth() < 3 ||
			workspace.AccessPath(u, p, s, now) < workspace.Read {
			return nil, echo.NewHTTPError(http.StatusBadRequest,
				fmt.Sprintf("%s: you can submit only files of your own folder %s/%s", raw, workspace.RootLocal, u.Username))
		}
		parsed = append(parsed, p)
	}
	base := parsed[0].Parent()
	for _, p := range parsed[1:] {
		for !p.Within(base) {
			base = base.Parent()
		}
	}
	var out []source
	seen := map[string]bool{}
	var total int64
	add := func(rel, name string, size int64) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		total += size
		switch {
		case size > s.opts.MaxFileBytes:
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
				fmt.Sprintf("%s is larger than %d MB", name, s.opts.MaxFileBytes>>20))
		case total > s.opts.MaxBytes:
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
				fmt.Sprintf("the files together are larger than %d MB", s.opts.MaxBytes>>20))
		case len(out) >= s.opts.MaxFiles:
			return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("at most %d files per submission", s.opts.MaxFiles))
		}
		out = append(out, source{rel: rel, name: name, size: size})
		return nil
	}
	for _, p := range parsed {
		name := strings.TrimPrefix(strings.TrimPrefix(p.String(), base.String()), "/")
		fi, err := s.opts.Files.Lstat(p.String())
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, echo.NewHTTPError(http.StatusNotFound, p.String()+" does not exist")
		case err != nil:
			return nil, echo.NewHTTPError(http.StatusBadRequest, p.String()+": "+fsMessage(err))
		case fi.Mode().IsRegular():
			if err := add(p.String(), name, fi.Size()); err != nil {
				return nil, err
			}
		case fi.IsDir():
			entries, err := s.opts.Files.FilesUnder(p.String())
			if err != nil {
				return nil, echo.NewHTTPError(http.StatusBadRequest, p.String()+": "+fsMessage(err))
			}
			for _, e := range entries {
				if err := add(path.Join(p.String(), e.Rel), path.Join(name, e.Rel), e.Size); err != nil {
					return nil, err
				}
			}
		default:
			return nil, echo.NewHTTPError(http.StatusBadRequest, p.String()+" is not a regular file or folder")
		}
	}
	if len(out) == 0 {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "nothing to submit: the chosen folders are empty")
	}
	return out, nil
}

// fsMessage words a file error for a user without revealing host paths.
func fsMessage(err error) string {
	switch {
	case errors.Is(err, fstree.ErrSymlink):
		return "goes through a symbolic link"
	case errors.Is(err, fstree.ErrNotRegular):
		return "not a regular file"
	case errors.Is(err, fstree.ErrTooLarge):
		return "too large"
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	}
	return "cannot be read"
}

// folderSources lists the files of a student's test folder; with
// skipLarge (the auto-submit), files past the limits are left out instead
// of failing the whole submission.
func (s *Service) folderSources(item, user string, skipLarge bool) ([]source, []string, error) {
	rel := path.Join(workspace.RootSubmissions, item, user)
	entries, err := s.opts.Files.FilesUnder(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var out []source
	var skipped []string
	var total int64
	for _, e := range entries {
		tooMany := len(out) >= s.opts.MaxFiles
		tooLarge := e.Size > s.opts.MaxFileBytes || total+e.Size > s.opts.MaxBytes
		if tooMany || tooLarge {
			if !skipLarge {
				if tooMany {
					return nil, nil, echo.NewHTTPError(http.StatusBadRequest,
						fmt.Sprintf("your test folder has more than %d files", s.opts.MaxFiles))
				}
				return nil, nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge,
					fmt.Sprintf("%s makes the submission larger than the limit (%d MB per file, %d MB in all)",
						e.Rel, s.opts.MaxFileBytes>>20, s.opts.MaxBytes>>20))
			}
			skipped = append(skipped, e.Rel)
			continue
		}
		total += e.Size
		out = append(out, source{rel: path.Join(rel, e.Rel), name: e.Rel, size: e.Size})
	}
	return out, skipped, nil
}

// autoSubmitEnded snapshots, once, the test folder of every student whose
// test time is over: those who started it and whose end has come, and,
// once the window has closed, everyone with a folder for it.
func (s *Service) autoSubmitEnded(ctx context.Context) error {
	st := s.state.Load()
	now := s.now()
	var errs []error
	for _, t := range st.tests {
		if !published(t.PublishAt, now) || now.Before(t.StartsAt) {
			continue
		}
		due := map[string]bool{}
		for user := range st.starts[t.Slug] {
			if _, end, _ := st.window(t, user); !now.Before(end) {
				due[user] = true
			}
		}
		if !now.Before(t.EndsAt) {
			for _, user := range s.opts.Files.Folders(path.Join(workspace.RootSubmissions, t.Slug)) {
				due[user] = true
			}
		}
		if len(due) == 0 {
			continue
		}
		done, err := s.autoSubmittedSet(ctx, t.Slug)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for user := range due {
			if done[user] {
				continue
			}
			if err := s.autoSubmit(ctx, t, user, now); err != nil {
				errs = append(errs, fmt.Errorf("auto-submitting %s for %s: %w", t.Slug, user, err))
			}
		}
	}
	return errors.Join(errs...)
}

// autoSubmittedSet is who was auto-submitted for test, from memory after
// the first look in the database.
func (s *Service) autoSubmittedSet(ctx context.Context, test string) (map[string]bool, error) {
	s.autoMu.Lock()
	defer s.autoMu.Unlock()
	if m, ok := s.autoDone[test]; ok {
		return copyBools(m), nil
	}
	m, err := s.opts.DB.AutoSubmitted(ctx, test)
	if err != nil {
		return nil, err
	}
	s.autoDone[test] = m
	return copyBools(m), nil
}

func copyBools(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Service) markAutoDone(test, user string) {
	s.autoMu.Lock()
	defer s.autoMu.Unlock()
	if s.autoDone[test] == nil {
		s.autoDone[test] = map[string]bool{}
	}
	s.autoDone[test][user] = true
}

// forgetAutoSubmits makes Run ask the database again who of item was
// auto-submitted: the item changed or is gone.
func (s *Service) forgetAutoSubmits(item string) {
	s.autoMu.Lock()
	defer s.autoMu.Unlock()
	delete(s.autoDone, item)
}

func (s *Service) autoSubmit(ctx context.Context, t store.Test, user string, now time.Time) error {
	if _, err := s.opts.DB.UserByName(ctx, user); errors.Is(err, store.ErrNotFound) {
		s.markAutoDone(t.Slug, user) // a folder nobody owns: nothing to submit for
		return nil
	} else if err != nil {
		return err
	}
	srcs, skipped, err := s.folderSources(t.Slug, user, true)
	if err != nil {
		return err
	}
	sub, err := s.snapshot(ctx, t.Slug, store.KindTest, user, now, srcs, true, func(tx *store.DB) (bool, error) {
		done, err := tx.HasAutoSubmission(ctx, t.Slug, user)
		if err == nil && done {
			err = errAlreadyAuto
		}
		return false, err
	})
	if errors.Is(err, errAlreadyAuto) || errors.Is(err, store.ErrConflict) {
		s.markAutoDone(t.Slug, user)
		return nil
	}
	if err != nil {
		return err
	}
	s.markAutoDone(t.Slug, user)
	if s.opts.OnTestOver != nil {
		s.opts.OnTestOver(t.Slug, user)
	}
	details := map[string]any{"n": sub.N, "files": len(sub.Files)}
	if len(skipped) > 0 {
		details["skipped_too_large"] = skipped
	}
	s.audit(ctx, "(server)", "course.autosubmit", t.Slug+"/"+user, details)
	return nil
}

// audit records an action; a failure is logged, never shown to the user
// whose action already happened.
func (s *Service) audit(ctx context.Context, actor, action, target string, details map[string]any) {
	if err := s.opts.DB.Audit(context.WithoutCancel(ctx), actor, action, target, details); err != nil {
		s.opts.Logger.Error("course: audit failed", "action", action, "target", target, "error", err)
	}
}
