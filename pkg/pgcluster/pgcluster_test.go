package pgcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// clusterDir is a folder the cluster's unprivileged user can reach when the
// tests run as root.
func clusterDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(d, "pg")
}

func startCluster(t *testing.T, dir string) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	return c
}

// withoutPassword is c's connection string with the password left out.
func withoutPassword(c *Cluster, db string) string {
	var kept []string
	for _, f := range strings.Fields(c.URL(db)) {
		if !strings.HasPrefix(f, "password=") {
			kept = append(kept, f)
		}
	}
	return strings.Join(kept, " ")
}

// checkPasswordOnly checks that c lets in its own URL and nothing without
// the password, that the password file is the server's alone, and that
// pg_hba.conf trusts nobody.
func checkPasswordOnly(t *testing.T, c *Cluster) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL(""))
	if err != nil {
		t.Fatalf("connecting with the cluster's URL: %v", err)
	}
	conn.Close(ctx)
	if conn, err := pgx.Connect(ctx, withoutPassword(c, "")); err == nil {
		conn.Close(ctx)
		t.Fatal("a connection without the password was let in")
	}
	if conn, err := pgx.Connect(ctx, withoutPassword(c, "")+" password=wrong"); err == nil {
		conn.Close(ctx)
		t.Fatal("a connection with a wrong password was let in")
	}
	st, err := os.Stat(filepath.Join(c.opts.Dir, "password"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || int(st.Sys().(*syscall.Stat_t).Uid) != os.Geteuid() {
		t.Errorf("password file: mode %v, owner %d; want 0600 and this process's uid %d", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Uid, os.Geteuid())
	}
	hba, err := os.ReadFile(filepath.Join(c.dataDir(), "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if hbaTrusts(string(hba)) {
		t.Errorf("pg_hba.conf still trusts someone:\n%s", hba)
	}
}

// TestPasswordRequired: a new cluster asks every connection for the
// password it keeps 0600 in its folder.
func TestPasswordRequired(t *testing.T) {
	t.Parallel()
	c := startCluster(t, clusterDir(t))
	checkPasswordOnly(t, c)
}

// initTrustCluster makes a cluster the way pyide did before passwords:
// initdb --auth=trust, no password file, the superuser without a password.
// It holds one table with one row, and runs when keepRunning (a server that
// was killed).
func initTrustCluster(t *testing.T, dir string, keepRunning bool) {
	t.Helper()
	ctx := context.Background()
	bin, err := FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{opts: Options{Dir: dir, Database: "pyide", Fast: true}, bin: bin, uid: os.Getuid()}
	if os.Geteuid() == 0 {
		if err := c.dropRoot(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.prepareDirs(); err != nil {
		t.Fatal(err)
	}
	if err := c.run(ctx, "initdb", "-D", c.dataDir(), "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	conf := "listen_addresses = ''\nunix_socket_permissions = 0700\nfsync = off\n"
	if err := os.WriteFile(filepath.Join(c.dataDir(), "postgresql.auto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.start(ctx); err != nil {
		t.Fatal(err)
	}
	old := "host=" + c.sockDir + " port=5432 user=" + superuser + " sslmode=disable dbname="
	conn, err := pgx.Connect(ctx, old+"postgres")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE pyide"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	conn, err = pgx.Connect(ctx, old+"pyide")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the upgrade')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if !keepRunning {
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrustClusterUpgraded: a cluster created with trust authentication,
// stopped or left running by a killed server, gets a password on start;
// its data stays.
func TestTrustClusterUpgraded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		running bool
	}{
		{"stopped", false},
		{"left running", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := clusterDir(t)
			initTrustCluster(t, dir, tc.running)
			c := startCluster(t, dir)
			checkPasswordOnly(t, c)
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, c.URL(""))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var v string
			if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "before the upgrade" {
				t.Fatalf("data after the upgrade: %q %v", v, err)
			}
			// And again: a second start finds nothing to upgrade. (An
			// adopted cluster is not this process's to stop.)
			if err := StopLeftover(ctx, dir, ""); err != nil {
				t.Fatal(err)
			}
			checkPasswordOnly(t, startCluster(t, dir))
		})
	}
}

// TestStopLeftover stops a cluster a killed server left running, and is
// a no-op where none runs.
func TestStopLeftover(t *testing.T) {
	t.Parallel()
	dir := clusterDir(t)
	ctx := context.Background()
	if err := StopLeftover(ctx, dir, ""); err != nil {
		t.Fatalf("no cluster there: %v", err)
	}
	initTrustCluster(t, dir, true)
	if err := StopLeftover(ctx, dir, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
		t.Fatal("the cluster still runs")
	}
}

func TestHBATrusts(t *testing.T) {
	for _, tc := range []struct {
		name string
		hba  string
		want bool
	}{
		{"initdb trust", "# comment trust\nlocal   all             all                                     trust\nhost    all             all             127.0.0.1/32            trust\n", true},
		{"ours", hbaConf, false},
		{"scram with a comment", "local all all scram-sha-256 # not trust\n", false},
		{"one trust line among others", "local all all scram-sha-256\nlocal replication all trust\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hbaTrusts(tc.hba); got != tc.want {
				t.Errorf("hbaTrusts = %v, want %v", got, tc.want)
			}
		})
	}
}
