package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pythonide/pyide/pkg/store"
)

// dbInfo is what a backup records about the database it dumps.
type dbInfo struct {
	serverVersion string // e.g. "15.8 (Debian 15.8-0+deb12u1)"
	serverMajor   int
	schemaVersion int64
}

// inspectDB connects once to learn the server's version (from the startup
// parameters, no query needed) and the schema version.
func inspectDB(ctx context.Context, url string) (dbInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, store.Options{URL: url, MaxConns: 1})
	if err != nil {
		return dbInfo{}, err
	}
	defer db.Close()
	v, err := db.ServerVersion(ctx)
	if err != nil {
		return dbInfo{}, err
	}
	info := dbInfo{serverVersion: v, serverMajor: majorOf(v)}
	// A database that was never migrated has no goose table: version 0.
	if sv, err := db.SchemaVersion(ctx); err == nil {
		info.schemaVersion = sv
	}
	return info, nil
}

// userRelations counts what a database at url holds outside the system
// schemas (see store.UserRelations): zero means it is safe to restore into.
func userRelations(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, store.Options{URL: url, MaxConns: 1})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return db.UserRelations(ctx)
}

var versionRe = regexp.MustCompile(`(\d+)(?:\.(\d+))?`)

// majorOf reads the major version from "15.8", "9.6.24" or
// "pg_dump (PostgreSQL) 16.2"; 0 when there is none.
func majorOf(s string) int {
	m := versionRe.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	major, _ := strconv.Atoi(m[1])
	if major < 10 && m[2] != "" {
		// Before 10 the major version had two parts; 9.6 is older than 10.
		minor, _ := strconv.Atoi(m[2])
		return major*100 + minor
	}
	return major * 1000
}

// findTool returns a PostgreSQL client tool (pg_dump, pg_restore) at least
// as new as the server: an older pg_dump refuses a newer server, and an
// older pg_restore cannot read a newer dump. It looks next to the embedded
// cluster's binaries first (same version by construction), then on PATH,
// then in Debian's per-version folders, newest first.
func findTool(ctx context.Context, name, binDir string, serverMajor int) (string, error) {
	var candidates []string
	if binDir != "" {
		candidates = append(candidates, filepath.Join(binDir, name))
	}
	if p, err := exec.LookPath(name); err == nil {
		candidates = append(candidates, p)
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(globbed, func(i, j int) bool {
		return majorOf(filepath.Base(filepath.Dir(filepath.Dir(globbed[i])))) >
			majorOf(filepath.Base(filepath.Dir(filepath.Dir(globbed[j]))))
	})
	candidates = append(candidates, globbed...)
	var seen []string
	for _, c := range candidates {
		out, err := exec.CommandContext(ctx, c, "--version").Output()
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(out))
		if majorOf(v) >= serverMajor {
			return c, nil
		}
		seen = append(seen, c+": "+v)
	}
	if len(seen) == 0 {
		return "", fmt.Errorf("%s not found (looked next to the database binaries, on PATH and in /usr/lib/postgresql/*/bin); install the PostgreSQL client, e.g. `apt-get install postgresql-client`", name)
	}
	return "", fmt.Errorf("no %s is at least as new as the database server (found %s); install a newer PostgreSQL client", name, strings.Join(seen, "; "))
}

// runTool runs a PostgreSQL client tool against the database conn and
// returns its messages in the error when it fails.
func runTool(ctx context.Context, path, conn string, args ...string) error {
	// The connection string is an argument, so nothing from the caller's
	// environment (PGHOST, PGDATABASE…) may redirect the tool elsewhere;
	// but not its password, since every local account may read a
	// process's arguments: that goes in PGPASSWORD.
	conn, password := passwordOut(conn)
	cmd := exec.CommandContext(ctx, path, append([]string{"--dbname=" + conn}, args...)...)
	env := []string{"LC_ALL=C", "TZ=UTC", "PGCONNECT_TIMEOUT=30"}
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=") ||
			strings.HasPrefix(kv, "PGPASSFILE=") || strings.HasPrefix(kv, "PGSSL") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = errors.Join(err, ctxErr)
		}
		return fmt.Errorf("%s: %w\n%s", filepath.Base(path), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// passwordOut takes the password out of a connection string, a URL
// (postgres://user:pw@host/db?password=pw) or key=value pairs
// (host=h password='p w'), and returns the rest in the same form.
func passwordOut(conn string) (rest, password string) {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			// Not ours to mend: the tool reports it.
			return conn, ""
		}
		if pw, ok := u.User.Password(); ok {
			password = pw
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if q.Has("password") {
			password = q.Get("password")
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		return u.String(), password
	}
	var kept []string
	for _, kv := range splitKeyValues(conn) {
		if kv[0] == "password" {
			password = kv[1]
			continue
		}
		kept = append(kept, kv[0]+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[1])+"'")
	}
	return strings.Join(kept, " "), password
}

// splitKeyValues reads libpq's key=value form: values may be 'quoted',
// with \ escaping inside quotes and out.
func splitKeyValues(s string) [][2]string {
	var out [][2]string
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return out
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return append(out, [2]string{strings.TrimSpace(s), ""})
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t\n\r")
		var val strings.Builder
		quoted := strings.HasPrefix(s, "'")
		if quoted {
			s = s[1:]
		}
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				val.WriteByte(s[i])
				continue
			}
			if quoted && c == '\'' {
				i++
				break
			}
			if !quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
				break
			}
			val.WriteByte(c)
		}
		out = append(out, [2]string{key, val.String()})
		s = s[i:]
	}
}
