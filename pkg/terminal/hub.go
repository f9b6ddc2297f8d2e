package terminal

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/sandbox"
)

// Close codes the hub sends besides the standard ones.
const (
	CloseSessionEnded = 4001 // logged out, password changed, account disabled or session expired
)

var tabRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// defaultTab keys a connection that names no tab.
const defaultTab = "default"

type tabKey struct{ user, id string }

// Hub serves /api/ws and owns every connection and tab.
type Hub struct {
	opts Options
	up   websocket.Upgrader

	ctx    context.Context // ends at Close; parents starts and warm-ups
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[*conn]struct{}
	tabs   map[tabKey]*tab
	users  map[string]*userState
	casts  map[string]*cast // live broadcasts by id

	// spawnMu guards spawnClosed: once Close waits for wg, work is done
	// inline instead of counted.
	spawnMu     sync.Mutex
	spawnClosed bool
}

// spawn runs fn in the background, counted in wg so that Close waits for
// it; once Close has begun waiting, inline.
func (h *Hub) spawn(fn func()) {
	h.spawnMu.Lock()
	if h.spawnClosed {
		h.spawnMu.Unlock()
		fn()
		return
	}
	h.wg.Add(1)
	h.spawnMu.Unlock()
	go func() {
		defer h.wg.Done()
		fn()
	}()
}

type userState struct {
	conns int
	runs  []time.Time // accepted run/repl messages in the last minute
	// spare is the folders the user's spare was last asked for, so that a
	// change of the rules can tell whether it holds more than granted.
	spare []sandbox.Mount
}

// New returns a Hub; it subscribes to the end of login sessions.
// Auth and Files are required: New panics without them.
func New(opts Options) *Hub {
	if opts.Auth == nil || opts.Files == nil {
		panic("terminal: Options.Auth and Options.Files are required")
	}
	opts = opts.withDefaults()
	h := &Hub{
		opts:  opts,
		conns: map[*conn]struct{}{},
		tabs:  map[tabKey]*tab{},
		users: map[string]*userState{},
		casts: map[string]*cast{},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.up = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   4 << 10,
		WriteBufferSize:  32 << 10,
		// Checked again here (the handler already did) so that no later
		// change of the handler can drop the cross-site hijacking check.
		CheckOrigin: func(r *http.Request) bool { return auth.SameOrigin(r, opts.PublicURL) },
	}
	opts.Auth.OnSessionEnd(h.sessionEnded)
	h.wg.Add(2)
	go h.recheck()
	go h.pruneTranscripts()
	return h
}

// Handler is the /api/ws endpoint. It checks the session itself: the
// server mounts it without the login middleware.
func (h *Hub) Handler() echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if !auth.SameOrigin(r, h.opts.PublicURL) {
			return echo.NewHTTPError(http.StatusForbidden, "cross-site WebSocket refused")
		}
		tabID := r.URL.Query().Get("tab")
		if tabID == "" {
			tabID = defaultTab
		} else if !tabRe.MatchString(tabID) {
			return echo.NewHTTPError(http.StatusBadRequest, "tab must be 1 to 64 letters, digits, _ or -")
		}
		u, err := h.opts.Auth.UserFromRequest(r)
		if errors.Is(err, auth.ErrNoSession) {
			return echo.NewHTTPError(http.StatusUnauthorized, "not logged in")
		}
		if err != nil {
			return err
		}
		if u.MustChangePassword {
			return auth.RefusePasswordChange(c)
		}
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "server shutting down")
		}
		ws, err := h.up.Upgrade(c.Response(), r, nil)
		if err != nil {
			return nil // the upgrader has answered
		}
		token := auth.SessionToken(r)
		cn := newConn(h, ws, u, token)
		if !h.register(cn, tabID) {
			_ = ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
			return ws.Close()
		}
		h.opts.Logger.Debug("terminal: socket opened", "user", u.Username, "tab", tabID)
		h.warm(u)
		h.wg.Add(1)
		go cn.writeLoop()
		cn.readLoop()
		h.opts.Logger.Debug("terminal: socket closed", "user", u.Username, "tab", tabID)
		return nil
	}
}

// register binds a new connection to its user's tab and attaches it.
func (h *Hub) register(c *conn, tabID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1) // the reader; done in unregister
	h.conns[c] = struct{}{}
	us := h.users[c.user.Username]
	if us == nil {
		us = &userState{}
		h.users[c.user.Username] = us
	}
	us.conns++
	k := tabKey{c.user.Username, tabID}
	t := h.tabs[k]
	if t == nil {
		t = newTab(h, k)
		h.tabs[k] = t
	}
	c.tab = t
	t.bind(c)
	return true
}

