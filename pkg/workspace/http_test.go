package workspace

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/fstree"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

type env struct {
	t     testing.TB
	ws    *Workspace
	db    *store.DB
	dir   string
	e     *echo.Echo
	clock *servertest.Clock
	users map[string]auth.User
}

func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	db := storetest.New(t)
	dir := t.TempDir()
	clock := servertest.NewClock(time.Now())
	opts := Options{DataPath: dir, DB: db, Clock: clock.Now, Course: course,
		Logger: servertest.Quiet()}
	if mod != nil {
		mod(&opts)
	}
	ws, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ev := &env{t: t, ws: ws, db: db, dir: dir, clock: clock, users: map[string]auth.User{}}
	for _, u := range []auth.User{alice, bob, prof, admin} {
		ev.users[u.Username] = u
		if err := ws.EnsureUserDirs(u.Username); err != nil {
			t.Fatal(err)
		}
	}
	e := echo.New()
	e.HTTPErrorHandler = httpapi.ErrorHandler(opts.Logger)
	g := e.Group("/api", func(next echo.HandlerFunc) echo.HandlerFunc {
		// Stands in for the real login middleware: it only sets the user.
		return func(c *echo.Context) error {
			if u, ok := ev.users[c.Request().Header.Get("X-Test-User")]; ok {
				auth.SetUser(c, u)
			}
			return next(c)
		}
	})
	ws.Register(g)
	ev.e = e
	for _, d := range []string{"Lecture Notes", "Assignments/hw1", "Assignments/hw2", "Tests/midterm", "Tests/final",
		"Submissions/hw1", "Submissions/hw0/alice"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ev.disk("Lecture Notes/week1.pdf", "%PDF-1.4 lecture")
	ev.disk("Assignments/hw1/starter.py", "print('start')\n")
	ev.disk("Assignments/hw2/solution.py", "secret solution\n")
	ev.disk("Tests/final/q1.py", "final question\n")
	ev.disk("Local/bob/secret.py", "bob's secret\n")
	ev.disk("Submissions/hw0/alice/main.py", "print('late')\n")
	return ev
}

// disk writes a file behind the API's back, as a sandbox would.
func (ev *env) disk(rel, content string) {
	ev.t.Helper()
	p := filepath.Join(ev.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		ev.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		ev.t.Fatal(err)
	}
}

func (ev *env) read(rel string) string {
	b, err := os.ReadFile(filepath.Join(ev.dir, rel))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

type resp struct {
	*httptest.ResponseRecorder
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body.Bytes(), v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.Code, err, r.Body.String())
	}
}

func (r resp) errMsg() string {
	var v struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body.Bytes(), &v)
	return v.Error
}

func (ev *env) do(user, method, target string, body io.Reader, hdr ...string) resp {
	ev.t.Helper()
	req := httptest.NewRequest(method, target, body)
	req.Header.Set("X-Test-User", user)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	ev.e.ServeHTTP(rec, req)
	return resp{rec}
}

func q(base, p string) string { return base + "?path=" + url.QueryEscape(p) }

func (ev *env) jsonReq(user, method, target string, v any) resp {
	ev.t.Helper()
	b, _ := json.Marshal(v)
	return ev.do(user, method, target, bytes.NewReader(b), "Content-Type", "application/json")
}

func (ev *env) put(user, p, content string, hdr ...string) resp {
	ev.t.Helper()
	return ev.do(user, http.MethodPut, q("/api/files/content", p), strings.NewReader(content), hdr...)
}

func (ev *env) list(user, p string) (Listing, resp) {
	ev.t.Helper()
	r := ev.do(user, http.MethodGet, q("/api/files", p), nil)
	var l Listing
	if r.Code == http.StatusOK {
		r.json(ev.t, &l)
	}
	return l, r
}

func names(l Listing) []string {
	var out []string
	for _, e := range l.Entries {
		out = append(out, e.Name)
	}
	sort.Strings(out)
	return out
}

func expect(t testing.TB, r resp, code int) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("status %d, want %d: %s", r.Code, code, r.Body.String())
	}
}

func TestListingVisibility(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	for _, tc := range []struct {
		user, path string
		want       string
		code       int
	}{
		{"alice", "", "Assignments Lecture Notes Local Submissions Tests", 200},
		{"alice", "Local", "alice", 200},
		{"prof", "Local", "alice bob prof root", 200},
		{"alice", "Local/bob", "", 404},
		{"alice", "Assignments", "hw1", 200},
		{"prof", "Assignments", "hw1 hw2", 200},
		{"alice", "Assignments/hw2", "", 404},
		{"alice", "Tests", "midterm", 200},
		{"alice", "Tests/final", "", 404},
		{"alice", "Submissions", "hw0 hw1", 200},
		{"bob", "Submissions/hw0", "", 200},
		{"alice", "Submissions/hw0", "alice", 200},
		{"alice", "local", "", 400},
		{"alice", "Local/alice/../bob", "", 400},
		{"alice", "Lecture Notes/week1.pdf", "", 400},
		{"nobody", "", "", 401},
	} {
		l, r := ev.list(tc.user, tc.path)
		if r.Code != tc.code {
			t.Errorf("%s lists %q: %d, want %d (%s)", tc.user, tc.path, r.Code, tc.code, r.Body.String())
			continue
		}
		if tc.code == 200 && strings.Join(names(l), " ") != strings.Join(strings.Fields(tc.want), " ") {
			// Local has the users' folders plus "root" (admin's name).
			t.Errorf("%s lists %q: %v, want %q", tc.user, tc.path, names(l), tc.want)
		}
		if tc.code != 200 && r.errMsg() == "" {
			t.Errorf("%s lists %q: error without message: %s", tc.user, tc.path, r.Body.String())
		}
	}
	// The 404 for bob's folder reads the same as for a folder that does not exist.
	_, r1 := ev.list("alice", "Local/bob")
	_, r2 := ev.list("alice", "Local/nosuchuser")
	if r1.errMsg() != strings.Replace(r2.errMsg(), "nosuchuser", "bob", 1) {
		t.Errorf("404s differ: %q vs %q", r1.errMsg(), r2.errMsg())
	}
	l, _ := ev.list("alice", "Local/alice")
	if l.Quota == nil || l.Quota.Limit != DefaultQuotaBytes {
		t.Errorf("student listing lacks the quota: %+v", l.Quota)
	}
	l, _ = ev.list("prof", "Lecture Notes")
	if l.Quota != nil || len(l.Entries) != 1 || l.Entries[0].Type != "file" || l.Entries[0].Size != 16 || !l.Entries[0].Writable {
		t.Errorf("professor's lecture notes listing: %+v", l)
	}
	l, _ = ev.list("alice", "Lecture Notes")
	if len(l.Entries) != 1 || l.Entries[0].Writable || l.Entries[0].Path != "Lecture Notes/week1.pdf" {
		t.Errorf("student's lecture notes listing: %+v", l)
	}
}

