package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pythonide/pyide/pkg/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// seedStatements put a few rows into each table the migrations create;
// a statement runs only when its table exists, so the test follows the
// schema as it grows. Tables without a statement here are still compared.
var seedStatements = []struct{ table, sql string }{
	{"users", `INSERT INTO users (username, display_name, email, role, password_hash, must_change_password, created_at) VALUES
		('alice', 'Alice Ærø', 'alice@example.edu', 'student', '$2a$11$abcdefghijklmnopqrstuv', false, '2024-09-01 10:00:00.123456+00'),
		('bob', 'Bob', '', 'student', '$2a$11$bbbbbbbbbbbbbbbbbbbbbb', true, '2024-09-01 10:00:01+00'),
		('prof', 'Prof. Q', 'q@example.edu', 'professor', '$2a$11$cccccccccccccccccccccc', false, '2024-08-01 09:00:00+00')`},
	{"sessions", `INSERT INTO sessions (token_hash, user_id, expires_at, ip, user_agent)
		SELECT sha256(convert_to(username, 'UTF8')), id, '2030-01-01 00:00:00+00', '10.0.0.' || id, 'test' FROM users`},
	{"audit_log", `INSERT INTO audit_log (actor, action, target, details) VALUES
		('prof', 'user.add', 'alice', '{"role": "student", "n": [1, 2.5, null]}'),
		('alice', 'login', '', '{}')`},
	{"files", `INSERT INTO files (path, parent, owner, size, hash, modified, updated_by) VALUES
		('Local/alice/hello.py', 'Local/alice', 'alice', 15, 'h1', '2024-09-02 11:00:00.5+00', 'alice'),
		('Lecture Notes/week1.pdf', 'Lecture Notes', '', 1024, 'h2', '2024-09-02 12:00:00+00', 'prof')`},
	{"file_revisions", `INSERT INTO file_revisions (path, size, hash, author, content) VALUES
		('Local/alice/hello.py', 14, 'h0', 'alice', convert_to('print("hi")', 'UTF8')),
		('Local/alice/data.bin', 256, 'hb', 'alice', (SELECT string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i) FROM generate_series(0, 255) i))`},
	{"trash", `INSERT INTO trash (username, original_path, trash_name, is_dir, size, deleted_at) VALUES
		('alice', 'Local/alice/old.py', '1-abc', false, 10, '2024-09-03 08:00:00+00')`},
	{"course_items", `INSERT INTO course_items (slug, kind) VALUES ('hw1', 'assignment'), ('midterm', 'test')`},
	{"assignments", `INSERT INTO assignments (slug, title, description_md, publish_at, due_at, late_policy, late_cutoff_at, created_by) VALUES
		('hw1', 'Homework 1', '# Loops', '2024-09-01 00:00:00+00', '2024-09-08 23:59:00+00', 'cutoff', '2024-09-10 23:59:00+00', 'prof')`},
	{"tests", `INSERT INTO tests (slug, title, starts_at, ends_at, duration_minutes, restrict_repl, created_by) VALUES
		('midterm', 'Midterm', '2024-10-01 09:00:00+00', '2024-10-01 11:00:00+00', 90, true, 'prof')`},
	{"test_starts", `INSERT INTO test_starts (test, username, started_at) VALUES ('midterm', 'alice', '2024-10-01 09:01:02.345+00')`},
	{"submissions", `INSERT INTO submissions (item, kind, username, n, submitted_at, late, files, snapshot) VALUES
		('hw1', 'assignment', 'alice', 1, '2024-09-07 20:00:00+00', false, '[{"path": "hello.py", "size": 15}]', 'Submissions/hw1/alice/.snapshots/1'),
		('hw1', 'assignment', 'alice', 2, '2024-09-09 20:00:00+00', true, '[]', 'Submissions/hw1/alice/.snapshots/2')`},
	{"grades", `INSERT INTO grades (item, username, score, max_score, feedback_md, graded_by, graded_at) VALUES
		('hw1', 'alice', 9.5, 10, 'Good *loops*', 'prof', '2024-09-12 10:00:00+00')`},
	// The live classroom (migration 00005): a teaching assistant, a help
	// request taken and ended, a test that allows it, and a run's
	// transcript with every byte value a console can hold.
	{"help_requests", `INSERT INTO users (username, role, password_hash) VALUES ('tina', 'ta', '$2a$11$dddddddddddddddddddddd');
		UPDATE tests SET allow_live = true WHERE slug = 'midterm';
		INSERT INTO help_requests (username, tab, path, message, created_at, taken_by, taken_at, closed_at, closed_by) VALUES
		('alice', 'tab-1', 'Local/alice/hello.py', 'my loop never ends', '2024-09-05 10:00:00+00', 'tina', '2024-09-05 10:01:00+00', '2024-09-05 10:09:00+00', 'tina'),
		('bob', 'tab-2', '', '', '2024-09-05 10:02:00+00', NULL, NULL, NULL, NULL)`},
	{"transcripts", `INSERT INTO transcripts (username, path, item, started_at, ended_at, exit_code, reason, truncated, output) VALUES
		('alice', 'Local/alice/hw1/main.py', 'hw1', '2024-09-05 10:00:00+00', '2024-09-05 10:03:00.25+00', 1, 'error', true,
		 convert_to(E'\x1b[31mTraceback\x1b[0m\r\n>>> ', 'UTF8') || (SELECT string_agg(set_byte('\x00'::bytea, 0, i), ''::bytea ORDER BY i) FROM generate_series(0, 255) i)),
		('alice', '', NULL, '2024-09-06 10:00:00+00', '2024-09-06 10:00:01+00', 0, 'finished', false, '')`},
	// The last sign-in (migration 00006).
	{"users", `UPDATE users SET last_login_at = '2024-09-05 09:58:00.5+00' WHERE username = 'alice'`},
	// Autograding (migration 00007): an I/O case and a hidden test file, the
	// release switch, a sealed run (which a restore must insert, never
	// update), a rubric line given to alice.
	{"grading_tests", `INSERT INTO grading_tests (item, kind, name, hidden, points, position, main_file, stdin, expected,
		ignore_trailing_whitespace, ignore_case, tolerance, cpu_seconds, source, updated_by, updated_at) VALUES
		('hw1', 'io', 'doubles 21', false, 1, 0, 'main.py', E'21\n', E'42\n', true, false, 0.001, 2, '', 'prof', '2024-09-01 10:00:00+00'),
		('hw1', 'py', 'test_hidden.py', true, 2.5, 1, '', '', '', true, false, NULL, 5,
		 E'from solution import add\n\ndef test_neg():\n    assert add(-1, -1) == -2  # «é»\n', 'prof', '2024-09-01 10:05:00+00')`},
	{"grading_release", `INSERT INTO grading_release (item, released, changed_by, changed_at) VALUES ('hw1', true, 'prof', '2024-09-12 10:00:00+00')`},
	{"grading_runs", `INSERT INTO grading_runs (submission_id, item, username, n, cause, score, max_score, error, results, requested_by, started_at, finished_at)
		SELECT id, item, username, n, 'submit', 3.5, 3.5, '', '[{"test": 1, "name": "doubles 21", "outcome": "passed", "points": 1, "actual": "42\n"}]', 'alice',
		'2024-09-07 20:00:01+00', '2024-09-07 20:00:01.75+00' FROM submissions WHERE n = 1`},
	{"rubric_items", `INSERT INTO rubric_items (item, points, comment, position) VALUES ('hw1', -0.5, 'no docstrings', 0), ('hw1', 1, 'neat', 1)`},
	{"rubric_marks", `INSERT INTO rubric_marks (rubric_id, username, given_by, given_at) SELECT id, 'alice', 'tina', '2024-09-12 09:00:00+00' FROM rubric_items WHERE position = 0`},
}

