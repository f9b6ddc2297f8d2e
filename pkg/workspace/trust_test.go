package workspace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pythonide/pyide/pkg/store"
)

// The routes by which a student got a mount source redirected to the data
// folder (reproduced on a running server): a link planted by her program,
// moved through the file API onto Submissions/<item>/<self>; the same
// through delete and trash restore; and the swap race inside the move.
// Each must be refused by the API, whatever the order.

func TestMountSourcesKeptByServer(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	if err := ev.ws.EnsureSubmissionFolder("hw1", "alice"); err != nil {
		t.Fatal(err)
	}
	// What her program made inside her sandbox: a link to the data folder.
	if err := os.Symlink(ev.dir, filepath.Join(ev.dir, "Local/alice/L")); err != nil {
		t.Fatal(err)
	}
	ev.disk("Local/alice/d/keep.py", "x")
	mv := func(user, from, to string) resp {
		return ev.jsonReq(user, "POST", "/api/files/move", map[string]string{"from": from, "to": to})
	}
	cp := func(user, from, to string) resp {
		return ev.jsonReq(user, "POST", "/api/files/copy", map[string]string{"from": from, "to": to})
	}
	del := func(user, p string) resp { return ev.do(user, "DELETE", q("/api/files", p), nil) }
	create := func(user, p string) resp {
		return ev.jsonReq(user, "POST", "/api/files", map[string]string{"path": p, "type": "dir"})
	}
	for _, tc := range []struct {
		name string
		r    func() resp
	}{
		{"move the source away", func() resp { return mv("alice", "Submissions/hw1/alice", "Local/alice/away") }},
		{"delete the source", func() resp { return del("alice", "Submissions/hw1/alice") }},
		{"move a link onto a source", func() resp { return mv("alice", "Local/alice/L", "Submissions/hw1/alice") }},
		{"move a folder onto a source", func() resp { return mv("alice", "Local/alice/d", "Submissions/hw1/alice") }},
		{"copy onto a source", func() resp { return cp("alice", "Local/alice/d", "Submissions/hw1/alice") }},
		{"create a source", func() resp { return create("alice", "Submissions/hw0/alice") }},
		{"move a link anywhere", func() resp { return mv("alice", "Local/alice/L", "Local/alice/L2") }},
		{"copy a link", func() resp { return cp("alice", "Local/alice/L", "Local/alice/L3") }},
		{"staff rename an item folder", func() resp { return mv("prof", "Assignments/hw1", "Assignments/hw9") }},
		{"staff move onto an item folder", func() resp { return mv("prof", "Lecture Notes/week1.pdf", "Tests/final2") }},
		{"staff delete a home", func() resp { return del("prof", "Local/bob") }},
		{"staff delete an item folder", func() resp { return del("prof", "Tests/final") }},
		{"staff delete a submissions folder", func() resp { return del("prof", "Submissions/hw1") }},
		{"staff create a home", func() resp { return create("prof", "Local/mallory") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := tc.r(); r.Code != 403 {
				t.Errorf("status %d, want 403: %s", r.Code, r.Body.String())
			}
		})
	}
	// The source is still the folder the server made, and is mounted.
	if fi, err := os.Lstat(filepath.Join(ev.dir, "Submissions/hw1/alice")); err != nil || !fi.IsDir() {
		t.Fatalf("Submissions/hw1/alice is no longer a real folder: %v %v", fi, err)
	}
	ms, err := ev.ws.Mounts(alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		real, err := filepath.EvalSymlinks(m.Source)
		if err != nil || real != m.Source {
			t.Errorf("mount source %s resolves to %s (%v)", m.Source, real, err)
		}
	}
	// Deleting the link itself is allowed: that is how a student cleans up.
	expect(t, del("alice", "Local/alice/L"), 200)
}

