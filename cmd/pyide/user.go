package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/config"
	"github.com/pythonide/pyide/pkg/roster"
	"github.com/pythonide/pyide/pkg/store"
)

func userCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"user: say add, import, passwd, disable, enable or ls"}
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("pyide user "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	role := fs.String("role", auth.RoleStudent, "student, professor or admin")
	display := fs.String("display-name", "", "display name")
	email := fs.String("email", "", "email address")
	passwords := fs.String("passwords", "", "a new file (0600, outside the data folder) for generated passwords; default: print them")
	// Flags may come after the positional argument: `user add bob --role professor`.
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	cfg, logger, err := loadConfig(nil, stderr)
	if err != nil {
		return err
	}
	need := map[string]int{"add": 1, "import": 1, "passwd": 1, "disable": 1, "enable": 1, "ls": 0}
	n, known := need[sub]
	if !known {
		return usageError{fmt.Sprintf("user: unknown subcommand %q", sub)}
	}
	if len(pos) != n {
		return usageError{fmt.Sprintf("user %s takes %d argument(s), got %d", sub, n, len(pos))}
	}
	switch sub {
	case "disable", "enable":
		// A running server must end the user's sockets and sandboxes now.
		err := askServer(ctx, cfg, http.MethodPost, "/api/admin/users/"+url.PathEscape(pos[0])+"/"+sub, nil, nil)
		if err == nil {
			fmt.Fprintf(stdout, "%sd %s\n", sub, pos[0])
			if sub == "disable" {
				fmt.Fprintln(stdout, "the running server ended their sessions and sandboxes")
			}
			return nil
		}
		if err := notFound(err, pos[0]); !errors.Is(err, errNoServer) {
			return err
		}
	case "passwd":
		return userPasswd(ctx, cfg, logger, pos[0], stdin, stdout)
	}
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.close()
	switch sub {
	case "add":
		return userAdd(ctx, a, pos[0], *role, *display, *email, stdin, stdout)
	case "import":
		return userImport(ctx, a, pos[0], *passwords, stdout)
	case "disable", "enable":
		fmt.Fprintln(stdout, noServer)
		svc := auth.New(auth.Options{DB: a.db})
		if err := svc.SetDisabled(ctx, pos[0], sub == "disable"); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %q", pos[0])
		} else if err != nil {
			return err
		}
		_ = a.db.Audit(ctx, "cli", "user."+sub, pos[0], nil)
		fmt.Fprintf(stdout, "%sd %s\n", sub, pos[0])
		return nil
	default:
		return userList(ctx, a, stdout)
	}
}

// noServer says, in one line, that the CLI wrote the database itself.
const noServer = "no server is running: changing the database directly"

// notFound turns the server's 404 into the CLI's own words.
func notFound(err error, name string) error {
	var se *serverError
	if errors.As(err, &se) && se.status == http.StatusNotFound {
		return fmt.Errorf("no user %q", name)
	}
	return err
}

// readPassword takes a password from stdin when something is piped in,
// else generates one. It reports whether it generated it.
func readPassword(stdin io.Reader) (string, bool, error) {
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			// A terminal: nothing piped; generate rather than echo a
			// typed password.
			return auth.GeneratePassword(), true, nil
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return auth.GeneratePassword(), true, nil
	}
	return pw, false, auth.CheckPasswordPolicy(pw)
}

func userAdd(ctx context.Context, a *app, name, role, display, email string, stdin io.Reader, stdout io.Writer) error {
	name = strings.ToLower(name)
	if !roster.ValidUsername(name) {
		return fmt.Errorf("%q is not a valid username (lower-case letters, digits, . _ -; at most 63)", name)
	}
	if !auth.ValidRole(role) {
		return fmt.Errorf("role %q must be student, professor or admin", role)
	}
	pw, generated, err := readPassword(stdin)
	if err != nil {
		return err
	}
	hash, err := a.hasher().Hash(ctx, pw)
	if err != nil {
		return err
	}
	if display == "" {
		display = name
	}
	_, err = a.db.CreateUser(ctx, store.User{Username: name, DisplayName: display, Email: email, Role: role, PasswordHash: hash, MustChangePassword: generated})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("user %q already exists", name)
	}
	if err != nil {
		return err
	}
	if err := a.ensureUserDirs(name); err != nil {
		return err
	}
	_ = a.db.Audit(ctx, "cli", "user.add", name, map[string]any{"role": role})
	fmt.Fprintf(stdout, "added %s (%s)\n", name, role)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", pw)
	}
	return nil
}

