package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/pythonide/pyide/pkg/admin"
	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/datadir"
	"github.com/pythonide/pyide/pkg/pgcluster"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
)

// oldDataFolder lays out data the way pyide did before the private folder:
// at the top, an embedded cluster that trusts every local connection (no
// password set, none kept) and that a killed server left running, holding
// the user olduser; a secret key, a stale admin socket, backups and a file
// of generated passwords.
func oldDataFolder(t *testing.T, data string) {
	t.Helper()
	ctx := context.Background()
	// Readable, so that a cluster running as another user can pass.
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(data, "pgdata")
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: old, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pgcluster.StopLeftover(context.Background(), old, "") })
	db, err := store.Open(ctx, store.Options{URL: c.URL(""), MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	hash, err := auth.NewHasher(10, 1).Hash(ctx, "old user's password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, store.User{Username: "olduser", Role: auth.RoleStudent, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Back to what an older pyide made: trust, no password.
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE pyide PASSWORD NULL"); err != nil {
		t.Fatal(err)
	}
	// Written over the file, so it keeps its owner (the cluster's user).
	if err := os.WriteFile(filepath.Join(old, "data", "pg_hba.conf"), []byte("local all all trust\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := os.Remove(filepath.Join(old, "password")); err != nil {
		t.Fatal(err)
	}

	mk := func(rel, body string, mode os.FileMode) {
		p := filepath.Join(data, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("secret.key", "0123456789abcdef\n", 0o600)
	mk("backups/pyide-backup-20250101T000000Z.tar.gz", "an old archive", 0o600)
	mk("passwords-20250101-000000.csv", "username,password\nolduser,old user's password\n", 0o600)
	mk("Local/olduser/hello.py", "print('hello')\n", 0o644)
	ln, err := net.Listen("unix", filepath.Join(data, "pyide.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // a killed server's socket stays
	ln.Close()
}

// TestUpgradeOldDataFolder: a data folder laid out the old way, its
// cluster still running from a killed server, is moved into the private
// folder on start; the course's data survives, the cluster asks for a
// password from now on, and nothing secret is left outside.
func TestUpgradeOldDataFolder(t *testing.T) {
	data := filepath.Join(reachableTempDir(t), "data")
	oldDataFolder(t, data)
	s := startServe(t, map[string]string{"IDE_DATA_PATH": data, "DATABASE_URL": "", "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
	lay := datadir.Layout{Root: data}

	entries, err := os.ReadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if datadir.ServerPrivate(e.Name()) && e.Name() != datadir.PrivateName {
			t.Errorf("%s is still at the top of the data folder", e.Name())
		}
	}
	for _, p := range []string{
		filepath.Join(lay.Cluster(), "data", "PG_VERSION"),
		filepath.Join(lay.Backups(), "pyide-backup-20250101T000000Z.tar.gz"),
		filepath.Join(lay.Private(), "passwords-20250101-000000.csv"),
		filepath.Join(data, "Local", "olduser", "hello.py"),
	} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after the upgrade: %v", err)
		}
	}
	for _, want := range []string{"moved the embedded database", "moved the backups", "removed the old admin socket",
		"deleted the old secret key", "moved generated passwords", "now asks for the password"} {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	hba, err := os.ReadFile(filepath.Join(lay.Cluster(), "data", "pg_hba.conf"))
	if err != nil || strings.Contains(string(hba), "trust") || !strings.Contains(string(hba), "scram-sha-256") {
		t.Errorf("pg_hba.conf after the upgrade: %v\n%s", err, hba)
	}
	// The user made before the upgrade logs in: the database came along.
	resp, err := http.Post(s.base+"/api/auth/login", "application/json", strings.NewReader(`{"username":"olduser","password":"old user's password"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("olduser's login after the upgrade: %d", resp.StatusCode)
	}
}

// TestAdminSocketOwnersOnly: the admin socket answers root and the
// server's own uid, whatever the socket file's mode; anyone else's
// connection is closed unanswered, and logged.
func TestAdminSocketOwnersOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can connect as another uid")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (it connects as another uid)")
	}
	path := filepath.Join(reachableTempDir(t), "admin.sock")
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveAdminSocket(ctx, path, admin.New(admin.Options{}), slog.New(slog.NewTextHandler(logs, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveAdminSocket: %v", err)
		}
	})
	servertest.Eventually(t, 10*time.Second, "the admin socket", func() bool {
		st, err := os.Stat(path)
		return err == nil && st.Mode().Perm() == 0o600
	})
	// A mistake in a mode must not open it: only the peer check stands.
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	ask := func(cred *syscall.Credential) (string, error) {
		cmd := exec.Command(curl, "-sS", "--max-time", "10", "--unix-socket", path, "http://pyide/api/admin/sandboxes")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Root is answered (Docker is not wired here, so the answer says so).
	if out, err := ask(nil); err != nil || !strings.Contains(out, "execution is unavailable") {
		t.Fatalf("as root: %q %v", out, err)
	}
	for _, uid := range []uint32{1000, 65534} {
		out, err := ask(&syscall.Credential{Uid: uid, Gid: uid})
		if err == nil || strings.Contains(out, "unavailable") {
			t.Errorf("uid %d was answered: %q %v", uid, out, err)
		}
		servertest.Eventually(t, 5*time.Second, "the refusal in the log", func() bool {
			return regexp.MustCompile(`refused a connection from another user.* uid=` + fmt.Sprint(uid)).MatchString(logs.String())
		})
	}
}

// archiveNames lists the entries of a backup archive.
func archiveNames(t *testing.T, archive string) []string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// TestImportPasswordsStayOutOfTheDataFolder: generated passwords are
// printed, or written to a new 0600 file the operator names outside the
// data folder; a bad file is refused before anyone is created.
func TestImportPasswordsStayOutOfTheDataFolder(t *testing.T) {
	c := newCLI(t)
	roster := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(roster, []byte("ann,Ann,student\nben,Ben,student\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(t.TempDir(), "taken.csv")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(c.data, "Local"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "into-data")
	if err := os.Symlink(c.data, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"in the data folder", filepath.Join(c.data, "pw.csv"), "inside the data folder"},
		{"deeper in it", filepath.Join(c.data, "Local", "pw.csv"), "inside the data folder"},
		{"through a link", filepath.Join(link, "pw.csv"), "inside the data folder"},
		{"an existing file", existing, "exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.run("", "user", "import", roster, "--passwords", tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, err := c.db().UserByName(context.Background(), "ann"); err == nil {
				t.Fatal("users were created although their passwords had nowhere to go")
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("an existing file was overwritten: %q", b)
	}

	out, err := c.run("", "user", "import", roster)
	if err != nil {
		t.Fatal(err)
	}
	db := c.db()
	hasher := auth.NewHasher(10, 1)
	for _, name := range []string{"ann", "ben"} {
		m := regexp.MustCompile(`(?m)^` + name + `\s+(\S+)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no password printed for %s:\n%s", name, out)
		}
		u, err := db.UserByName(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := hasher.Compare(context.Background(), u.PasswordHash, m[1]); !ok {
			t.Errorf("the printed password of %s is not theirs", name)
		}
		// Nowhere in the data folder.
		_ = filepath.WalkDir(c.data, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), m[1]) {
					t.Errorf("%s holds a generated password", p)
				}
			}
			return nil
		})
	}
}

// TestOldPasswordFilesLeaveBackups: password files an older pyide wrote
// into the data folder are moved into the private folder, so no backup
// holds them; the old secret key is gone.
func TestOldPasswordFilesLeaveBackups(t *testing.T) {
	c := newCLI(t)
	for name, body := range map[string]string{
		"passwords-20250101-000000.csv": "username,password\nann,first password\n",
		"passwords-20250102-000000.txt": "username,password\nben,second password\n",
		"secret.key":                    "0123456789abcdef\n",
	} {
		if err := os.WriteFile(filepath.Join(c.data, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.run("", "backup", "--out", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	archive := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	for _, name := range archiveNames(t, archive) {
		if strings.Contains(name, "passwords-") || strings.Contains(name, "secret.key") || strings.Contains(name, datadir.PrivateName) {
			t.Errorf("the backup holds %s", name)
		}
	}
	private := datadir.Layout{Root: c.data}.Private()
	for _, name := range []string{"passwords-20250101-000000.csv", "passwords-20250102-000000.txt"} {
		st, err := os.Stat(filepath.Join(private, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s in the private folder: %v %v", name, st, err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.data, "secret.key")); err == nil {
		t.Error("the old secret key is still there")
	}
}

// openREPL logs in as user and runs a program that ends in the REPL; the
// socket stays open for the caller.
func openREPL(t *testing.T, s *served, user, password string) *websocket.Conn {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := client.Post(s.base+"/api/auth/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		MustChange bool `json:"must_change_password"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login %s: %d", user, resp.StatusCode)
	}
	if login.MustChange {
		// A one-time password: the student chooses their own first.
		body, _ := json.Marshal(map[string]string{"current_password": password, "new_password": password + " (mine)"})
		req, _ := http.NewRequest("POST", s.base+"/api/auth/password", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", s.base)
		if resp, err = client.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s choosing a password: %d", user, resp.StatusCode)
		}
	}
	path := "Local/" + user + "/loop.py"
	req, _ := http.NewRequest("PUT", s.base+"/api/files/content?path="+path, strings.NewReader("n = 1\nprint('ready', n)\n"))
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("saving %s: %d", path, resp.StatusCode)
	}
	d := websocket.Dialer{Jar: jar, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial(strings.Replace(s.base, "http", "ws", 1)+"/api/ws?tab=t1", http.Header{"Origin": {s.base}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.WriteJSON(map[string]string{"type": "run", "path": path})
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	var out strings.Builder
	for !strings.HasSuffix(out.String(), ">>> ") {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("%s's run: %v (output %q)", user, err, out.String())
		}
		if kind == websocket.BinaryMessage {
			out.Write(msg)
		}
	}
	return conn
}

// closedWithin waits for the server to close conn and returns the close
// code and how long it took.
func closedWithin(conn *websocket.Conn, limit time.Duration) (code int, err error) {
	_ = conn.SetReadDeadline(time.Now().Add(limit))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, nil
			}
			return 0, err
		}
	}
}

// containersOf lists the live sandbox containers of user.
func containersOf(t *testing.T, user string) string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=pyide.managed=true", "--filter", "label=pyide.user="+user).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestCLIThroughTheRunningServer: `pyide user passwd` and `user disable`
// reach the running server, so a student's open socket closes and their
// sandboxes end at once, not when the next check comes round.
func TestCLIThroughTheRunningServer(t *testing.T) {
	sandboxtest.RequireDocker(t)
	s := startServe(t, map[string]string{"DATABASE_URL": "", "SANDBOX_IMAGE": sandboxtest.Image()})
	adminClient := s.login(t)
	resp, err := adminClient.Post(s.base+"/api/admin/users", "application/json", strings.NewReader(`{"username":"stud","display_name":"Stud","role":"student"}`))
	if err != nil {
		t.Fatal(err)
	}
	var added struct {
		Passwords map[string]string `json:"passwords"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&added)
	resp.Body.Close()
	if added.Passwords["stud"] == "" {
		t.Fatalf("adding stud: %d", resp.StatusCode)
	}
	cli := func(stdin string, args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		if err := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut); err != nil {
			t.Fatalf("pyide %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		if strings.Contains(out.String(), "no server is running") {
			t.Fatalf("pyide %s went around the running server:\n%s", strings.Join(args, " "), out.String())
		}
		return out.String()
	}

	conn := openREPL(t, s, "stud", added.Passwords["stud"])
	start := time.Now()
	cli("a new password for stud\n", "user", "passwd", "stud")
	if code, err := closedWithin(conn, time.Second); code != 4001 {
		t.Fatalf("after passwd the socket was not closed within a second of the command (%v): code %d, %v", time.Since(start), code, err)
	}

	conn = openREPL(t, s, "stud", "a new password for stud")
	if containersOf(t, "stud") == "" {
		t.Fatal("no sandbox runs for stud")
	}
	start = time.Now()
	if out := cli("", "user", "disable", "stud"); !strings.Contains(out, "disabled stud") {
		t.Fatalf("disable printed %q", out)
	}
	if code, err := closedWithin(conn, time.Second-time.Since(start)); code != 4001 {
		t.Fatalf("after disable the socket was not closed within a second (%v): code %d, %v", time.Since(start), code, err)
	}
	for containersOf(t, "stud") != "" {
		if time.Since(start) > time.Second {
			t.Fatalf("stud's containers still exist %v after disable: %s", time.Since(start), containersOf(t, "stud"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("disable: socket closed and containers gone %v after the command started", time.Since(start).Round(time.Millisecond))
	resp, err = http.Post(s.base+"/api/auth/login", "application/json", strings.NewReader(`{"username":"stud","password":"a new password for stud"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("a disabled user logged in: %d", resp.StatusCode)
	}
}