// TestTrashRestoreRefusesLinksAndKeptFolders: an item in the trash whose
// original place is now a folder the server keeps (trash from before they
// were kept), or that is itself a link, is never restored.
func TestTrashRestoreRefusesLinksAndKeptFolders(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	ctx := context.Background()
	trash := filepath.Join(ev.dir, trashDir, "alice")
	if err := os.MkdirAll(trash, 0o700); err != nil {
		t.Fatal(err)
	}
	plant := func(name, original string, link bool) int64 {
		p := filepath.Join(trash, name)
		var err error
		if link {
			err = os.Symlink(ev.dir, p)
		} else {
			err = os.Mkdir(p, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := ev.db.AddTrash(ctx, store.TrashEntry{Username: "alice", OriginalPath: original, TrashName: name,
			IsDir: !link, DeletedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	restore := func(id int64) resp {
		return ev.jsonReq("alice", "POST", "/api/files/trash/restore", map[string]any{"id": id})
	}
	expect(t, restore(plant("1-link-onto-source", "Submissions/hw1/alice", true)), 403)
	expect(t, restore(plant("2-dir-onto-source", "Submissions/hw1/alice", false)), 403)
	expect(t, restore(plant("3-link", "Local/alice/L", true)), 403)
	if _, err := os.Lstat(filepath.Join(ev.dir, "Submissions/hw1/alice")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("something was restored onto Submissions/hw1/alice: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(ev.dir, "Local/alice/L")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a link was restored: %v", err)
	}
	// An ordinary folder still comes back.
	expect(t, restore(plant("4-dir", "Local/alice/old", false)), 200)
}

// TestMoveRaceWithLinkSwap: while a program swaps a folder and a link
// (renameat2 RENAME_EXCHANGE, as a student's program inside the sandbox
// can), the API moves the folder's name again and again. Whatever the
// interleaving, a link never arrives at a destination: the move is refused
// and the link put back.
func TestMoveRaceWithLinkSwap(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	home := filepath.Join(ev.dir, "Local/alice")
	ev.disk("Local/alice/d/keep.py", "x")
	if err := os.Symlink(ev.dir, filepath.Join(home, "L")); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		dfd, err := unix.Open(home, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(dfd)
		for !stop.Load() {
			_ = unix.Renameat2(dfd, "d", dfd, "L", unix.RENAME_EXCHANGE)
		}
	}()
	refused, moved := 0, 0
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline) && i < 400; i++ {
		to := "Local/alice/dest"
		r := ev.jsonReq("alice", "POST", "/api/files/move", map[string]string{"from": "Local/alice/d", "to": to})
		switch r.Code {
		case 200:
			moved++
			fi, err := os.Lstat(filepath.Join(ev.dir, to))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("a link arrived at %s after %d moves", to, moved)
			}
			// Put it back for the next round.
			expect(t, ev.jsonReq("alice", "POST", "/api/files/move", map[string]string{"from": to, "to": "Local/alice/d"}), 200)
		case 403, 404:
			refused++
		default:
			t.Fatalf("move: %d %s", r.Code, r.Body.String())
		}
	}
	stop.Store(true)
	wg.Wait()
	if refused == 0 {
		t.Logf("the swap never won a round (%d moves); the post-move check was not exercised", moved)
	}
	// Both names are still there, one a folder, one a link: nothing lost.
	for _, n := range []string{"d", "L"} {
		if _, err := os.Lstat(filepath.Join(home, n)); err != nil {
			t.Errorf("%s is gone after the race: %v", n, err)
		}
	}
	t.Logf("moves %d, refused %d", moved, refused)
}

// TestMoveInterruptedByCrash: an item left staged between the two renames
// of a move (the server died there) is put back at the next start.
func TestMoveInterruptedByCrash(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	ev.disk(movingDir+"/0123abcd/work.py", "typed work\n")
	ev.disk(movingDir+"/0123abcd"+movingNote, "Local/alice/project")
	ws, err := New(ev.ws.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if got := ev.read("Local/alice/project/work.py"); got != "typed work\n" {
		t.Fatalf("the staged folder was not put back: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(ev.dir, movingDir, "0123abcd"+movingNote)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the note is still there: %v", err)
	}
}

// TestPurgeTrash: a user deletes one trash entry for good, or all of them;
// another user's entry is not theirs to purge.
func TestPurgeTrash(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	var ids []int64
	for _, n := range []string{"a", "b", "c"} {
		expect(t, ev.put("alice", "Local/alice/"+n+".txt", n), 200)
		var del struct {
			TrashID int64 `json:"trash_id"`
		}
		r := ev.do("alice", "DELETE", q("/api/files", "Local/alice/"+n+".txt"), nil)
		expect(t, r, 200)
		r.json(t, &del)
		ids = append(ids, del.TrashID)
	}
	expect(t, ev.do("bob", "DELETE", fmt.Sprintf("/api/files/trash?id=%d", ids[0]), nil), 404)
	expect(t, ev.do("alice", "DELETE", "/api/files/trash?id=x", nil), 400)
	expect(t, ev.do("alice", "DELETE", fmt.Sprintf("/api/files/trash?id=%d", ids[0]), nil), 200)
	var trash struct{ Entries []TrashItem }
	ev.do("alice", "GET", "/api/files/trash", nil).json(t, &trash)
	if len(trash.Entries) != 2 {
		t.Fatalf("after purging one: %+v", trash.Entries)
	}
	expect(t, ev.do("alice", "DELETE", "/api/files/trash", nil), 200)
	ev.do("alice", "GET", "/api/files/trash", nil).json(t, &trash)
	if len(trash.Entries) != 0 {
		t.Fatalf("after emptying: %+v", trash.Entries)
	}
	if ents, _ := os.ReadDir(filepath.Join(ev.dir, trashDir, "alice")); len(ents) != 0 {
		t.Errorf("files left in the trash folder: %v", ents)
	}
	if used, _ := ev.ws.DiskUsage("alice"); used != int64(len("print('late')\n")) {
		t.Errorf("usage after emptying the trash: %d", used)
	}
}

// TestTrimToQuota: what a program wrote past the quota since it started is
// taken back newest first (removed, or the last one cut); files from
// before are never touched.
func TestTrimToQuota(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.QuotaBytes = 1000; o.MaxFileBytes = 1000 })
	ev.disk("Local/alice/old.txt", strings.Repeat("o", 300))
	past := time.Now().Add(-time.Hour)
	for _, old := range []string{"Local/alice/old.txt", "Submissions/hw0/alice/main.py"} {
		if err := os.Chtimes(filepath.Join(ev.dir, old), past, past); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now().Add(-time.Minute)
	for i, n := range []string{"w1", "w2", "w3"} {
		ev.disk("Local/alice/"+n+".bin", strings.Repeat("w", 400))
		at := since.Add(time.Duration(i+1) * time.Second)
		if err := os.Chtimes(filepath.Join(ev.dir, "Local/alice/"+n+".bin"), at, at); err != nil {
			t.Fatal(err)
		}
	}
	// 300 + 3×400 + 14 (the fixture's hw0 file) = 1514: 514 over.
	trimmed, err := ev.ws.TrimToQuota(context.Background(), alice, since)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(trimmed) != "[Local/alice/w3.bin Local/alice/w2.bin]" {
		t.Errorf("trimmed %v", trimmed)
	}
	if got := ev.read("Local/alice/old.txt"); len(got) != 300 {
		t.Errorf("the file from before was touched: %d bytes", len(got))
	}
	if _, err := os.Stat(filepath.Join(ev.dir, "Local/alice/w3.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("w3.bin (newest, all over) is still there: %v", err)
	}
	if got := ev.read("Local/alice/w2.bin"); len(got) != 286 {
		t.Errorf("w2.bin cut to %d bytes, want 286", len(got))
	}
	if used, _ := ev.ws.DiskUsage("alice"); used != 1000 {
		t.Errorf("usage after the trim: %d, want exactly the quota", used)
	}
	// Staff have no quota: nothing is taken from them.
	if trimmed, err := ev.ws.TrimToQuota(context.Background(), prof, since); err != nil || trimmed != nil {
		t.Errorf("staff trimmed: %v %v", trimmed, err)
	}
}
