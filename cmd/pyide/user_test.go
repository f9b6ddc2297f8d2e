package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// cli runs pyide with args against a fresh database and data folder.
type cli struct {
	t    *testing.T
	data string
	url  string
}

func newCLI(t *testing.T) *cli {
	c := &cli{t: t, data: t.TempDir(), url: storetest.NewURL(t)}
	t.Setenv("DATABASE_URL", c.url)
	t.Setenv("IDE_DATA_PATH", c.data)
	t.Setenv("BCRYPT_COST", "10")
	return c
}

func (c *cli) run(stdin string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), err
}

func (c *cli) db() *store.DB {
	db, err := store.Open(context.Background(), store.Options{URL: c.url})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(db.Close)
	return db
}

func TestUserAdd(t *testing.T) {
	c := newCLI(t)
	out, err := c.run("a fine password\n", "user", "add", "Bob", "--role", "professor", "--display-name", "Bob B")
	if err != nil || !strings.Contains(out, "added bob (professor)") || strings.Contains(out, "password:") {
		t.Fatalf("add with a piped password: %q %v", out, err)
	}
	out, err = c.run("a fine password\n", "user", "add", "tom", "--role", "ta")
	if err != nil || !strings.Contains(out, "added tom (ta)") {
		t.Fatalf("add a teaching assistant: %q %v", out, err)
	}
	out, err = c.run("", "user", "add", "carol")
	if err != nil || !strings.Contains(out, "password: ") {
		t.Fatalf("add with a generated password: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(c.data, "Local", "carol")); err != nil {
		t.Fatalf("workspace folder not created: %v", err)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"duplicate", "another password\n", []string{"user", "add", "bob"}, "already exists"},
		{"bad name", "", []string{"user", "add", "../etc"}, "not a valid username"},
		{"bad role", "", []string{"user", "add", "dave", "--role", "god"}, "must be student, ta, professor or admin"},
		{"short password", "short\n", []string{"user", "add", "erin"}, "at least 8"},
		{"long password", strings.Repeat("p", 80) + "\n", []string{"user", "add", "erin"}, "at most 72 bytes"},
		{"missing name", "", []string{"user", "add"}, "takes 1 argument"},
		{"unknown subcommand", "", []string{"user", "frobnicate"}, "unknown subcommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.run(tc.stdin, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	out, err = c.run("", "user", "ls")
	if err != nil || !strings.Contains(out, "bob") || !strings.Contains(out, "carol") || strings.Contains(out, "erin") {
		t.Fatalf("ls: %q %v", out, err)
	}
	// Without a server, the CLI writes the database itself and says so.
	if out, err := c.run("", "user", "disable", "bob"); err != nil || !strings.Contains(out, "no server is running") || !strings.Contains(out, "disabled bob") {
		t.Fatalf("disable without a server: %q %v", out, err)
	}
	if _, err := c.run("", "user", "disable", "nobody"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Fatalf("disabling an unknown user: %v", err)
	}
	if out, _ := c.run("", "user", "ls"); !strings.Contains(out, "disabled") {
		t.Fatalf("ls after disable: %q", out)
	}
	if out, err := c.run("new password here\n", "user", "passwd", "carol"); err != nil || !strings.Contains(out, "changed") {
		t.Fatalf("passwd: %q %v", out, err)
	}
	// A password someone else set is for one login: carol picks her own.
	if u, err := c.db().UserByName(context.Background(), "carol"); err != nil || !u.MustChangePassword {
		t.Errorf("after passwd carol need not choose her own password: %v", err)
	}
}

func TestUserImport(t *testing.T) {
	c := newCLI(t)
	roster := filepath.Join(t.TempDir(), "roster.csv")
	write := func(s string) {
		if err := os.WriteFile(roster, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("username,display_name,role,email\nalice,Alice A,student,alice@example.edu\nbob,Bob B,student\nprof,Prof P,professor\n")
	pwFile := filepath.Join(t.TempDir(), "pw.csv")
	out, err := c.run("", "user", "import", roster, "--passwords", pwFile)
	if err != nil || !strings.Contains(out, "3 created") {
		t.Fatalf("import: %q %v", out, err)
	}
	st, err := os.Stat(pwFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v", st, err)
	}
	pw, _ := os.ReadFile(pwFile)
	if strings.Count(string(pw), "\n") != 4 {
		t.Fatalf("password file: %q", pw)
	}
	if strings.Contains(out, strings.Split(strings.Split(string(pw), "\n")[1], ",")[1]) {
		t.Fatal("a generated password was printed; it belongs only in the 0600 file")
	}
	for _, u := range []string{"alice", "bob", "prof"} {
		if _, err := os.Stat(filepath.Join(c.data, "Local", u)); err != nil {
			t.Fatalf("no workspace for %s", u)
		}
	}
	// Idempotent: the same roster again changes nothing.
	out, err = c.run("", "user", "import", roster)
	if err != nil || !strings.Contains(out, "0 created, 0 updated, 3 unchanged") {
		t.Fatalf("second import: %q %v", out, err)
	}
	// Atomic: one bad line → error naming it, nothing written.
	write("alice,Alice Changed,student\ncarol,Carol,student\nbad name,X,student\n")
	_, err = c.run("", "user", "import", roster)
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("bad roster: %v", err)
	}
	db := c.db()
	if _, err := db.UserByName(context.Background(), "carol"); err == nil {
		t.Fatal("carol was created from a roster that failed")
	}
	if u, _ := db.UserByName(context.Background(), "alice"); u.DisplayName != "Alice A" {
		t.Fatalf("alice was changed by a roster that failed: %q", u.DisplayName)
	}
	for _, tc := range []struct{ name, roster, want string }{
		{"too few fields", "alice,Alice\n", "line 1"},
		{"bad role", "zed,Zed,teacher\n", "role"},
		{"duplicate", "zed,Zed,student\nzed,Zed,student\n", "already appears on line 1"},
		{"bad email", "zed,Zed,student,not-an-address\n", "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(tc.roster)
			if _, err := c.run("", "user", "import", roster); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Updates are applied.
	write("alice,Alice Renamed,professor\n")
	if out, err := c.run("", "user", "import", roster); err != nil || !strings.Contains(out, "1 updated") {
		t.Fatalf("update: %q %v", out, err)
	}
}

func TestUsage(t *testing.T) {
	c := newCLI(t)
	if _, err := c.run("", "frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("unknown command: %v", err)
	}
	if _, err := c.run(""); err == nil {
		t.Fatal("no command must be an error")
	}
	if out, err := c.run("", "migrate"); err != nil || !strings.Contains(out, "schema at version") {
		t.Fatalf("migrate: %q %v", out, err)
	}
}
