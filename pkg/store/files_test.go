package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

func ownerOf(p string) string {
	if s := strings.Split(p, "/"); len(s) >= 2 && s[0] == "Local" {
		return s[1]
	}
	return ""
}

func TestFilesMetadataMoveAndQuota(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.New(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, m := range []store.FileMeta{
		{Path: "Local/alice/a.py", Parent: "Local/alice", Owner: "alice", Size: 10, Hash: "h1", Modified: now},
		{Path: "Local/alice/d/b.py", Parent: "Local/alice/d", Owner: "alice", Size: 20, Hash: "h2", Modified: now},
		{Path: "Local/alice/dx.py", Parent: "Local/alice", Owner: "alice", Size: 5, Hash: "h3", Modified: now},
		{Path: "Local/bob/c.py", Parent: "Local/bob", Owner: "bob", Size: 7, Hash: "h4", Modified: now},
	} {
		if err := db.UpsertFile(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if used, err := db.QuotaUsed(ctx, "alice"); err != nil || used != 35 {
		t.Fatalf("alice uses %d (%v), want 35", used, err)
	}
	in, err := db.FilesIn(ctx, "Local/alice")
	if err != nil || len(in) != 2 {
		t.Fatalf("FilesIn: %d %v", len(in), err)
	}
	if _, err := db.AddRevision(ctx, store.Revision{Path: "Local/alice/d/b.py", Size: 2, Hash: "x", Author: "alice", Created: now, Content: []byte("hi")}, 5); err != nil {
		t.Fatal(err)
	}
	// Moving "d" must not touch "dx.py" (a prefix without the slash).
	if err := db.MoveFiles(ctx, "Local/alice/d", "Local/bob/e", ownerOf); err != nil {
		t.Fatal(err)
	}
	moved, err := db.FileByPath(ctx, "Local/bob/e/b.py")
	if err != nil || moved.Parent != "Local/bob/e" || moved.Owner != "bob" {
		t.Fatalf("moved file: %+v %v", moved, err)
	}
	if _, err := db.FileByPath(ctx, "Local/alice/dx.py"); err != nil {
		t.Fatalf("sibling with a common prefix was moved: %v", err)
	}
	if revs, _ := db.Revisions(ctx, "Local/bob/e/b.py"); len(revs) != 1 {
		t.Fatalf("revisions did not follow the move: %d", len(revs))
	}
	if used, _ := db.QuotaUsed(ctx, "bob"); used != 27 {
		t.Fatalf("bob uses %d, want 27", used)
	}
	if err := db.DeleteFilesUnder(ctx, "Local/bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FileByPath(ctx, "Local/bob/c.py"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted file still known: %v", err)
	}
}

func TestRevisionsKeepLastN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.New(t)
	var last store.Revision
	for i := range 7 {
		var err error
		last, err = db.AddRevision(ctx, store.Revision{Path: "Local/a/x.py", Size: 1, Hash: string(rune('a' + i)),
			Author: "a", Created: time.Now(), Content: []byte{byte(i)}}, 3)
		if err != nil {
			t.Fatal(err)
		}
	}
	revs, err := db.Revisions(ctx, "Local/a/x.py")
	if err != nil || len(revs) != 3 || revs[0].ID != last.ID || revs[0].Hash != "g" {
		t.Fatalf("revisions: %+v %v", revs, err)
	}
	got, err := db.RevisionByID(ctx, "Local/a/x.py", last.ID)
	if err != nil || len(got.Content) != 1 || got.Content[0] != 6 {
		t.Fatalf("RevisionByID: %+v %v", got, err)
	}
	if _, err := db.RevisionByID(ctx, "Local/b/x.py", last.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a revision answered for another path: %v", err)
	}
	if h, _ := db.LatestRevisionHash(ctx, "Local/a/x.py"); h != "g" {
		t.Fatalf("latest hash %q", h)
	}
}

func TestTrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.New(t)
	old := time.Now().Add(-40 * 24 * time.Hour)
	if err := db.UpsertFile(ctx, store.FileMeta{Path: "Local/alice/a.py", Parent: "Local/alice", Owner: "alice", Size: 10, Hash: "h", Modified: old}); err != nil {
		t.Fatal(err)
	}
	e, err := db.AddTrash(ctx, store.TrashEntry{Username: "alice", OriginalPath: "Local/alice/a.py", TrashName: "n1", Size: 10, DeletedAt: old})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.FileByPath(ctx, "Local/alice/a.py"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("trashed file still in files")
	}
	if used, _ := db.QuotaUsed(ctx, "alice"); used != 10 {
		t.Fatalf("trash not charged: %d", used)
	}
	if _, err := db.TrashByID(ctx, "bob", e.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob sees alice's trash: %v", err)
	}
	exp, err := db.ExpiredTrash(ctx, time.Now().Add(-30*24*time.Hour))
	if err != nil || len(exp) != 1 {
		t.Fatalf("expired: %v %v", exp, err)
	}
	if err := db.DeleteTrash(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := db.TrashOf(ctx, "alice"); len(list) != 0 {
		t.Fatalf("trash left: %v", list)
	}
}
