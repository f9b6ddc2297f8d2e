package datadir

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func owner(t *testing.T, p string) (uid, gid int, mode os.FileMode) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return int(sys.Uid), int(sys.Gid), st.Mode()
}

func TestPrepareFresh(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "data")
	l, err := Prepare(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Private() != filepath.Join(root, ".server") {
		t.Errorf("private folder %s", l.Private())
	}
	for _, p := range []string{l.Cluster(), l.AdminSocket(), l.Backups()} {
		if filepath.Dir(p) != l.Private() {
			t.Errorf("%s is not directly in the private folder", p)
		}
	}
	uid, _, mode := owner(t, l.Private())
	if uid != os.Geteuid() || mode != os.ModeDir|0o700 {
		t.Errorf("private folder: owner %d mode %v; want %d and 0700", uid, mode, os.Geteuid())
	}
	// Again: nothing to do, nothing fails.
	if _, err := Prepare(root, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareFixesTheFolder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		make    func(t *testing.T, private string)
		wantErr string
	}{
		{"too open", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o777); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"a symlink", func(t *testing.T, p string) {
			if err := os.Symlink(t.TempDir(), p); err != nil {
				t.Fatal(err)
			}
		}, "not a folder"},
		{"a file", func(t *testing.T, p string) {
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			tc.make(t, filepath.Join(root, PrivateName))
			l, err := Prepare(root, Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, _, mode := owner(t, l.Private()); mode != os.ModeDir|0o700 {
				t.Errorf("mode %v, want 0700", mode)
			}
		})
	}
}