func TestWriteReadConflict(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	r := ev.put("alice", "Local/alice/hello.py", "print('v1')\n")
	expect(t, r, 200)
	var s1 Saved
	r.json(t, &s1)
	if s1.Size != 12 || s1.Version != fstree.HashOf([]byte("print('v1')\n")) || r.Header().Get("ETag") != etag(s1.Version) {
		t.Fatalf("save result %+v, ETag %q", s1, r.Header().Get("ETag"))
	}
	g := ev.do("alice", "GET", q("/api/files/content", "Local/alice/hello.py"), nil)
	expect(t, g, 200)
	if g.Body.String() != "print('v1')\n" || g.Header().Get("Content-Type") != "text/x-python; charset=utf-8" || g.Header().Get("ETag") != etag(s1.Version) {
		t.Fatalf("read: %q %v", g.Body.String(), g.Header())
	}
	// A save with the version read succeeds (quoted, as the ETag is sent back).
	r = ev.put("alice", "Local/alice/hello.py", "print('v2')\n", "If-Match", g.Header().Get("ETag"))
	expect(t, r, 200)
	var s2 Saved
	r.json(t, &s2)
	// A second tab still holding v1 gets 409 with the current version.
	r = ev.put("alice", "Local/alice/hello.py", "print('stale')\n", "If-Match", s1.Version)
	expect(t, r, 409)
	var conflict struct{ Error, Version string }
	r.json(t, &conflict)
	if conflict.Version != s2.Version || conflict.Error == "" {
		t.Fatalf("409 body %+v, want version %s", conflict, s2.Version)
	}
	if got := ev.read("Local/alice/hello.py"); got != "print('v2')\n" {
		t.Fatalf("stale write changed the file: %q", got)
	}
	// A sandbox changes the file: the editor's version is stale too.
	ev.disk("Local/alice/hello.py", "changed by a program\n")
	expect(t, ev.put("alice", "Local/alice/hello.py", "x", "If-Match", etag(s2.Version)), 409)
	// A file deleted meanwhile is a conflict for a versioned save.
	expect(t, ev.put("alice", "Local/alice/gone.py", "x", "If-Match", `"abc"`), 409)
	// Writes need the parent folder.
	expect(t, ev.put("alice", "Local/alice/nodir/x.py", "x"), 404)
	// Files only where files belong.
	expect(t, ev.put("prof", "Assignments/loose.py", "x"), 400)
	expect(t, ev.put("prof", "Local/loose.py", "x"), 400)
}

func TestWritePermissions(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	for _, tc := range []struct {
		user, path string
		code       int
	}{
		{"alice", "Local/alice/a.py", 200},
		{"alice", "Local/bob/a.py", 404},
		{"alice", "Lecture Notes/a.py", 403},
		{"alice", "Assignments/hw1/a.py", 403},
		{"alice", "Assignments/hw2/a.py", 404},
		{"alice", "Tests/final/a.py", 404},
		{"alice", "Submissions/hw0/alice/main.py", 403},
		{"alice", "Submissions/hw0/bob/main.py", 404},
		{"prof", "Lecture Notes/a.py", 200},
		{"prof", "Local/bob/a.py", 200},
		{"root", "Assignments/hw2/a.py", 200},
		{"alice", "/etc/passwd", 400},
		{"alice", "Local/alice/a\x00.py", 400},
	} {
		if r := ev.put(tc.user, tc.path, "x"); r.Code != tc.code {
			t.Errorf("%s writes %q: %d, want %d: %s", tc.user, tc.path, r.Code, tc.code, r.Body.String())
		}
	}
	if ev.read("Lecture Notes/week1.pdf") != "%PDF-1.4 lecture" || ev.read("Local/bob/secret.py") != "bob's secret\n" {
		t.Fatal("a refused write changed a file")
	}
}