// userPasswd sets a one-time password: the user chooses their own at the
// next login. A running server sets it itself, so their open sockets and
// sandboxes end with the old password.
func userPasswd(ctx context.Context, cfg config.Config, logger *slog.Logger, name string, stdin io.Reader, stdout io.Writer) error {
	pw, generated, err := readPassword(stdin)
	if err != nil {
		return err
	}
	err = askServer(ctx, cfg, http.MethodPost, "/api/admin/users/"+url.PathEscape(name)+"/reset-password", map[string]string{"password": pw}, nil)
	if err == nil {
		return printPasswd(stdout, name, pw, generated)
	}
	if err := notFound(err, name); !errors.Is(err, errNoServer) {
		return err
	}
	fmt.Fprintln(stdout, noServer)
	a, err := openApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.close()
	u, err := a.db.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", name)
	}
	if err != nil {
		return err
	}
	hash, err := a.hasher().Hash(ctx, pw)
	if err != nil {
		return err
	}
	if err := a.db.SetPassword(ctx, u.ID, hash, true, nil); err != nil {
		return err
	}
	_ = a.db.Audit(ctx, "cli", "user.passwd", name, nil)
	return printPasswd(stdout, name, pw, generated)
}

func printPasswd(stdout io.Writer, name, pw string, generated bool) error {
	fmt.Fprintf(stdout, "password of %s changed; they choose their own at the next login\n", name)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", pw)
	}
	return nil
}

func userImport(ctx context.Context, a *app, path, passwordFile string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	entries, err := roster.Parse(f)
	if err != nil {
		return err
	}
	// The file is made before anyone is created, so that no generated
	// password can be lost to a path that turns out unusable.
	var out *os.File
	if passwordFile != "" {
		if out, err = createPasswordFile(passwordFile, a.cfg.DataPath); err != nil {
			return err
		}
		defer out.Close()
	}
	res, err := roster.Import(ctx, a.db, a.hasher(), entries)
	if err != nil {
		if out != nil {
			os.Remove(out.Name())
		}
		return err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Username
	}
	if err := a.ensureUserDirs(names...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "roster: %d created, %d updated, %d unchanged\n", len(res.Created), len(res.Updated), len(res.Unchanged))
	created := make([]string, 0, len(res.Passwords))
	for n := range res.Passwords {
		created = append(created, n)
	}
	sort.Strings(created)
	if out == nil {
		if len(created) == 0 {
			return nil
		}
		// Never written to the data folder, where backups would keep it.
		fmt.Fprintf(stdout, "\ngenerated passwords of the %d new users (shown once; they choose their own at the first login):\n\n", len(created))
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tPASSWORD")
		for _, n := range created {
			fmt.Fprintf(tw, "%s\t%s\n", n, res.Passwords[n])
		}
		return tw.Flush()
	}
	fmt.Fprintln(out, "username,password")
	for _, n := range created {
		fmt.Fprintf(out, "%s,%s\n", n, res.Passwords[n])
	}
	if err := out.Sync(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "generated passwords for %d new users written to %s (mode 0600); hand them out and delete the file\n", len(created), out.Name())
	return nil
}

// createPasswordFile makes a new file (0600) for generated passwords. It
// refuses a file that exists and one inside the data folder, whose
// backups would keep the passwords for as long as they are kept.
func createPasswordFile(name, dataPath string) (*os.File, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("the folder for the passwords file: %w", err)
	}
	data, err := filepath.EvalSymlinks(dataPath)
	if err != nil {
		data = dataPath
	}
	if rel, err := filepath.Rel(data, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return nil, fmt.Errorf("%s is inside the data folder %s, whose backups would keep the passwords; name a file elsewhere (or leave out --passwords to print them)", name, dataPath)
	}
	f, err := os.OpenFile(filepath.Join(dir, filepath.Base(abs)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s exists; name a new file for the passwords (it is never overwritten)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("writing generated passwords: %w", err)
	}
	return f, nil
}

func userList(ctx context.Context, a *app, stdout io.Writer) error {
	users, err := a.db.ListUsers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tROLE\tDISPLAY NAME\tEMAIL\tSTATE")
	for _, u := range users {
		state := "active"
		if u.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Username, u.Role, u.DisplayName, u.Email, state)
	}
	return tw.Flush()
}
