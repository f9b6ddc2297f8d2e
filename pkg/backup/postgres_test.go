package backup

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestPasswordOut(t *testing.T) {
	for _, tc := range []struct {
		name, conn, password string
	}{
		{"embedded cluster", "host=/srv/pyide/.server/pgdata/run port=5432 user=pyide password=0a1b2c dbname=pyide sslmode=disable", "0a1b2c"},
		{"quoted with escapes", `host=db user='o\'neil' password='p w\\x\'y' dbname=pyide`, `p w\x'y`},
		{"no password", "host=/tmp dbname=pyide", ""},
		{"url", "postgres://pyide:s3cr%40t@db:5432/pyide?sslmode=disable", "s3cr@t"},
		{"url query", "postgresql://pyide@db/pyide?password=qpw&sslmode=disable", "qpw"},
		{"url without a user", "postgres://db/pyide", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rest, pw := passwordOut(tc.conn)
			if pw != tc.password {
				t.Errorf("password %q, want %q", pw, tc.password)
			}
			if tc.password != "" && strings.Contains(rest, tc.password) {
				t.Errorf("the rest still holds the password: %s", rest)
			}
			// The rest, with the password given beside it, is the same
			// connection.
			want, err := pgconn.ParseConfig(tc.conn)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgconn.ParseConfig(rest)
			if err != nil {
				t.Fatalf("%s: %v", rest, err)
			}
			got.Password = pw
			for _, f := range []struct {
				what      string
				got, want any
			}{
				{"host", got.Host, want.Host}, {"port", got.Port, want.Port}, {"user", got.User, want.User},
				{"database", got.Database, want.Database}, {"password", got.Password, want.Password},
				{"params", got.RuntimeParams, want.RuntimeParams},
			} {
				if !reflect.DeepEqual(f.got, f.want) {
					t.Errorf("%s: %v, want %v (rest %s)", f.what, f.got, f.want, rest)
				}
			}
		})
	}
}

// TestToolPasswordNotInArguments: every local account can read a
// process's arguments, so the password reaches pg_dump in its environment.
func TestToolPasswordNotInArguments(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "pg_dump")
	out := filepath.Join(dir, "seen")
	script := "#!/bin/sh\nprintf '%s\\n' \"$*\" \"$PGPASSWORD\" >" + out + "\n"
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runTool(context.Background(), tool, "host=/run/pg user=pyide password=0a1b2c dbname=pyide", "--format=custom"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	args, env, _ := strings.Cut(string(b), "\n")
	if strings.Contains(args, "0a1b2c") || !strings.Contains(args, "--dbname=") || !strings.Contains(args, "--format=custom") {
		t.Errorf("arguments: %s", args)
	}
	if strings.TrimSpace(env) != "0a1b2c" {
		t.Errorf("PGPASSWORD = %q", env)
	}
}