func TestContentTypes(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	for name, want := range map[string]string{
		"a.py": "text/x-python; charset=utf-8", "b.csv": "text/csv; charset=utf-8", "c.pdf": "application/pdf",
		"d.png": "image/png", "e.jpg": "image/jpeg", "f.html": "text/plain; charset=utf-8",
		"g.svg": "text/plain; charset=utf-8", "h.js": "text/plain; charset=utf-8", "i.bin": "application/octet-stream",
		"notes": "text/plain; charset=utf-8",
	} {
		content := "<script>alert(1)</script>"
		if name == "i.bin" {
			content = "\x00\x01\x02"
		}
		ev.disk("Local/alice/"+name, content)
		r := ev.do("alice", "GET", q("/api/files/content", "Local/alice/"+name), nil)
		expect(t, r, 200)
		if got := r.Header().Get("Content-Type"); got != want {
			t.Errorf("%s served as %q, want %q", name, got, want)
		}
		if r.Header().Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.Header().Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("%s lacks nosniff/CSP: %v", name, r.Header())
		}
	}
	// With the file's name as the last segment (a PDF viewer's title), the
	// path query still decides; a name that is not the file's changes nothing.
	for _, name := range []string{"week1.pdf", "other.pdf"} {
		r := ev.do("alice", "GET", q("/api/files/content/"+name, "Lecture Notes/week1.pdf"), nil)
		expect(t, r, 200)
		if r.Header().Get("Content-Type") != "application/pdf" || !strings.Contains(r.Header().Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("named %s: %v", name, r.Header())
		}
	}
	expect(t, ev.do("alice", "GET", q("/api/files/content/secret.py", "Local/bob/secret.py"), nil), 404)
	// Ranges and conditional GETs work (PDF viewers use both).
	r := ev.do("alice", "GET", q("/api/files/content", "Lecture Notes/week1.pdf"), nil, "Range", "bytes=0-3")
	if r.Code != http.StatusPartialContent || r.Body.String() != "%PDF" {
		t.Errorf("range: %d %q", r.Code, r.Body.String())
	}
	etagv := ev.do("alice", "GET", q("/api/files/content", "Lecture Notes/week1.pdf"), nil).Header().Get("ETag")
	if r := ev.do("alice", "GET", q("/api/files/content", "Lecture Notes/week1.pdf"), nil, "If-None-Match", etagv); r.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", r.Code)
	}
}

func TestSizeLimitsAndQuota(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.MaxFileBytes = 1000; o.QuotaBytes = 2500 })
	r := ev.put("alice", "Local/alice/big.txt", strings.Repeat("x", 1001))
	expect(t, r, 413)
	if !strings.Contains(r.errMsg(), "big.txt") {
		t.Errorf("413 does not name the file: %q", r.errMsg())
	}
	expect(t, ev.put("alice", "Local/alice/a.txt", strings.Repeat("a", 1000)), 200)
	expect(t, ev.put("alice", "Local/alice/b.txt", strings.Repeat("b", 1000)), 200)
	r = ev.put("alice", "Local/alice/c.txt", strings.Repeat("c", 1000))
	expect(t, r, 413)
	if !strings.Contains(r.errMsg(), "quota") {
		t.Errorf("quota 413 message: %q", r.errMsg())
	}
	// Shrinking a file is always allowed; replacing one counts only the growth.
	expect(t, ev.put("alice", "Local/alice/a.txt", "small"), 200)
	expect(t, ev.put("alice", "Local/alice/c.txt", strings.Repeat("c", 400)), 200)
	l, _ := ev.list("alice", "Local/alice")
	// What is on disk counts: her 1405 bytes and the 14 of the fixture's
	// Submissions/hw0/alice/main.py, written behind the API.
	if l.Quota == nil || l.Quota.Used != 1419 || l.Quota.Limit != 2500 {
		t.Errorf("quota in listing: %+v", l.Quota)
	}
	// Deleted files count until the trash expires; copies count.
	expect(t, ev.do("alice", "DELETE", q("/api/files", "Local/alice/b.txt"), nil), 200)
	expect(t, ev.jsonReq("alice", "POST", "/api/files/copy", map[string]string{"from": "Local/alice/c.txt", "to": "Local/alice/d.txt"}), 201)
	expect(t, ev.jsonReq("alice", "POST", "/api/files/copy", map[string]string{"from": "Local/alice/c.txt", "to": "Local/alice/e.txt"}), 201)
	expect(t, ev.jsonReq("alice", "POST", "/api/files/copy", map[string]string{"from": "Local/alice/c.txt", "to": "Local/alice/f.txt"}), 413)
	// Staff have no quota.
	expect(t, ev.put("prof", "Local/prof/p1.txt", strings.Repeat("p", 1000)), 200)
	expect(t, ev.put("prof", "Local/prof/p2.txt", strings.Repeat("p", 1000)), 200)
	expect(t, ev.put("prof", "Local/prof/p3.txt", strings.Repeat("p", 1000)), 200)
}

