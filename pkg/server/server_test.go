package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/metrics"
	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

type env struct {
	*servertest.Server
	t     *testing.T
	clock *servertest.Clock
}

// staffOnly is an area whose one endpoint only professors and admins may call.
type staffOnly struct{}

func (staffOnly) Register(g *echo.Group) {
	g.GET("/staff-only", func(c *echo.Context) error { return c.JSON(200, map[string]bool{"ok": true}) }, auth.RequireStaff)
	g.GET("/panic", func(c *echo.Context) error { panic("boom: secret detail") })
}

var hasher = auth.NewHasher(10, 2)

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with the server's options changed by opt.
func newEnvWith(t *testing.T, opt func(*server.Options)) *env {
	t.Helper()
	ck := servertest.NewClock(time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC))
	web := fstest.MapFS{
		"index.html":      {Data: []byte("<html>app</html>")},
		"assets/app-1.js": {Data: []byte("console.log(1)")},
	}
	s := servertest.New(t, servertest.Options{Hasher: hasher, Clock: ck,
		Auth: func(o *auth.Options) { o.MaxFailures, o.Window = 3, 10*time.Minute },
		HTTP: func(s *servertest.Server, o *server.Options) {
			o.Web, o.Routes = web, []server.Routes{staffOnly{}}
			o.Checks = []server.Check{{Name: "database", Required: true, Probe: func(ctx context.Context) (string, error) { return "", s.DB.Ping(ctx) }}}
			if opt != nil {
				opt(o)
			}
		}})
	e := &env{Server: s, t: t, clock: ck}
	e.addUser("alice", "student", "correct horse", false)
	e.addUser("prof", "professor", "lecture notes", false)
	e.addUser("gone", "student", "left the course", true)
	return e
}

func (e *env) addUser(name, role, pw string, disabled bool) {
	u := e.AddUser(store.User{Username: name, Role: role}, pw)
	if disabled {
		if err := e.DB.SetDisabled(context.Background(), u.ID, true); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name, user, pw string
		want           int
	}{
		{"ok", "alice", "correct horse", 200},
		{"username is case-insensitive", "Alice", "correct horse", 200},
		{"wrong password", "alice", "wrong horse", 401},
		{"unknown user", "mallory", "correct horse", 401},
		{"disabled user", "gone", "left the course", 401},
		{"empty password", "alice", "", 400},
		{"password past bcrypt's 72 bytes", "alice", strings.Repeat("x", 100), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Client().Login(tc.user, tc.pw)
			if r.Status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.want, r.Raw)
			}
			if tc.want != 200 {
				if _, ok := r.Body["error"].(string); !ok {
					t.Fatalf("error body must be {\"error\": ...}, got %s", r.Raw)
				}
				return
			}
			user := r.Body["user"].(map[string]any)
			if user["username"] != "alice" || user["role"] != "student" {
				t.Fatalf("user = %v", user)
			}
		})
	}
	// Unknown user and wrong password: the same message.
	a := e.Client().Login("alice", "nope nope")
	b := e.Client().Login("nobody", "nope nope")
	if a.Body["error"] != b.Body["error"] {
		t.Fatalf("unknown user and wrong password must read the same: %q vs %q", a.Body["error"], b.Body["error"])
	}
}

func TestLoginTimingDoesNotRevealUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	measure := func(user string) time.Duration {
		var total time.Duration
		for i := 0; i < 5; i++ {
			start := time.Now()
			e.Client().Login(user, fmt.Sprintf("wrong-%d", i))
			total += time.Since(start)
		}
		return total / 5
	}
	known, unknown := measure("prof"), measure("nobody-here")
	// Both run one bcrypt comparison; without the dummy hash the unknown
	// user would answer in microseconds instead of milliseconds.
	if unknown < known/3 {
		t.Fatalf("unknown user answered in %v, known in %v: the difference reveals which usernames exist", unknown, known)
	}
}

func TestSessionCookieAndLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.Client()
	r := c.Login("alice", "correct horse")
	ck := r.Header.Get("Set-Cookie")
	for _, want := range []string{"pyide_session=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("plain HTTP without COOKIE_SECURE must not set Secure (the browser would drop it): %q", ck)
	}
	// The token is stored only as its hash.
	token := strings.TrimPrefix(strings.SplitN(ck, ";", 2)[0], "pyide_session=")
	if _, _, err := e.DB.SessionUser(context.Background(), auth.HashToken(token)); err != nil {
		t.Fatalf("no session with the token's hash: %v", err)
	}
	if _, _, err := e.DB.SessionUser(context.Background(), []byte(token)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the raw token must not be stored")
	}
	if r := c.Do("GET", "/api/auth/me", ""); r.Status != 200 {
		t.Fatalf("me: %d %s", r.Status, r.Raw)
	}
	if r := c.Do("POST", "/api/auth/logout", ""); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Raw)
	}
	// The old token no longer works, even if a client kept it.
	old := e.Client()
	req, _ := http.NewRequest("GET", e.URL+"/api/auth/me", nil)
	req.AddCookie(&http.Cookie{Name: "pyide_session", Value: token})
	resp, err := old.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("token after logout: %d, want 401", resp.StatusCode)
	}
	// A new login gets a new token.
	r2 := e.Client().Login("alice", "correct horse")
	if strings.Contains(r2.Header.Get("Set-Cookie"), token) {
		t.Fatal("a new login must get a new token")
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.Client()
	c.Login("alice", "correct horse")
	// Idle: used every 50 minutes, the session lives past the 1 h idle limit.
	for i := 0; i < 4; i++ {
		e.clock.Advance(50 * time.Minute)
		if r := c.Do("GET", "/api/auth/me", ""); r.Status != 200 {
			t.Fatalf("after %d×50 min of use: %d", i+1, r.Status)
		}
	}
	e.clock.Advance(61 * time.Minute)
	if r := c.Do("GET", "/api/auth/me", ""); r.Status != 401 {
		t.Fatalf("idle 61 min: %d, want 401", r.Status)
	}
	// Absolute: 8 h even when used all the time.
	c2 := e.Client()
	c2.Login("alice", "correct horse")
	for i := 0; i < 9; i++ {
		e.clock.Advance(55 * time.Minute)
		r := c2.Do("GET", "/api/auth/me", "")
		if i < 8 && r.Status != 200 {
			t.Fatalf("in use at %d min: %d", (i+1)*55, r.Status)
		}
		if i == 8 && r.Status != 401 {
			t.Fatalf("past the 8 h absolute limit: %d, want 401", r.Status)
		}
	}
}