// unregister runs once per connection, after its reader ended.
func (h *Hub) unregister(c *conn) {
	defer h.wg.Done()
	h.mu.Lock()
	if _, ok := h.conns[c]; !ok {
		h.mu.Unlock()
		return
	}
	delete(h.conns, c)
	if c.watch != nil {
		h.mu.Unlock()
		c.tab.removeWatcher(c)
		return
	}
	if us := h.users[c.user.Username]; us != nil {
		us.conns--
	}
	c.tab.unbind(c, h.opts.Grace)
	// A tab ended by a logout is gone already: nothing waits for a grace
	// period, so the user's spare goes with their last socket.
	release := !h.closed && h.tabs[c.tab.key] != c.tab && h.forgetUserLocked(c.user.Username)
	h.mu.Unlock()
	if release {
		h.opts.Sandboxes.Release(c.user.Username)
	}
}

// expire ends a tab nobody came back to within the grace period.
func (h *Hub) expire(t *tab) {
	h.mu.Lock()
	if h.tabs[t.key] != t || !t.idle() {
		h.mu.Unlock()
		return
	}
	delete(h.tabs, t.key)
	h.endCastsOfLocked(t.key)
	release := h.forgetUserLocked(t.key.user)
	h.mu.Unlock()
	t.kill()
	h.opts.Logger.Info("terminal: tab expired after the grace period", "user", t.key.user, "tab", t.key.id)
	if release {
		h.opts.Sandboxes.Release(t.key.user)
	}
}

// forgetUserLocked drops a user with no socket and no tab left and reports
// whether their spare should be released.
func (h *Hub) forgetUserLocked(user string) bool {
	us := h.users[user]
	if us == nil || us.conns > 0 {
		return false
	}
	for k := range h.tabs {
		if k.user == user {
			return false
		}
	}
	delete(h.users, user)
	return true
}

// warm starts the user's spare container in the background, so that their
// first Run is fast.
func (h *Hub) warm(u auth.User) {
	if h.opts.Sandboxes.Available() != nil {
		return // Run says why
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		mounts, err := h.opts.Files.Mounts(u)
		if err != nil {
			h.opts.Logger.Warn("terminal: mounts for the spare", "user", u.Username, "error", err)
			return
		}
		h.mu.Lock()
		if us := h.users[u.Username]; us != nil {
			us.spare = mounts
		}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(h.ctx, 2*time.Minute)
		defer cancel()
		err = h.opts.Sandboxes.Prepare(ctx, sandbox.Spec{User: u.Username, Role: u.Role, Mounts: mounts})
		if err != nil && h.ctx.Err() == nil && !errors.Is(err, sandbox.ErrClosed) && !errors.Is(err, sandbox.ErrUnavailable) {
			h.opts.Logger.Warn("terminal: spare", "user", u.Username, "error", err)
		}
	}()
}

// Recheck ends, for user ("" for everyone), whatever now holds more than
// the policy grants: each run whose sandbox has a folder no longer granted,
// or granted read-only now, ends with a plain message, and a spare asked
// for with such folders is dropped and asked for again. The course calls it
// when a student starts a test, a window opens, a deadline passes or an
// item changes: a restriction holds for sandboxes already running, not
// only for new ones. It returns at once; the work runs in the background.
func (h *Hub) Recheck(user string) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	var tabs []*tab
	for k, t := range h.tabs {
		if user == "" || k.user == user {
			tabs = append(tabs, t)
		}
	}
	type spare struct {
		user   auth.User
		mounts []sandbox.Mount
	}
	spares := map[string]spare{}
	for c := range h.conns {
		if us := h.users[c.user.Username]; us != nil && us.spare != nil && (user == "" || c.user.Username == user) {
			spares[c.user.Username] = spare{c.user, us.spare}
		}
	}
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		grants := map[string][]sandbox.Mount{}
		grant := func(u auth.User) ([]sandbox.Mount, error) {
			if g, ok := grants[u.Username]; ok {
				return g, nil
			}
			g, err := h.opts.Files.Mounts(u)
			if err == nil {
				grants[u.Username] = g
			}
			return g, err
		}
		for _, t := range tabs {
			t.recheck(grant)
		}
		h.recheckLive(user)
		for name, sp := range spares {
			if g, err := grant(sp.user); err == nil && covered(sp.mounts, g) {
				continue
			}
			h.opts.Sandboxes.Release(name)
			h.warm(sp.user)
		}
	}()
}