func TestCreateMoveCopyDeleteTrash(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	create := func(user, p, typ string) resp {
		return ev.jsonReq(user, "POST", "/api/files", map[string]string{"path": p, "type": typ})
	}
	expect(t, create("alice", "Local/alice/proj", "dir"), 201)
	expect(t, create("alice", "Local/alice/proj", "dir"), 409)
	expect(t, create("alice", "Local/alice/proj/main.py", "file"), 201)
	expect(t, create("alice", "Local/alice/proj/main.py", "file"), 409)
	expect(t, create("alice", "Local/alice/x", "symlink"), 400)
	expect(t, create("alice", "Lecture Notes/x.py", "file"), 403)
	expect(t, create("prof", "Assignments/hw3", "dir"), 403) // the course makes item folders
	expect(t, create("prof", "Assignments/hw3.py", "file"), 400)
	expect(t, create("prof", "Secret", "dir"), 400)
	// Bad JSON and unknown fields.
	expect(t, ev.do("alice", "POST", "/api/files", strings.NewReader("{"), "Content-Type", "application/json"), 400)
	expect(t, ev.jsonReq("alice", "POST", "/api/files", map[string]string{"path": "Local/alice/y", "type": "dir", "mode": "777"}), 400)

	expect(t, ev.put("alice", "Local/alice/proj/main.py", "v1\n"), 200)
	mv := func(user, from, to string) resp {
		return ev.jsonReq(user, "POST", "/api/files/move", map[string]string{"from": from, "to": to})
	}
	expect(t, mv("alice", "Local/alice/proj", "Local/alice/project"), 200)
	if ev.read("Local/alice/project/main.py") != "v1\n" {
		t.Fatal("move lost the file")
	}
	expect(t, mv("alice", "Local/alice/project", "Local/alice/project/inner"), 400)
	expect(t, mv("alice", "Local/alice", "Local/alice/x"), 403)
	expect(t, mv("alice", "Local/alice", "Local/alice2"), 404) // another user's place
	expect(t, mv("alice", "Local/alice/project", "Local/bob/stolen"), 404)
	expect(t, mv("alice", "Local/bob/secret.py", "Local/alice/secret.py"), 404)
	expect(t, mv("alice", "Lecture Notes/week1.pdf", "Local/alice/week1.pdf"), 403)
	expect(t, mv("prof", "Lecture Notes", "Lecture Notes 2"), 400)
	expect(t, mv("prof", "Local/alice", "Assignments/alice"), 403)
	expect(t, mv("alice", "Local/alice/project/main.py", "Submissions/hw1/alice/main.py"), 404) // folder missing
	// The revision history follows a move.
	expect(t, ev.put("alice", "Local/alice/project/main.py", "v2\n"), 200)
	expect(t, ev.put("alice", "Local/alice/other.py", "o\n"), 200)
	expect(t, mv("alice", "Local/alice/other.py", "Local/alice/project/main.py"), 409)
	expect(t, mv("alice", "Local/alice/project/main.py", "Local/alice/main.py"), 200)
	var revs struct{ Revisions []store.Revision }
	ev.do("alice", "GET", q("/api/files/revisions", "Local/alice/main.py"), nil).json(t, &revs)
	if len(revs.Revisions) != 2 {
		t.Fatalf("revisions after move: %+v", revs)
	}

	cp := func(user, from, to string) resp {
		return ev.jsonReq(user, "POST", "/api/files/copy", map[string]string{"from": from, "to": to})
	}
	expect(t, cp("alice", "Assignments/hw1", "Local/alice/hw1"), 201)
	if ev.read("Local/alice/hw1/starter.py") != "print('start')\n" {
		t.Fatal("copy of the assignment missing")
	}
	expect(t, cp("alice", "Assignments/hw2", "Local/alice/hw2"), 404)
	expect(t, cp("alice", "Local/bob/secret.py", "Local/alice/s.py"), 404)
	expect(t, cp("alice", "Assignments", "Local/alice/all"), 400)
	expect(t, cp("alice", "Local/alice/hw1", "Local/alice/hw1"), 400)
	expect(t, cp("alice", "Local/alice/main.py", "Local/alice/hw1/starter.py"), 409)
	expect(t, cp("prof", "Local/alice/main.py", "Lecture Notes/alice-main.py"), 201)

	// Delete goes to the trash and comes back.
	expect(t, ev.do("alice", "DELETE", q("/api/files", "Local/alice"), nil), 403)
	expect(t, ev.do("prof", "DELETE", q("/api/files", "Lecture Notes"), nil), 403)
	expect(t, ev.do("alice", "DELETE", q("/api/files", "Lecture Notes/week1.pdf"), nil), 403)
	expect(t, ev.do("alice", "DELETE", q("/api/files", "Local/bob/secret.py"), nil), 404)
	r := ev.do("alice", "DELETE", q("/api/files", "Local/alice/hw1"), nil)
	expect(t, r, 200)
	var del struct {
		TrashID int64 `json:"trash_id"`
	}
	r.json(t, &del)
	if _, err := os.Stat(filepath.Join(ev.dir, "Local/alice/hw1")); !os.IsNotExist(err) {
		t.Fatal("deleted folder still there")
	}
	var trash struct{ Entries []TrashItem }
	ev.do("alice", "GET", "/api/files/trash", nil).json(t, &trash)
	if len(trash.Entries) != 1 || trash.Entries[0].Path != "Local/alice/hw1" || trash.Entries[0].Type != "dir" || trash.Entries[0].ID != del.TrashID {
		t.Fatalf("trash: %+v", trash)
	}
	var bobTrash struct{ Entries []TrashItem }
	ev.do("bob", "GET", "/api/files/trash", nil).json(t, &bobTrash)
	if len(bobTrash.Entries) != 0 {
		t.Fatal("bob sees alice's trash")
	}
	expect(t, ev.jsonReq("bob", "POST", "/api/files/trash/restore", map[string]any{"id": del.TrashID}), 404)
	expect(t, create("alice", "Local/alice/hw1", "dir"), 201)
	expect(t, ev.jsonReq("alice", "POST", "/api/files/trash/restore", map[string]any{"id": del.TrashID}), 409)
	expect(t, ev.do("alice", "DELETE", q("/api/files", "Local/alice/hw1"), nil), 200)
	expect(t, ev.jsonReq("alice", "POST", "/api/files/trash/restore", map[string]any{"id": del.TrashID}), 200)
	if ev.read("Local/alice/hw1/starter.py") != "print('start')\n" {
		t.Fatal("restore from trash lost the content")
	}
	// Trash past its retention is emptied by Reconcile.
	expect(t, ev.do("alice", "DELETE", q("/api/files", "Local/alice/hw1"), nil), 200)
	ev.clock.Advance(DefaultTrashRetention + time.Hour)
	if err := ev.ws.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev.do("alice", "GET", "/api/files/trash", nil).json(t, &trash)
	left, _ := os.ReadDir(filepath.Join(ev.dir, trashDir, "alice"))
	if len(left) != 0 || len(trash.Entries) != 0 {
		t.Fatalf("expired trash not emptied: %d on disk, %d listed", len(left), len(trash.Entries))
	}
}