// TestCheckIsNotActivity: Check (the terminal's recheck of an open page)
// sees a live session without keeping it alive; Authenticate does.
func TestCheckIsNotActivity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	idle, _, err := e.Auth.Login(ctx, "alice", "correct horse", "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	used, _, err := e.Auth.Login(ctx, "alice", "correct horse", "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(50 * time.Minute)
	if _, err := e.Auth.Check(ctx, idle); err != nil {
		t.Fatalf("Check within the idle limit: %v", err)
	}
	if _, err := e.Auth.Authenticate(ctx, used); err != nil {
		t.Fatalf("Authenticate within the idle limit: %v", err)
	}
	e.clock.Advance(11 * time.Minute) // 61 min after the login, 11 after the use
	if _, err := e.Auth.Check(ctx, idle); !errors.Is(err, auth.ErrNoSession) {
		t.Errorf("Check of a session only ever checked, 61 min idle = %v, want ErrNoSession", err)
	}
	if _, err := e.Auth.Check(ctx, used); err != nil {
		t.Errorf("Check of a session used 11 min ago: %v", err)
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 0; i < 3; i++ {
		if r := e.Client().Login("alice", "bad guess"); r.Status != 401 {
			t.Fatalf("failure %d: %d", i+1, r.Status)
		}
	}
	r := e.Client().Login("alice", "correct horse")
	if r.Status != 429 {
		t.Fatalf("after 3 failures even the right password must wait: %d", r.Status)
	}
	if ra := r.Header.Get("Retry-After"); ra != "600" {
		t.Fatalf("Retry-After = %q, want 600", ra)
	}
	if !strings.Contains(r.Body["error"].(string), "try again in") {
		t.Fatalf("429 message: %v", r.Body)
	}
	// Another user is not locked by alice's failures.
	if r := e.Client().Login("prof", "lecture notes"); r.Status != 200 {
		t.Fatalf("other user: %d", r.Status)
	}
	e.clock.Advance(10*time.Minute + time.Second)
	if r := e.Client().Login("alice", "correct horse"); r.Status != 200 {
		t.Fatalf("after the window: %d %s", r.Status, r.Raw)
	}
}

func TestCrossSiteWritesRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.Client()
	c.Login("alice", "correct horse")
	tests := []struct {
		name string
		hdr  []string
		want int
	}{
		{"foreign Origin", []string{"Origin", "https://evil.example"}, 403},
		{"Origin with another port", []string{"Origin", strings.Replace(e.URL, "127.0.0.1:", "127.0.0.1:1", 1)}, 403},
		{"null Origin", []string{"Origin", "null"}, 403},
		{"cross-site fetch without Origin", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"own Origin", []string{"Origin", e.URL}, 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"current_password":"x","new_password":"y"}`
			r := c.Do("POST", "/api/auth/password", body, tc.hdr...)
			if tc.want == 403 && r.Status != 403 {
				t.Fatalf("status %d, want 403", r.Status)
			}
			if tc.want != 403 && r.Status == 403 && r.Body["error"] == "cross-site request refused" {
				t.Fatalf("same-origin request refused")
			}
		})
	}
	// A foreign login form cannot log a victim in either.
	r := e.Client().Do("POST", "/api/auth/login", `{"username":"alice","password":"correct horse"}`, "Origin", "https://evil.example")
	if r.Status != 403 {
		t.Fatalf("cross-site login: %d", r.Status)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	anon, student, prof := e.Client(), e.Client(), e.Client()
	student.Login("alice", "correct horse")
	prof.Login("prof", "lecture notes")
	for _, tc := range []struct {
		name string
		c    *servertest.Client
		want int
	}{{"anonymous", anon, 401}, {"student", student, 403}, {"professor", prof, 200}} {
		if r := tc.c.Do("GET", "/api/staff-only", ""); r.Status != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, r.Status, tc.want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name, body string
		hdr        []string
		want       int
	}{
		{"malformed JSON", `{"username":`, nil, 400},
		{"not JSON", `username=alice`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"unknown field", `{"username":"alice","password":"correct horse","admin":true}`, nil, 400},
		{"wrong type", `{"username":5,"password":"x"}`, nil, 400},
		{"two values", `{"username":"alice","password":"correct horse"}{}`, nil, 400},
		{"empty body", ``, []string{"Content-Type", "application/json"}, 400},
		{"oversized", `{"username":"` + strings.Repeat("a", 2<<20) + `","password":"x"}`, nil, 413},
		{"huge username", `{"username":"` + strings.Repeat("a", 5000) + `","password":"x"}`, nil, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Client().Do("POST", "/api/auth/login", tc.body, tc.hdr...)
			if r.Status != tc.want {
				t.Fatalf("status %d, want %d: %.200s", r.Status, tc.want, r.Raw)
			}
			if _, ok := r.Body["error"].(string); !ok {
				t.Fatalf("want a JSON error, got %.200s", r.Raw)
			}
		})
	}
	// A panic is a 500 with no detail, and the server keeps serving.
	c := e.Client()
	c.Login("alice", "correct horse")
	r := c.Do("GET", "/api/panic", "")
	if r.Status != 500 || strings.Contains(r.Raw, "secret detail") || strings.Contains(r.Raw, "goroutine") {
		t.Fatalf("panic servertest.Reply: %d %s", r.Status, r.Raw)
	}
	if r := c.Do("GET", "/api/nothing-here", ""); r.Status != 404 || r.Body["error"] == nil {
		t.Fatalf("unknown endpoint: %d %s", r.Status, r.Raw)
	}
}

func TestPasswordChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, other := e.Client(), e.Client()
	c.Login("alice", "correct horse")
	other.Login("alice", "correct horse")
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"wrong current", `{"current_password":"nope","new_password":"battery staple"}`, 403},
		{"too short", `{"current_password":"correct horse","new_password":"short"}`, 400},
		{"past 72 bytes", `{"current_password":"correct horse","new_password":"` + strings.Repeat("é", 40) + `"}`, 400},
		{"ok", `{"current_password":"correct horse","new_password":"battery staple"}`, 204},
	} {
		if r := c.Do("POST", "/api/auth/password", tc.body); r.Status != tc.want {
			t.Fatalf("%s: %d, want %d: %s", tc.name, r.Status, tc.want, r.Raw)
		}
	}
	if r := c.Do("GET", "/api/auth/me", ""); r.Status != 200 {
		t.Fatalf("the session that changed the password must stay: %d", r.Status)
	}
	if r := other.Do("GET", "/api/auth/me", ""); r.Status != 401 {
		t.Fatalf("other sessions must end on a password change: %d", r.Status)
	}
	if r := e.Client().Login("alice", "battery staple"); r.Status != 200 {
		t.Fatalf("new password: %d", r.Status)
	}
}

func TestHealthSecurityHeadersAndWeb(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.Client()
	if r := c.Do("GET", "/healthz", ""); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
	r := c.Do("GET", "/readyz", "")
	if r.Status != 200 || r.Body["status"] != "ready" {
		t.Fatalf("readyz: %d %s", r.Status, r.Raw)
	}
	for path, cache := range map[string]string{"/": "no-cache", "/ide/some/route": "no-cache", "/assets/app-1.js": "immutable"} {
		r := c.Do("GET", path, "")
		if r.Status != 200 || !strings.Contains(r.Header.Get("Cache-Control"), cache) {
			t.Errorf("%s: %d, Cache-Control %q", path, r.Status, r.Header.Get("Cache-Control"))
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		for _, h := range []string{"X-Content-Type-Options", "Referrer-Policy", "X-Request-Id"} {
			if r.Header.Get(h) == "" {
				t.Errorf("%s: no %s", path, h)
			}
		}
	}
	if r := c.Do("GET", "/missing.js", ""); r.Status != 404 {
		t.Errorf("a missing asset must be 404, not the app: %d", r.Status)
	}
}

func TestLoginStormIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 20
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Go(func() { codes <- e.Client().Login("prof", "lecture notes").Status })
	}
	// While the storm runs, a cheap request still answers.
	start := time.Now()
	if r := e.Client().Do("GET", "/healthz", ""); r.Status != 200 {
		t.Fatal(r.Status)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("healthz took %v during a login storm", d)
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a login in the storm got %d", c)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := servertest.New(t, servertest.Options{Hasher: hasher,
		Auth: func(o *auth.Options) { o.AbsoluteTimeout, o.MaxFailures = time.Hour, 2 },
		HTTP: func(_ *servertest.Server, o *server.Options) {
			o.Metrics, o.MetricsToken = metrics.New(), "s3cret-token"
		}})
	post := func(body string) {
		resp, err := http.Post(ts.URL+"/api/auth/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for i := 0; i < 3; i++ {
		post(`{"username":"nobody","password":"wrong password"}`)
	}
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", ts.URL+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != 401 {
		t.Fatalf("metrics without the token: %d", code)
	}
	if code, _ := get("wrong"); code != 401 {
		t.Fatalf("metrics with a wrong token: %d", code)
	}
	code, body := get("s3cret-token")
	if code != 200 {
		t.Fatalf("metrics with the token: %d", code)
	}
	for _, want := range []string{
		`pyide_logins_total{result="failure"} 2`,
		`pyide_logins_total{result="throttled"} 1`,
		`pyide_http_requests_total{method="POST",route="/api/auth/login",status="401"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestWriteRateLimit(t *testing.T) {
	t.Parallel()
	e := &env{t: t, Server: servertest.New(t, servertest.Options{Hasher: hasher,
		Auth: func(o *auth.Options) { o.AbsoluteTimeout = time.Hour },
		HTTP: func(_ *servertest.Server, o *server.Options) {
			o.WritesPerMinute, o.Routes = 3, []server.Routes{writer{}}
		}})}
	e.addUser("alice", "student", "correct horse", false)
	e.addUser("bob", "student", "battery staple", false)
	alice, bob := e.Client(), e.Client()
	alice.Login("alice", "correct horse")
	bob.Login("bob", "battery staple")
	for i := 0; i < 3; i++ {
		if r := alice.Do("POST", "/api/write", ""); r.Status != 204 {
			t.Fatalf("write %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	r := alice.Do("POST", "/api/write", "")
	if r.Status != 429 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body["error"].(string), "too many changes") {
		t.Fatalf("4th write in a minute: %d %q %s", r.Status, r.Header.Get("Retry-After"), r.Raw)
	}
	// Reads are not limited, and another user has their own allowance.
	if r := alice.Do("GET", "/api/auth/me", ""); r.Status != 200 {
		t.Fatalf("read after the limit: %d", r.Status)
	}
	if r := bob.Do("POST", "/api/write", ""); r.Status != 204 {
		t.Fatalf("another user's write: %d", r.Status)
	}
}

// writer is an area with one state-changing endpoint.
type writer struct{}

func (writer) Register(g *echo.Group) {
	g.POST("/write", func(c *echo.Context) error { return c.NoContent(204) })
}