// TestPrepareForTheClusterUser: a server running as root runs the
// embedded database as a system user, whose group may pass through the
// private folder (0710) to the cluster's own folder.
func TestPrepareForTheClusterUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root can give a folder to another group")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	gid, _ := strconv.Atoi(u.Gid)
	var logs bytes.Buffer
	l, err := Prepare(t.TempDir(), Options{ClusterUser: u, ExternalRoot: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	uid, g, mode := owner(t, l.Private())
	if uid != 0 || g != gid || mode != os.ModeDir|0o710 {
		t.Errorf("private folder: %d:%d %v; want 0:%d 0710", uid, g, mode, gid)
	}
	if !strings.Contains(logs.String(), l.Cluster()) {
		t.Errorf("the log does not say where the cluster is:\n%s", logs.String())
	}
	// Back to a server that runs the database as itself: 0700 again.
	if _, err := Prepare(l.Root, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, _, mode := owner(t, l.Private()); mode != os.ModeDir|0o700 {
		t.Errorf("mode %v, want 0700", mode)
	}
	if _, err := Prepare(l.Root, Options{ClusterUser: u, SandboxUID: gid}); err == nil {
		t.Error("the cluster's group is the sandbox's, and Prepare let it through")
	}
}

// TestClusterOutsideAPrivateHome: a data folder under a 0700 home (a clone
// under /root) cannot hold the cluster of a database that runs as another
// user; it is kept outside, the home left as it is, and the private folder
// records where.
func TestClusterOutsideAPrivateHome(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root runs the database as another user")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	gid, _ := strconv.Atoi(u.Gid)
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// The external root must itself be reachable, as /var/lib/pyide is.
	ext := filepath.Join(reachableDir(t), "clusters")
	var logs bytes.Buffer
	l, err := Prepare(filepath.Join(home, "pyide", "data"), Options{ClusterUser: u, ExternalRoot: ext, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c := l.Cluster()
	if !strings.HasPrefix(c, ext+"/db-") || filepath.Base(c) != "pgdata" {
		t.Fatalf("cluster at %s, want under %s", c, ext)
	}
	if blocked := unreachable(filepath.Dir(c), u); blocked != "" { // pgcluster gives pgdata itself to the user
		t.Errorf("%s cannot reach its cluster: blocked at %s", u.Username, blocked)
	}
	if uid, g, mode := owner(t, filepath.Dir(c)); uid != 0 || g != gid || mode != os.ModeDir|0o710 {
		t.Errorf("the cluster's parent: %d:%d %v; want 0:%d 0710", uid, g, mode, gid)
	}
	if _, _, mode := owner(t, home); mode != os.ModeDir|0o700 {
		t.Errorf("the home's mode was changed to %v", mode)
	}
	if !strings.Contains(logs.String(), c) || !strings.Contains(logs.String(), home) {
		t.Errorf("the log does not say where the cluster is and why:\n%s", logs.String())
	}
	// Again: the same place, nothing new.
	again, err := Prepare(l.Root, Options{ClusterUser: u, ExternalRoot: ext})
	if err != nil || again.Cluster() != c {
		t.Errorf("a second start: %s %v", again.Cluster(), err)
	}
	// A data folder the user can reach keeps its cluster inside.
	open := filepath.Join(reachableDir(t), "data")
	in, err := Prepare(open, Options{ClusterUser: u, ExternalRoot: ext})
	if err != nil || in.Cluster() != filepath.Join(open, PrivateName, "pgdata") {
		t.Errorf("a reachable data folder: cluster %s %v", in.Cluster(), err)
	}
}

// reachableDir is a temporary folder every user may pass through.
func reachableDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/tmp", "pyide-datadir-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// oldLayout writes a data folder as pyide laid it out before the private
// folder: the cluster, socket, key, backups and password files at the top.
func oldLayout(t *testing.T, root string) {
	t.Helper()
	mk := func(rel, body string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("pgdata/data/PG_VERSION", "15\n")
	mk("backups/pyide-backup-20250101T000000Z.tar.gz", "old archive")
	mk("secret.key", "0123\n")
	mk("passwords-20250101-000000.csv", "username,password\nalice,pw\n")
	mk("passwords-20250102-000000.txt", "username,password\nbob,pw\n")
	mk("Local/alice/hello.py", "print('hi')\n")
	mk("Lecture Notes/passwords-of-the-week.txt", "not ours")
	ln, err := net.Listen("unix", filepath.Join(root, "pyide.sock"))
	if err != nil {
		t.Fatal(err)
	}
	// Closing a listener removes its socket file; a killed server's stays.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
}

func TestUpgradeMovesTheOldLayout(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "data")
	oldLayout(t, root)
	var stopped []string
	var logs bytes.Buffer
	l, err := Prepare(root, Options{
		BackupDir:   filepath.Join(root, PrivateName, "backups"),
		StopCluster: func(dir string) error { stopped = append(stopped, dir); return nil },
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(stopped) != 1 || stopped[0] != filepath.Join(root, "pgdata") {
		t.Errorf("StopCluster called with %v; want the old cluster folder once", stopped)
	}
	for _, p := range []string{
		filepath.Join(l.Cluster(), "data", "PG_VERSION"),
		filepath.Join(l.Backups(), "pyide-backup-20250101T000000Z.tar.gz"),
		filepath.Join(l.Private(), "passwords-20250101-000000.csv"),
		filepath.Join(l.Private(), "passwords-20250102-000000.txt"),
		filepath.Join(root, "Local/alice/hello.py"),
		filepath.Join(root, "Lecture Notes/passwords-of-the-week.txt"),
	} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after the upgrade: %v", err)
		}
	}
	if _, _, mode := owner(t, filepath.Join(l.Private(), "passwords-20250101-000000.csv")); mode.Perm() != 0o600 {
		t.Errorf("a moved password file has mode %v, want 0600", mode.Perm())
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var top []string
	for _, e := range entries {
		top = append(top, e.Name())
	}
	if strings.Join(top, ",") != ".server,Lecture Notes,Local" {
		t.Errorf("the data folder holds %v; want only the private folder and the course's folders", top)
	}
	for _, want := range []string{"pgdata", "backups", "secret.key", "pyide.sock", "passwords-20250101-000000.csv", "passwords-20250102-000000.txt"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log line names %s:\n%s", want, logs.String())
		}
	}
	// A second start has nothing left to move.
	logs.Reset()
	stopped = nil
	if _, err := Prepare(root, Options{StopCluster: func(dir string) error { stopped = append(stopped, dir); return nil }, Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if len(stopped) != 0 || logs.Len() != 0 {
		t.Errorf("second start: stopped %v, logged %s", stopped, logs.String())
	}
}

// TestUpgradeKeepsAChosenBackupDir: BACKUP_DIR set to the old default is
// the operator's choice, and stays where it is.
func TestUpgradeKeepsAChosenBackupDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	oldLayout(t, root)
	if _, err := Prepare(root, Options{BackupDir: filepath.Join(root, "backups")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "backups", "pyide-backup-20250101T000000Z.tar.gz")); err != nil {
		t.Errorf("the chosen backups folder moved: %v", err)
	}
}

// TestUpgradeRefusesToGuess: an old cluster beside a new one, or one that
// cannot be stopped, is the operator's to sort out; nothing moves.
func TestUpgradeRefusesToGuess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(string) error
		both bool
		want string
	}{
		{"both clusters", nil, true, "both"},
		{"cannot stop", func(string) error { return errors.New("pg_ctl: no") }, false, "pg_ctl: no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			oldLayout(t, root)
			if tc.both {
				if err := os.MkdirAll(filepath.Join(root, PrivateName, "pgdata"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Prepare(root, Options{StopCluster: tc.stop})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(root, "pgdata", "data", "PG_VERSION")); err != nil {
				t.Errorf("the old cluster moved anyway: %v", err)
			}
		})
	}
}

func TestServerPrivate(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{".server", true},
		{"pgdata", true},
		{"backups", true},
		{"secret.key", true},
		{"pyide.sock", true},
		{"passwords-20250101-000000.csv", true},
		{"passwords-20250101-000000.txt", true},
		{"Local", false},
		{"Lecture Notes", false},
		{".trash", false},
		{"passwords.csv", false},
	} {
		if got := ServerPrivate(tc.name); got != tc.want {
			t.Errorf("ServerPrivate(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