func TestRevisionsAndRestore(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.RevisionsKept = 3 })
	p := "Local/alice/essay.py"
	for i := 1; i <= 4; i++ {
		expect(t, ev.put("alice", p, fmt.Sprintf("version %d\n", i)), 200)
	}
	var revs struct{ Revisions []store.Revision }
	ev.do("alice", "GET", q("/api/files/revisions", p), nil).json(t, &revs)
	if len(revs.Revisions) != 3 || revs.Revisions[0].Hash != fstree.HashOf([]byte("version 4\n")) || revs.Revisions[0].Author != "alice" {
		t.Fatalf("revisions: %+v", revs.Revisions)
	}
	oldest := revs.Revisions[2] // version 2
	r := ev.jsonReq("alice", "POST", "/api/files/restore", map[string]any{"path": p, "revision": oldest.ID})
	expect(t, r, 200)
	if ev.read(p) != "version 2\n" {
		t.Fatalf("restore wrote %q", ev.read(p))
	}
	// The id may come as a string too; a revision of another path is 404.
	// Keeping 3, restoring pushed version 2's old revision out.
	expect(t, ev.jsonReq("alice", "POST", "/api/files/restore", map[string]any{"path": p, "revision": oldest.ID}), 404)
	ev.do("alice", "GET", q("/api/files/revisions", p), nil).json(t, &revs)
	v3 := revs.Revisions[2]
	// A revision can be read, to compare before restoring it; inert like the file.
	rc := ev.do("alice", "GET", q("/api/files/revisions/content", p)+"&revision="+fmt.Sprint(v3.ID), nil)
	expect(t, rc, 200)
	if rc.Body.String() != "version 3\n" || !strings.Contains(rc.Header().Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("revision content: %q %v", rc.Body.String(), rc.Header())
	}
	expect(t, ev.do("bob", "GET", q("/api/files/revisions/content", p)+"&revision="+fmt.Sprint(v3.ID), nil), 404)
	expect(t, ev.do("alice", "GET", q("/api/files/revisions/content", "Local/alice/other.py")+"&revision="+fmt.Sprint(v3.ID), nil), 404)
	expect(t, ev.do("alice", "GET", q("/api/files/revisions/content", p)+"&revision=x", nil), 400)
	expect(t, ev.jsonReq("alice", "POST", "/api/files/restore", map[string]any{"path": p, "revision": fmt.Sprint(v3.ID)}), 200)
	if ev.read(p) != "version 3\n" {
		t.Fatalf("restore by string id wrote %q", ev.read(p))
	}
	expect(t, ev.jsonReq("alice", "POST", "/api/files/restore", map[string]any{"path": "Local/alice/other.py", "revision": oldest.ID}), 404)
	expect(t, ev.jsonReq("bob", "POST", "/api/files/restore", map[string]any{"path": p, "revision": oldest.ID}), 404)
	expect(t, ev.jsonReq("alice", "POST", "/api/files/restore", map[string]any{"path": p, "revision": "x"}), 400)
	expect(t, ev.do("bob", "GET", q("/api/files/revisions", p), nil), 404)
	// A version a program wrote is kept before the editor overwrites it.
	ev.disk(p, "written by the program\n")
	expect(t, ev.put("alice", p, "editor again\n"), 200)
	ev.do("alice", "GET", q("/api/files/revisions", p), nil).json(t, &revs)
	if len(revs.Revisions) < 2 || revs.Revisions[1].Author != "(disk)" || revs.Revisions[1].Hash != fstree.HashOf([]byte("written by the program\n")) {
		t.Fatalf("program's version not kept: %+v", revs.Revisions)
	}
	// Binary files have no revisions.
	expect(t, ev.put("alice", "Local/alice/img.png", "\x89PNG\x00\x00"), 200)
	ev.do("alice", "GET", q("/api/files/revisions", "Local/alice/img.png"), nil).json(t, &revs)
	if len(revs.Revisions) != 0 {
		t.Fatalf("binary file got revisions: %+v", revs.Revisions)
	}
}