// seed fills every table it knows that exists.
func seed(t testing.TB, url string) {
	t.Helper()
	conn := connect(t, url)
	tables := tableNames(t, conn)
	have := map[string]bool{}
	for _, name := range tables {
		have[name] = true
	}
	for _, s := range seedStatements {
		if !have[s.table] {
			continue
		}
		if _, err := conn.Exec(context.Background(), s.sql); err != nil {
			t.Fatalf("seeding %s (update seedStatements to the current schema): %v", s.table, err)
		}
	}
	for _, name := range tables {
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{name}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Logf("table %s has no rows after seeding; add a statement for it to seedStatements", name)
		}
	}
}

func tableNames(t testing.TB, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// dumpDB returns every row of every table, as JSON ordered by the primary
// key, and every sequence's position: the generic "row for row" view.
func dumpDB(t testing.TB, url string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, url)
	out := map[string][]string{}
	for _, table := range tableNames(t, conn) {
		rows, err := conn.Query(ctx, `SELECT kcu.column_name FROM information_schema.table_constraints tc
			JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
			WHERE tc.table_schema = 'public' AND tc.table_name = $1 AND tc.constraint_type = 'PRIMARY KEY'
			ORDER BY kcu.ordinal_position`, table)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		order := "to_jsonb(t)::text"
		if len(pk) > 0 {
			var cols []string
			for _, c := range pk {
				cols = append(cols, "t."+pgx.Identifier{c}.Sanitize())
			}
			order = strings.Join(cols, ", ")
		}
		rows, err = conn.Query(ctx, fmt.Sprintf("SELECT to_jsonb(t)::text FROM %s t ORDER BY %s", pgx.Identifier{table}.Sanitize(), order))
		if err != nil {
			t.Fatal(err)
		}
		out["table "+table], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seqs {
		var last int64
		var called bool
		if err := conn.QueryRow(ctx, "SELECT last_value, is_called FROM "+pgx.Identifier{s}.Sanitize()).Scan(&last, &called); err != nil {
			t.Fatal(err)
		}
		out["sequence "+s] = []string{fmt.Sprint(last, called)}
	}
	return out
}

// binaryBytes is every byte value, twice, with a NUL run: a file no text
// handling may mangle.
func binaryBytes() []byte {
	b := make([]byte, 0, 600)
	for i := 0; i < 512; i++ {
		b = append(b, byte(i))
	}
	return append(b, make([]byte, 88)...)
}

// writeTree makes a data folder with text and binary files, an empty file
// and folder, odd names and modes, a link inside and a link out, and the
// things a backup must leave out.
func writeTree(t testing.TB, dir string) {
	t.Helper()
	mk := func(rel string, data []byte, mode fs.FileMode) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		old := time.Date(2024, 9, 2, 11, 0, 0, 500_000_000, time.UTC)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	mk("Local/alice/hello.py", []byte("print('hello')\n"), 0o644)
	mk("Local/alice/"+strings.Repeat("n", 250)+".py", []byte("long name\n"), 0o644)
	mk("Local/alice/data.bin", binaryBytes(), 0o600)
	mk("Local/alice/empty.txt", nil, 0o644)
	mk("Local/alice/sub/deeper/ünïcödé näme.py", []byte("x = 'ü'\n"), 0o644)
	mk("Local/bob/.hidden", []byte("secret-ish\n"), 0o640)
	mk("Lecture Notes/week1.pdf", append([]byte("%PDF-1.4\n"), binaryBytes()...), 0o644)
	mk("Assignments/hw1/starter.py", []byte(strings.Repeat("# line\n", 20000)), 0o644)
	mk("Submissions/hw1/alice/hello.py", []byte("print('hello')\n"), 0o444)
	mk(".trash/alice/1-abc", []byte("old\n"), 0o600)
	if err := os.MkdirAll(filepath.Join(dir, "Local/alice/empty-folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, ".trash"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello.py", filepath.Join(dir, "Local/alice/link-inside.py")); err != nil {
		t.Fatal(err)
	}
	// Left out: a link out, temporary files, the cluster, the backups, a fifo.
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "Local/alice/link-out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../..", filepath.Join(dir, "Local/alice/link-up")); err != nil {
		t.Fatal(err)
	}
	mk("Local/alice/.pyide-tmp-123", []byte("half"), 0o600)
	mk(".server/pgdata/data/PG_VERSION", []byte("15\n"), 0o600)
	mk(".server/pgdata/password", []byte("0a1b2c\n"), 0o600)
	mk(".server/backups/pyide-backup-20200101T000000Z.tar.gz", []byte("old"), 0o600)
	mk(".server/passwords-20250101-000000.csv", []byte("username,password\nalice,pw\n"), 0o600)
	// An old layout's, should one be left at the top.
	mk("pgdata/data/PG_VERSION", []byte("15\n"), 0o600)
	mk("backups/pyide-backup-20200101T000000Z.tar.gz", []byte("old"), 0o600)
	mk("secret.key", []byte("0123456789abcdef\n"), 0o600)
	mk("passwords-20250101-000000.csv", []byte("username,password\nalice,pw\n"), 0o600)
	if err := syscall.Mkfifo(filepath.Join(dir, "Local/alice/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// A workspace belongs to the sandbox's uid; restore must keep that.
		for _, rel := range []string{"Local/alice", "Local/alice/hello.py", "Local/alice/link-inside.py"} {
			if err := os.Lchown(filepath.Join(dir, rel), 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// treeOf describes every file, folder and link under dir (except skip) by
// type, mode, owner, modification time and content.
func treeOf(t testing.TB, dir string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s && d.IsDir() {
				return fs.SkipDir
			}
			if rel == s {
				return nil
			}
		}
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v uid=%d gid=%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += fmt.Sprintf(" size=%d sha256=%s mtime=%s", len(b), hex.EncodeToString(sum[:]), fi.ModTime().UTC().Format(time.RFC3339Nano))
		case fi.IsDir():
			desc += " mtime=" + fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// archiveNames lists an archive's entry names.
func archiveEntries(t testing.TB, archive string) map[string][]byte {
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
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = b
	}
}

func diffMaps(t testing.TB, what string, want, got map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: %s missing after restore (want %s)", what, k, w)
		} else if g != w {
			t.Errorf("%s: %s differs:\n want %s\n got  %s", what, k, w, g)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s appeared after restore: %s", what, k, g)
		}
	}
}

func diffDB(t testing.TB, want, got map[string][]string) {
	t.Helper()
	for k, w := range want {
		g := got[k]
		if strings.Join(w, "\n") != strings.Join(g, "\n") {
			t.Errorf("%s differs after restore:\n want %q\n got  %q", k, w, g)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s appeared after restore", k)
		}
	}
}