// allowRun applies the per-user run rate limit.
func (h *Hub) allowRun(user string) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	us := h.users[user]
	if us == nil {
		return 0, false
	}
	now := h.opts.Clock()
	keep := us.runs[:0]
	for _, t := range us.runs {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	us.runs = keep
	if len(keep) >= h.opts.RunsPerMinute {
		return keep[0].Add(time.Minute).Sub(now), false
	}
	us.runs = append(us.runs, now)
	return 0, true
}

// matches tells whether a login-session event covers a token hash.
func matches(ev auth.Event, tokenHash []byte) bool {
	if ev.TokenHash != nil {
		return bytes.Equal(ev.TokenHash, tokenHash)
	}
	return ev.Keep == nil || !bytes.Equal(ev.Keep, tokenHash)
}

// sessionEnded closes the sockets and stops the sandboxes of a login
// session that ended (logout, password change, disabled account, expiry).
func (h *Hub) sessionEnded(ev auth.Event) {
	h.mu.Lock()
	var conns []*conn
	for c := range h.conns {
		if c.user.Username == ev.Username && matches(ev, c.tokenHash) {
			conns = append(conns, c)
		}
	}
	var tabs []*tab
	for k, t := range h.tabs {
		if k.user == ev.Username && matches(ev, t.tokenHash()) {
			tabs = append(tabs, t)
			delete(h.tabs, k)
			h.endCastsOfLocked(k)
		}
	}
	h.mu.Unlock()
	if len(tabs) > 0 {
		h.endHelpOf(ev.Username, "the student has logged out")
	}
	if len(conns)+len(tabs) == 0 {
		return
	}
	h.opts.Logger.Info("terminal: login session ended", "user", ev.Username, "reason", ev.Reason, "sockets", len(conns), "tabs", len(tabs))
	for _, t := range tabs {
		t.kill()
	}
	for _, c := range conns {
		c.close(CloseSessionEnded, "session ended: "+ev.Reason)
	}
	h.mu.Lock()
	// Sockets just closed still count until their readers end; a user whose
	// every tab is gone has nothing to warm.
	release := true
	for k := range h.tabs {
		if k.user == ev.Username {
			release = false
		}
	}
	h.mu.Unlock()
	if release {
		h.opts.Sandboxes.Release(ev.Username)
	}
}

// recheck closes sockets whose login session has expired meanwhile. Only a
// socket the student used since the last round keeps the login alive; one
// merely left open lets it idle out like any page.
func (h *Hub) recheck() {
	defer h.wg.Done()
	t := time.NewTicker(h.opts.RecheckEvery)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		type login struct {
			user   string
			active bool
		}
		h.mu.Lock()
		tokens := map[string]*login{}
		for c := range h.conns {
			l := tokens[c.token]
			if l == nil {
				l = &login{user: c.user.Username}
				tokens[c.token] = l
			}
			if c.active.Swap(false) {
				l.active = true
			}
		}
		h.mu.Unlock()
		for tok, l := range tokens {
			check := h.opts.Auth.Check
			if l.active {
				check = h.opts.Auth.Authenticate
			}
			ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
			_, err := check(ctx, tok)
			cancel()
			if errors.Is(err, auth.ErrNoSession) {
				h.sessionEnded(auth.Event{Username: l.user, TokenHash: auth.HashToken(tok), Reason: "expired"})
			}
		}
	}
}

// Stats is a snapshot for the admin page and metrics.
type Stats struct {
	Sockets int // open WebSocket connections
	Tabs    int // tabs, attached or within their grace period
	Running int // tabs with a live sandbox session
}

// Stats counts what the hub holds.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{Sockets: len(h.conns), Tabs: len(h.tabs)}
	for _, t := range h.tabs {
		if t.running() {
			s.Running++
		}
	}
	return s
}

// Close closes every socket with a close frame (1001), stops every session
// the hub started and waits for their containers to be gone, or for ctx.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	tabs := make([]*tab, 0, len(h.tabs))
	for k, t := range h.tabs {
		tabs = append(tabs, t)
		delete(h.tabs, k)
	}
	clear(h.casts)
	h.mu.Unlock()
	h.cancel()
	// In parallel: a close frame to a browser that stopped reading waits
	// for its write deadline.
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Go(func() { c.close(websocket.CloseGoingAway, "server shutting down") })
	}
	closing.Wait()
	var sessions []Session
	for _, t := range tabs {
		if s := t.kill(); s != nil {
			sessions = append(sessions, s)
		}
	}
	var errs []error
	for _, s := range sessions {
		select {
		case <-s.Done():
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
		if ctx.Err() != nil {
			break
		}
	}
	h.spawnMu.Lock()
	h.spawnClosed = true
	h.spawnMu.Unlock()
	waited := make(chan struct{})
	go func() { h.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}