func multipartBody(t testing.TB, files map[string]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		fw, err := mw.CreateFormFile("files", name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(fw, files[name])
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func (ev *env) upload(user, dir string, files map[string]string) resp {
	ev.t.Helper()
	body, ct := multipartBody(ev.t, files)
	return ev.do(user, "POST", q("/api/files/upload", dir), body, "Content-Type", ct)
}

func TestUpload(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.MaxFileBytes = 100 })
	r := ev.upload("alice", "Local/alice", map[string]string{"a.py": "print(1)\n", "data.csv": "x,y\n1,2\n", "img.png": "\x89PNG"})
	expect(t, r, 201)
	var res struct{ Files []Saved }
	r.json(t, &res)
	if len(res.Files) != 3 || ev.read("Local/alice/data.csv") != "x,y\n1,2\n" {
		t.Fatalf("upload: %+v", res)
	}
	// One file too big: clear 413 naming it, and nothing of the upload lands.
	r = ev.upload("alice", "Local/alice", map[string]string{"b.py": "ok", "huge.bin": strings.Repeat("h", 101)})
	expect(t, r, 413)
	if !strings.Contains(r.errMsg(), "huge.bin") {
		t.Errorf("413 does not name the file: %q", r.errMsg())
	}
	if _, err := os.Stat(filepath.Join(ev.dir, "Local/alice/b.py")); !os.IsNotExist(err) {
		t.Error("part of a refused upload was written")
	}
	expect(t, ev.upload("alice", "Lecture Notes", map[string]string{"a.py": "x"}), 403)
	expect(t, ev.upload("alice", "Local/bob", map[string]string{"a.py": "x"}), 404)
	expect(t, ev.upload("alice", "Local/alice", map[string]string{".pyide-tmp-x": "x"}), 400)
	expect(t, ev.upload("prof", "Assignments", map[string]string{"a.py": "x"}), 400)
	expect(t, ev.do("alice", "POST", q("/api/files/upload", "Local/alice"), strings.NewReader("x"), "Content-Type", "text/plain"), 400)
	// Upload overwrites, keeping the old text as a revision.
	expect(t, ev.upload("alice", "Local/alice", map[string]string{"a.py": "print(2)\n"}), 201)
	var revs struct{ Revisions []store.Revision }
	ev.do("alice", "GET", q("/api/files/revisions", "Local/alice/a.py"), nil).json(t, &revs)
	if len(revs.Revisions) != 2 {
		t.Errorf("revisions after re-upload: %+v", revs.Revisions)
	}
	// Left-over temporary files: none.
	ents, _ := os.ReadDir(filepath.Join(ev.dir, "Local/alice"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), fstree.TempPrefix) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func zipNames(t testing.TB, b []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	var out []string
	for _, f := range zr.File {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

func TestDownload(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	r := ev.do("alice", "GET", q("/api/files/download", "Lecture Notes/week1.pdf"), nil)
	expect(t, r, 200)
	if !strings.HasPrefix(r.Header().Get("Content-Disposition"), "attachment") || r.Body.String() != "%PDF-1.4 lecture" {
		t.Fatalf("file download: %v %q", r.Header(), r.Body.String())
	}
	r = ev.do("alice", "GET", q("/api/files/download", "Assignments"), nil)
	expect(t, r, 200)
	if got := strings.Join(zipNames(t, r.Body.Bytes()), " "); got != "hw1/ hw1/starter.py" {
		t.Fatalf("student's zip of Assignments: %s", got)
	}
	r = ev.do("alice", "GET", q("/api/files/download", ""), nil)
	expect(t, r, 200)
	for _, n := range zipNames(t, r.Body.Bytes()) {
		if strings.Contains(n, "bob") || strings.Contains(n, "hw2") || strings.Contains(n, "final") {
			t.Errorf("student's zip of everything holds %s", n)
		}
	}
	expect(t, ev.do("alice", "GET", q("/api/files/download", "Local/bob"), nil), 404)
	r = ev.do("prof", "GET", q("/api/files/download", "Local/bob"), nil)
	expect(t, r, 200)
	if got := strings.Join(zipNames(t, r.Body.Bytes()), " "); got != "secret.py" {
		t.Fatalf("professor's zip of bob: %s", got)
	}
}

func TestSymlinksNeverFollowed(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	links := map[string]string{
		"tobob":     "../bob",
		"tobobfile": "../bob/secret.py",
		"passwd":    "/etc/passwd",
		"dataroot":  ev.dir,
		"updots":    "../../../../../../..",
		"notes":     "../../Lecture Notes",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(ev.dir, "Local/alice", name)); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := ev.list("alice", "Local/alice")
	for _, e := range l.Entries {
		if _, isLink := links[e.Name]; isLink && (!e.Link || e.Type != "file" || e.Writable) {
			t.Errorf("link %s listed as %+v", e.Name, e)
		}
	}
	for name := range links {
		p := "Local/alice/" + name
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				what string
				r    resp
			}{
				{"list", ev.do("alice", "GET", q("/api/files", p), nil)},
				{"list below", ev.do("alice", "GET", q("/api/files", p+"/etc"), nil)},
				{"read", ev.do("alice", "GET", q("/api/files/content", p), nil)},
				{"read below", ev.do("alice", "GET", q("/api/files/content", p+"/secret.py"), nil)},
				{"write below", ev.put("alice", p+"/secret.py", "pwned")},
				{"create below", ev.jsonReq("alice", "POST", "/api/files", map[string]string{"path": p + "/x", "type": "dir"})},
				{"move below", ev.jsonReq("alice", "POST", "/api/files/move", map[string]string{"from": p + "/secret.py", "to": "Local/alice/s1"})},
				{"move into", ev.jsonReq("alice", "POST", "/api/files/move", map[string]string{"from": "Local/alice/.keep", "to": p + "/x"})},
				{"copy", ev.jsonReq("alice", "POST", "/api/files/copy", map[string]string{"from": p, "to": "Local/alice/c-" + name})},
				{"copy below", ev.jsonReq("alice", "POST", "/api/files/copy", map[string]string{"from": p + "/secret.py", "to": "Local/alice/c2-" + name})},
				{"delete below", ev.do("alice", "DELETE", q("/api/files", p+"/secret.py"), nil)},
				{"download", ev.do("alice", "GET", q("/api/files/download", p), nil)},
				{"download below", ev.do("alice", "GET", q("/api/files/download", p+"/secret.py"), nil)},
				{"upload into", ev.upload("alice", p, map[string]string{"x.py": "x"})},
				{"revisions below", ev.do("alice", "GET", q("/api/files/revisions", p+"/secret.py"), nil)},
			} {
				// Revisions are by tree path, so that one may answer an
				// empty list; nothing else may succeed.
				harmless := tc.what == "revisions below" && tc.r.Body.String() == `{"revisions":[]}`+"\n"
				if tc.r.Code < 400 && !harmless {
					t.Errorf("%s through %s: %d %s", tc.what, name, tc.r.Code, tc.r.Body.String())
				}
			}
		})
	}
	// Downloading alice's whole folder as zip holds no linked content.
	r := ev.do("alice", "GET", q("/api/files/download", "Local/alice"), nil)
	expect(t, r, 200)
	for _, n := range zipNames(t, r.Body.Bytes()) {
		if strings.Contains(n, "/") || n == "passwd" || n == "tobobfile" {
			t.Errorf("zip of alice's folder holds %s", n)
		}
	}
	// Deleting a link removes the link, not its target.
	expect(t, ev.do("alice", "DELETE", q("/api/files", "Local/alice/tobobfile"), nil), 200)
	expect(t, ev.do("alice", "DELETE", q("/api/files", "Local/alice/tobob"), nil), 200)
	// Writing at a link's name is refused like reading it.
	expect(t, ev.put("alice", "Local/alice/passwd", "mine"), 403)
	if ev.read("Local/bob/secret.py") != "bob's secret\n" {
		t.Fatal("bob's file changed")
	}
	if b, err := os.ReadFile("/etc/passwd"); err != nil || string(b) == "mine" {
		t.Fatal("/etc/passwd changed")
	}
	// A link in a folder the professor reads is not followed for them either.
	if err := os.Symlink("/etc", filepath.Join(ev.dir, "Lecture Notes", "etc")); err != nil {
		t.Fatal(err)
	}
	if r := ev.do("prof", "GET", q("/api/files/content", "Lecture Notes/etc/passwd"), nil); r.Code < 400 {
		t.Fatalf("professor read through a link: %d", r.Code)
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	expect(t, ev.put("alice", "Local/alice/own.py", "x"), 200)
	expect(t, ev.put("alice", "Submissions/hw1/alice", "x"), 400) // depth: files not allowed in Submissions/x
	expect(t, ev.jsonReq("alice", "POST", "/api/files", map[string]string{"path": "Submissions/hw1/alice", "type": "dir"}), 403)
	if err := ev.ws.EnsureSubmissionFolder("hw1", "alice"); err != nil {
		t.Fatal(err)
	}
	expect(t, ev.put("alice", "Submissions/hw1/alice/main.py", "x"), 200)
	expect(t, ev.put("prof", "Lecture Notes/week2.md", "x"), 200)
	expect(t, ev.do("prof", "GET", q("/api/files/content", "Local/bob/secret.py"), nil), 200)
	expect(t, ev.do("prof", "DELETE", q("/api/files", "Lecture Notes/week2.md"), nil), 200)
	expect(t, ev.upload("prof", "Assignments/hw1", map[string]string{"data.csv": "1,2\n"}), 201)
	entries, err := ev.db.AuditLog(context.Background(), "file.", 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Target)
	}
	sort.Strings(got)
	want := []string{
		"alice file.write Submissions/hw1/alice/main.py",
		"prof file.delete Lecture Notes/week2.md",
		"prof file.read Local/bob/secret.py",
		"prof file.upload Assignments/hw1",
		"prof file.write Lecture Notes/week2.md",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	ctx := context.Background()
	expect(t, ev.put("alice", "Local/alice/a.py", "v1"), 200)
	// A sandbox changes a file, adds one and removes one.
	ev.disk("Local/alice/a.py", "changed on disk")
	ev.disk("Local/alice/new.txt", "made by a program")
	expect(t, ev.put("alice", "Local/alice/b.py", "b"), 200)
	if err := os.Remove(filepath.Join(ev.dir, "Local/alice/b.py")); err != nil {
		t.Fatal(err)
	}
	// Listing the folder reconciles it.
	ev.list("alice", "Local/alice")
	m, err := ev.db.FileByPath(ctx, "Local/alice/a.py")
	if err != nil || m.Hash != fstree.HashOf([]byte("changed on disk")) || m.Size != 15 || m.Owner != "alice" {
		t.Fatalf("a.py after listing: %+v %v", m, err)
	}
	if _, err := ev.db.FileByPath(ctx, "Local/alice/new.txt"); err != nil {
		t.Fatalf("new file not picked up: %v", err)
	}
	if _, err := ev.db.FileByPath(ctx, "Local/alice/b.py"); err == nil {
		t.Fatal("removed file still known")
	}
	// Reconcile covers folders nobody listed.
	ev.disk("Local/bob/deep/er/x.py", "xx")
	if err := ev.ws.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := ev.db.FileByPath(ctx, "Local/bob/deep/er/x.py"); err != nil || m.Owner != "bob" {
		t.Fatalf("deep file: %+v %v", m, err)
	}
	if used, _ := ev.db.QuotaUsed(ctx, "bob"); used != int64(len("bob's secret\n")+2) {
		t.Fatalf("bob's usage %d", used)
	}
	if m, err := ev.db.FileByPath(ctx, "Assignments/hw2/solution.py"); err != nil || m.Owner != "" {
		t.Fatalf("course file: %+v %v", m, err)
	}
}

func mountMap(t *testing.T, ws *Workspace, ms []Mount) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, m := range ms {
		rel, err := filepath.Rel(ws.absData, m.Source)
		if err != nil || !filepath.IsAbs(m.Source) {
			t.Fatalf("source %q", m.Source)
		}
		if m.Dev == 0 && m.Ino == 0 {
			t.Errorf("mount %s has no identity", m.Source)
		}
		got[m.Target] = fmt.Sprintf("%s ro=%v", rel, m.ReadOnly)
	}
	return got
}

