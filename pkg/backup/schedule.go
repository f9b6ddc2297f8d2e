package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// Archive is one finished archive in a backups folder.
type Archive struct {
	Path string
	Time time.Time // from the name: when the backup started
	Size int64
	seq  int // the -N suffix of a second archive in the same second
}

var archiveRe = regexp.MustCompile(`^pyide-backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.tar\.gz$`)

// List returns the archives in dir, newest first. Other files, temporary
// ones included, are not archives and are never listed.
func List(dir string) ([]Archive, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Archive
	for _, e := range entries {
		m := archiveRe.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		t, err := time.Parse(timeLayout, m[1])
		if err != nil {
			continue
		}
		seq, _ := strconv.Atoi(m[2])
		a := Archive{Path: filepath.Join(dir, e.Name()), Time: t, seq: seq}
		if fi, err := e.Info(); err == nil {
			a.Size = fi.Size()
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.After(out[j].Time)
		}
		return out[i].seq > out[j].seq
	})
	return out, nil
}

// Prune keeps the newest keep archives in dir and removes the older ones;
// it returns what it removed.
func Prune(dir string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("backup: keep must be at least 1, not %d", keep)
	}
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, a := range all[min(keep, len(all)):] {
		if err := os.Remove(a.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, a.Path)
	}
	return removed, errors.Join(errs...)
}

// Schedule takes a backup every Every into Options.Dir and prunes to Keep.
// It is the loop `pyide serve` runs; LastSuccess feeds the backup-age
// metric.
type Schedule struct {
	Options Options
	Every   time.Duration
	Keep    int
	// RetryAfter is the wait after a failed backup; default min(Every, 15m).
	RetryAfter time.Duration

	last atomic.Int64 // unix nanoseconds of the last success; 0: none
}

// LastSuccess is when the newest archive was written (or, before the first
// run, the time in the newest archive's name); zero when there is none.
func (s *Schedule) LastSuccess() time.Time {
	n := s.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Run backs up until ctx ends. The first backup is due one interval after
// the newest archive already in the folder, so a restarted server neither
// skips a day nor takes an extra backup.
func (s *Schedule) Run(ctx context.Context) error {
	if s.Every <= 0 {
		return errors.New("backup: schedule interval must be positive")
	}
	if s.Keep < 1 {
		s.Keep = 1
	}
	retry := s.RetryAfter
	if retry <= 0 {
		retry = min(s.Every, 15*time.Minute)
	}
	log := s.Options.logger()
	if all, err := List(s.Options.Dir); err == nil && len(all) > 0 {
		s.last.Store(all[0].Time.UnixNano())
	}
	next := time.Now()
	if last := s.LastSuccess(); !last.IsZero() {
		next = last.Add(s.Every)
	}
	log.Info("scheduled backups", "every", s.Every.String(), "keep", s.Keep, "folder", s.Options.Dir, "next", next.UTC().Format(time.RFC3339))
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		// Create logs the progress line (size, files, duration).
		if _, err := Create(ctx, s.Options); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Error("scheduled backup failed; retrying later", "error", err, "retry_in", retry.String())
			timer.Reset(retry)
			continue
		}
		s.last.Store(time.Now().UnixNano())
		removed, err := Prune(s.Options.Dir, s.Keep)
		if err != nil {
			log.Warn("pruning old backups", "error", err)
		}
		if len(removed) > 0 {
			log.Info("old backups removed", "count", len(removed), "kept", s.Keep)
		}
		timer.Reset(s.Every)
	}
}