func TestRunTarget(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	// A folder replaced by a link (a program could, before staff mounts
	// were read-only) is never mounted: Docker would follow it.
	if err := os.Symlink("/etc", filepath.Join(ev.dir, "Assignments", "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../Local/bob", filepath.Join(ev.dir, "Submissions", "hw0", "bob")); err != nil {
		t.Fatal(err)
	}
	ev.disk("Local/alice/hw/a.py", "print('a')\n")
	ev.disk("Submissions/hw1/bob/main.py", "print('submitted')\n")
	ms, err := ev.ws.Mounts(alice)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/home/student":           "Local/alice ro=false",
		"/course/Lecture Notes":   "Lecture Notes ro=true",
		"/course/Assignments/hw1": "Assignments/hw1 ro=true",
		"/course/Tests/midterm":   "Tests/midterm ro=true",
		"/submissions/hw0":        "Submissions/hw0/alice ro=true",
		"/submissions/hw1":        "Submissions/hw1/alice ro=false",
	}
	if got := mountMap(t, ev.ws, ms); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alice's mounts:\n%v\nwant\n%v", got, want)
	}
	if fi, err := os.Stat(filepath.Join(ev.dir, "Submissions/hw1/alice")); err != nil || !fi.IsDir() {
		t.Fatal("open submission folder not created")
	}
	ms, _ = ev.ws.Mounts(bob)
	for _, m := range ms {
		if strings.Contains(m.Source, "evil") || m.Target == "/submissions/hw0" {
			t.Errorf("bob mounts a link: %+v", m)
		}
	}
	// Staff's own sandbox: course material read-only, nothing of students.
	ms, _ = ev.ws.Mounts(prof)
	want = map[string]string{
		"/home/student":         "Local/prof ro=false",
		"/course/Lecture Notes": "Lecture Notes ro=true",
		"/course/Assignments":   "Assignments ro=true",
		"/course/Tests":         "Tests ro=true",
		"/course/Submissions":   "Submissions ro=true",
	}
	if got := mountMap(t, ev.ws, ms); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the professor's mounts:\n%v\nwant\n%v", got, want)
	}
	// A teaching assistant's own sandbox is staff's: course material read-only.
	ms, _ = ev.ws.Mounts(tina)
	want["/home/student"] = "Local/tina ro=false"
	if got := mountMap(t, ev.ws, ms); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the teaching assistant's mounts:\n%v\nwant\n%v", got, want)
	}
	grading := map[string]string{
		"/home/student":           "Local/bob ro=true",
		"/course/Lecture Notes":   "Lecture Notes ro=true",
		"/course/Assignments/hw1": "Assignments/hw1 ro=true",
	}
	for _, tc := range []struct {
		user    auth.User
		path    string
		want    string // the container path; "" = refused
		grading map[string]string
	}{
		{alice, "Local/alice/hw/a.py", "/home/student/hw/a.py", nil},
		{alice, "Local/alice", "", nil},
		{alice, "Local/alice/hw", "", nil},
		{alice, "Lecture Notes/week1.pdf", "/course/Lecture Notes/week1.pdf", nil},
		{alice, "Assignments/hw1/starter.py", "/course/Assignments/hw1/starter.py", nil},
		{alice, "Submissions/hw0/alice/main.py", "/submissions/hw0/main.py", nil},
		{alice, "Assignments/hw2/solution.py", "", nil},
		{alice, "Local/bob/secret.py", "", nil},
		{alice, "Tests/final/q1.py", "", nil},
		{alice, "Local/alice/missing.py", "", nil},
		{prof, "Assignments/hw2/solution.py", "/course/Assignments/hw2/solution.py", nil},
		// Staff run a student's file in a grading sandbox.
		{prof, "Local/bob/secret.py", "/home/student/secret.py", grading},
		{prof, "Submissions/hw1/bob/main.py", "/home/student/main.py", map[string]string{
			"/home/student":           "Submissions/hw1/bob ro=true",
			"/course/Lecture Notes":   "Lecture Notes ro=true",
			"/course/Assignments/hw1": "Assignments/hw1 ro=true",
		}},
		{admin, "Local/bob/secret.py", "/home/student/secret.py", grading},
		// A teaching assistant too: the student's folder read-only.
		{tina, "Local/bob/secret.py", "/home/student/secret.py", grading},
		{tina, "Assignments/hw2/solution.py", "/course/Assignments/hw2/solution.py", nil},
	} {
		got, err := ev.ws.RunTarget(tc.user, tc.path)
		if got.File != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("%s: RunTarget(%q) = %q, %v; want %q", tc.user.Username, tc.path, got.File, err, tc.want)
			continue
		}
		if got.Grading != (tc.grading != nil) {
			t.Errorf("%s: RunTarget(%q).Grading = %v", tc.user.Username, tc.path, got.Grading)
		}
		if tc.grading != nil {
			if m := mountMap(t, ev.ws, got.Mounts); fmt.Sprint(m) != fmt.Sprint(tc.grading) {
				t.Errorf("%s running %s: mounts\n%v\nwant\n%v", tc.user.Username, tc.path, m, tc.grading)
			}
		}
	}
	if _, err := ev.ws.RunTarget(auth.User{Username: "../x", Role: auth.RoleStudent}, ""); err == nil {
		t.Error("a sandbox for a bad user name")
	}
	if err := ev.ws.EnsureUserDirs("Alice"); err == nil {
		t.Error("EnsureUserDirs accepted a bad name")
	}
}

func TestChownToSandboxUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs only as root: a server that is not root chowns only with CAP_CHOWN")
	}
	t.Parallel()
	ev := newEnv(t, func(o *Options) { o.SandboxUID = 1234 })
	expect(t, ev.put("alice", "Local/alice/a.py", "x"), 200)
	expect(t, ev.jsonReq("alice", "POST", "/api/files", map[string]string{"path": "Local/alice/d", "type": "dir"}), 201)
	if err := ev.ws.EnsureUserDirs("carol"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"Local/alice/a.py", "Local/alice/d", "Local/carol"} {
		uid, err := ownerUID(filepath.Join(ev.dir, p))
		if err != nil || uid != 1234 {
			t.Errorf("%s owned by %d (%v), want 1234", p, uid, err)
		}
	}
	// Course material is the server's: sandboxes mount it read-only.
	for _, p := range []string{"Lecture Notes", "Assignments", "Tests", "Submissions", ".trash"} {
		uid, err := ownerUID(filepath.Join(ev.dir, p))
		if err != nil || uid != os.Geteuid() {
			t.Errorf("%s owned by %d (%v), want the server (%d)", p, uid, err, os.Geteuid())
		}
	}
}

func TestConcurrentSavesOneWins(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	r := ev.put("alice", "Local/alice/race.py", "base\n")
	expect(t, r, 200)
	tag := r.Header().Get("ETag")
	const writers = 10
	codes := make(chan int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- ev.put("alice", "Local/alice/race.py", fmt.Sprintf("writer %d\n", i), "If-Match", tag).Code
		}()
	}
	wg.Wait()
	close(codes)
	won := 0
	for c := range codes {
		switch c {
		case 200:
			won++
		case 409:
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won with the same version, want exactly 1", won)
	}
}
