package terminal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/sandbox"
	"github.com/pythonide/pyide/pkg/store"
)

// The live classroom (docs/http-api.md, docs/protocol.md): the help queue,
// whose helpers join a student's console read-only and type only with the
// student's consent; a professor's broadcast, which students follow
// read-only; and each run's transcript.
//
//	POST   /api/live/help               student: {tab, path, message} → {request}; 201
//	GET    /api/live/help               teaching: the open queue; a student: their own open request
//	POST   /api/live/help/{id}/take     teaching: take it → {request}
//	DELETE /api/live/help/{id}          the student or teaching: end it (closes the helpers' view)
//	POST   /api/live/broadcast          staff: {tab, path} → {broadcast}
//	DELETE /api/live/broadcast          staff: stop their broadcast
//	GET    /api/live/broadcasts         the live broadcasts
//	GET    /api/live/broadcasts/{id}/file      {path, content, version}: the file it runs
//	POST   /api/live/broadcasts/{id}/try       a copy of that file in the caller's Local folder → {path}
//	GET    /api/live/transcripts?user=U&item=I teaching: any student's; a student: their own
//	GET    /api/live/transcripts/{id}          the console bytes
//	GET    /api/ws/watch?help=ID | ?broadcast=ID  the read-only console (protocol.md)

// cast is a professor's broadcast of one of their tabs.
type cast struct {
	ID      string    `json:"id"`
	User    string    `json:"username"`
	Name    string    `json:"display_name"`
	Path    string    `json:"path"` // the file it runs, as the professor last said or ran
	Started time.Time `json:"started_at"`
	key     tabKey
	owner   auth.User
}

// HelpRequest is a help request as the API shows it.
type HelpRequest struct {
	ID        int64      `json:"id"`
	Username  string     `json:"username"`
	Path      string     `json:"path"`
	Message   string     `json:"message"`
	CreatedAt time.Time  `json:"created_at"`
	TakenBy   string     `json:"taken_by"`
	TakenAt   *time.Time `json:"taken_at"`
	Open      bool       `json:"open"`
	// Live: the student's console is open now (a helper can join it).
	Live bool `json:"live"`
}

// Transcript is a transcript as the API lists it.
type Transcript struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Path      string    `json:"path"`
	Item      string    `json:"item"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	ExitCode  int       `json:"exit_code"`
	Reason    string    `json:"reason"`
	Truncated bool      `json:"truncated"`
	Bytes     int       `json:"bytes"`
}

// maxHelpMessage bounds the line a student types with a request.
const maxHelpMessage = 500

// Register adds the hub's HTTP endpoints to g (the /api group, behind
// login): GET /console, the console's settings for the user asking, and
// the /live endpoints of the live classroom.
func (h *Hub) Register(g *echo.Group) {
	g.GET("/console", h.settings)
	l := g.Group("/live")
	l.POST("/help", h.handleAskHelp)
	l.GET("/help", h.handleHelpQueue)
	l.POST("/help/:id/take", h.handleTakeHelp, auth.RequireTeaching)
	l.DELETE("/help/:id", h.handleEndHelp)
	l.POST("/broadcast", h.handleStartCast, auth.RequireStaff)
	l.DELETE("/broadcast", h.handleStopCast, auth.RequireStaff)
	l.GET("/broadcasts", h.handleCasts)
	l.GET("/broadcasts/:id/file", h.handleCastFile)
	l.POST("/broadcasts/:id/try", h.handleTryCast)
	l.GET("/transcripts", h.handleTranscripts)
	l.GET("/transcripts/:id", h.handleTranscript)
}

func httpError(code int, msg string) error { return echo.NewHTTPError(code, msg) }

// liveBlocked is the plain refusal for a student inside a restricted test,
// or nil.
func (h *Hub) liveBlocked(u auth.User) error {
	if u.Teaches() || h.opts.Course == nil {
		return nil
	}
	if test := h.opts.Course.LiveRestriction(u.Username, h.opts.Clock()); test != "" {
		return httpError(http.StatusForbidden, "during the test "+strconv.Quote(test)+" the help queue and broadcasts are switched off")
	}
	return nil
}

func (h *Hub) needLive() error {
	if h.opts.Live == nil {
		return httpError(http.StatusServiceUnavailable, "the live classroom is not available on this server")
	}
	return nil
}

// audit records an action in the background; a failure is logged.
func (h *Hub) audit(actor, action, target string, details map[string]any) {
	if h.opts.Live == nil {
		return
	}
	h.spawn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.opts.Live.Audit(ctx, actor, action, target, details); err != nil {
			h.opts.Logger.Error("terminal: audit failed", "action", action, "error", err)
		}
	})
}

func (h *Hub) tabLive(k tabKey) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.tabs[k]
	return t != nil && !t.idle()
}

func (h *Hub) helpView(r store.HelpRequest) HelpRequest {
	v := HelpRequest{ID: r.ID, Username: r.Username, Path: r.Path, Message: r.Message, CreatedAt: r.CreatedAt,
		TakenAt: r.TakenAt, Open: r.ClosedAt == nil, Live: h.tabLive(tabKey{r.Username, r.Tab})}
	if r.TakenBy != nil {
		v.TakenBy = *r.TakenBy
	}
	return v
}

type askHelpRequest struct {
	Tab     string `json:"tab"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (h *Hub) handleAskHelp(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	if err := h.needLive(); err != nil {
		return err
	}
	var in askHelpRequest
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	switch {
	case u.Role != auth.RoleStudent:
		return httpError(http.StatusForbidden, "only students ask for help")
	case !tabRe.MatchString(in.Tab):
		return httpError(http.StatusBadRequest, "tab must be 1 to 64 letters, digits, _ or -")
	case len(in.Message) > maxHelpMessage:
		return httpError(http.StatusBadRequest, "the message is too long: at most 500 characters")
	case len(in.Path) > 1024:
		return httpError(http.StatusBadRequest, "path too long")
	}
	if err := h.liveBlocked(u); err != nil {
		return err
	}
	r, err := h.opts.Live.OpenHelpRequest(c.Request().Context(), store.HelpRequest{
		Username: u.Username, Tab: in.Tab, Path: in.Path, Message: strings.TrimSpace(in.Message), CreatedAt: h.opts.Clock()})
	if errors.Is(err, store.ErrConflict) {
		return httpError(http.StatusConflict, "you have asked for help already; wait, or cancel that request first")
	}
	if err != nil {
		return err
	}
	h.audit(u.Username, "live.help_ask", u.Username, map[string]any{"id": r.ID, "path": r.Path})
	return c.JSON(http.StatusCreated, map[string]any{"request": h.helpView(r)})
}

func (h *Hub) handleHelpQueue(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	if err := h.needLive(); err != nil {
		return err
	}
	rs, err := h.opts.Live.OpenHelpRequests(c.Request().Context())
	if err != nil {
		return err
	}
	out := []HelpRequest{}
	for _, r := range rs {
		if u.Teaches() || r.Username == u.Username {
			out = append(out, h.helpView(r))
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"now": h.opts.Clock(), "requests": out})
}

func helpID(c *echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, httpError(http.StatusNotFound, "no such help request")
	}
	return id, nil
}

func (h *Hub) handleTakeHelp(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	if err := h.needLive(); err != nil {
		return err
	}
	id, err := helpID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, err := h.opts.Live.TakeHelpRequest(ctx, id, u.Username, h.opts.Clock())
	if errors.Is(err, store.ErrNotFound) {
		return httpError(http.StatusNotFound, "this help request has ended")
	}
	if err != nil {
		return err
	}
	h.audit(u.Username, "live.help_take", r.Username, map[string]any{"id": r.ID})
	return c.JSON(http.StatusOK, map[string]any{"request": h.helpView(r)})
}

func (h *Hub) handleEndHelp(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	if err := h.needLive(); err != nil {
		return err
	}
	id, err := helpID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, err := h.opts.Live.HelpRequestByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.Teaches() && r.Username != u.Username) {
		return httpError(http.StatusNotFound, "no such help request")
	}
	if err != nil {
		return err
	}
	if r.ClosedAt == nil {
		if r, err = h.opts.Live.CloseHelpRequest(ctx, id, u.Username, h.opts.Clock()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		h.audit(u.Username, "live.help_end", r.Username, map[string]any{"id": id})
	}
	h.endHelp(id, "the help request has ended")
	return c.NoContent(http.StatusNoContent)
}

// endHelp closes every helper's view of request id.
func (h *Hub) endHelp(id int64, reason string) {
	for _, t := range h.allTabs() {
		t.endWatchers(reason, func(w *watch) bool { return w.kind == watchHelp && w.help == id })
	}
}

func (h *Hub) allTabs() []*tab {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*tab, 0, len(h.tabs))
	for _, t := range h.tabs {
		out = append(out, t)
	}
	return out
}

type startCastRequest struct {
	Tab  string `json:"tab"`
	Path string `json:"path"`
}

func (h *Hub) handleStartCast(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var in startCastRequest
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	if !tabRe.MatchString(in.Tab) {
		return httpError(http.StatusBadRequest, "tab must be 1 to 64 letters, digits, _ or -")
	}
	k := tabKey{u.Username, in.Tab}
	h.mu.Lock()
	t := h.tabs[k]
	if t == nil || h.closed {
		h.mu.Unlock()
		return httpError(http.StatusConflict, "open your console first, then start the broadcast")
	}
	cs := h.castOfLocked(u.Username)
	if cs != nil && cs.key != k {
		// One broadcast per professor: moving it to another tab ends the
		// old one's followers.
		h.stopCastLocked(cs)
		cs = nil
	}
	if cs == nil {
		cs = &cast{ID: randomID(), User: u.Username, Name: u.DisplayName, Started: h.opts.Clock(), key: k, owner: u}
		h.casts[cs.ID] = cs
		t.mu.Lock()
		t.cast = cs.ID
		t.mu.Unlock()
	}
	cs.Path = in.Path
	out := *cs
	h.mu.Unlock()
	h.audit(u.Username, "live.broadcast_start", in.Path, map[string]any{"id": out.ID})
	return c.JSON(http.StatusOK, map[string]any{"broadcast": out})
}

func (h *Hub) handleStopCast(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	h.mu.Lock()
	cs := h.castOfLocked(u.Username)
	if cs != nil {
		h.stopCastLocked(cs)
	}
	h.mu.Unlock()
	if cs != nil {
		h.audit(u.Username, "live.broadcast_stop", cs.Path, map[string]any{"id": cs.ID})
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Hub) castOfLocked(user string) *cast {
	for _, cs := range h.casts {
		if cs.User == user {
			return cs
		}
	}
	return nil
}

// stopCastLocked ends a broadcast and closes its followers' views.
func (h *Hub) stopCastLocked(cs *cast) {
	delete(h.casts, cs.ID)
	if t := h.tabs[cs.key]; t != nil {
		t.mu.Lock()
		if t.cast == cs.ID {
			t.cast = ""
		}
		t.mu.Unlock()
		h.spawn(func() {
			t.endWatchers("the broadcast has ended", func(w *watch) bool { return w.cast == cs.ID })
		})
	}
}

// endCastsOfLocked ends the broadcasts of tabs that are gone.
func (h *Hub) endCastsOfLocked(keys ...tabKey) {
	for _, cs := range h.casts {
		for _, k := range keys {
			if cs.key == k {
				delete(h.casts, cs.ID)
			}
		}
	}
}

func (h *Hub) handleCasts(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	out := []cast{}
	if h.liveBlocked(u) == nil {
		h.mu.Lock()
		for _, cs := range h.casts {
			v := *cs
			v.Path = h.castPathLocked(cs)
			out = append(out, v)
		}
		h.mu.Unlock()
	}
	return c.JSON(http.StatusOK, map[string]any{"broadcasts": out})
}

// castPathLocked is the file a broadcast runs now: its tab's current run's,
// else the one the professor named.
func (h *Hub) castPathLocked(cs *cast) string {
	if t := h.tabs[cs.key]; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.cur != nil && t.cur.path != "" {
			return t.cur.path
		}
	}
	return cs.Path
}

// sharedPath reports whether a broadcast may show its file to the class:
// the professor's own work or course material students may read anyway,
// never another user's folder, a test or a submission.
func sharedPath(p string, cs cast) bool {
	segs := strings.Split(p, "/")
	switch {
	case len(segs) >= 3 && segs[0] == "Local" && segs[1] == cs.User:
		return true
	case len(segs) >= 2 && segs[0] == "Lecture Notes":
		return true
	}
	return false
}

// castFor finds a live broadcast the user may follow.
func (h *Hub) castFor(u auth.User, id string) (cast, string, error) {
	if err := h.liveBlocked(u); err != nil {
		return cast{}, "", err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.casts[id]
	if cs == nil {
		return cast{}, "", httpError(http.StatusNotFound, "this broadcast has ended")
	}
	return *cs, h.castPathLocked(cs), nil
}

func (h *Hub) handleCastFile(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	cs, p, err := h.castFor(u, c.Param("id"))
	if err != nil {
		return err
	}
	if p == "" || h.opts.Shared == nil || !sharedPath(p, cs) {
		return c.JSON(http.StatusOK, map[string]any{"path": p, "content": "", "version": ""})
	}
	// Read as the professor: the broadcast shows their file to the class.
	b, version, err := h.opts.Shared.ReadFile(c.Request().Context(), cs.owner, p)
	if err != nil {
		return httpError(http.StatusNotFound, "the broadcast's file cannot be read now")
	}
	return c.JSON(http.StatusOK, map[string]any{"path": p, "content": string(b), "version": version})
}

func (h *Hub) handleTryCast(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	cs, p, err := h.castFor(u, c.Param("id"))
	if err != nil {
		return err
	}
	if p == "" || h.opts.Shared == nil || !sharedPath(p, cs) {
		return httpError(http.StatusConflict, "the broadcast runs no file of its own to copy")
	}
	ctx := c.Request().Context()
	b, _, err := h.opts.Shared.ReadFile(ctx, cs.owner, p)
	if err != nil {
		return httpError(http.StatusNotFound, "the broadcast's file cannot be read now")
	}
	to, err := h.opts.Shared.CopyToLocal(ctx, u, path.Base(p), b)
	if err != nil {
		msg, _ := forUser(err)
		return httpError(http.StatusConflict, "could not copy the file: "+msg)
	}
	return c.JSON(http.StatusCreated, map[string]any{"path": to})
}

func transcriptView(t store.Transcript) Transcript {
	v := Transcript{ID: t.ID, Username: t.Username, Path: t.Path, StartedAt: t.StartedAt, EndedAt: t.EndedAt,
		ExitCode: t.ExitCode, Reason: t.Reason, Truncated: t.Truncated, Bytes: cap(t.Output)}
	if t.Item != nil {
		v.Item = *t.Item
	}
	return v
}

func (h *Hub) handleTranscripts(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	if err := h.needLive(); err != nil {
		return err
	}
	who := c.QueryParam("user")
	if who == "" {
		who = u.Username
	}
	if who != u.Username && !u.Teaches() {
		return httpError(http.StatusNotFound, "no such transcripts")
	}
	ts, err := h.opts.Live.Transcripts(c.Request().Context(), who, c.QueryParam("item"), 200)
	if err != nil {
		return err
	}
	out := make([]Transcript, 0, len(ts))
	for _, t := range ts {
		out = append(out, transcriptView(t))
	}
	return c.JSON(http.StatusOK, map[string]any{"transcripts": out})
}

func (h *Hub) handleTranscript(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	if err := h.needLive(); err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return httpError(http.StatusNotFound, "no such transcript")
	}
	t, err := h.opts.Live.TranscriptByID(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Username != u.Username && !u.Teaches()) {
		return httpError(http.StatusNotFound, "no such transcript")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "application/octet-stream", t.Output)
}

// transcriptItem is the item a run belongs to, guessed from its file:
// Submissions/<item>/… or, where copy-starter puts an assignment,
// Local/<user>/<item>/….
func transcriptItem(treePath string) *string {
	segs := strings.Split(treePath, "/")
	switch {
	case len(segs) >= 4 && segs[0] == "Submissions":
		return &segs[1]
	case len(segs) >= 4 && segs[0] == "Local":
		return &segs[2]
	}
	return nil
}

// saveTranscript keeps a run's console in the background.
func (h *Hub) saveTranscript(r *run, ex sandbox.Exit, log []byte, truncated bool) {
	if h.opts.Live == nil || r.sess == nil {
		return
	}
	tr := store.Transcript{Username: r.user.Username, Path: r.path, Item: transcriptItem(r.path), StartedAt: r.began,
		EndedAt: time.Now(), ExitCode: ex.Code, Reason: ex.Reason, Truncated: truncated, Output: log}
	h.spawn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := h.opts.Live.AddTranscript(ctx, tr); err != nil {
			h.opts.Logger.Error("terminal: keeping a transcript", "user", tr.Username, "error", err)
		}
	})
}

// pruneTranscripts deletes transcripts older than the retention, hourly.
func (h *Hub) pruneTranscripts() {
	defer h.wg.Done()
	if h.opts.Live == nil || h.opts.TranscriptRetention <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
		n, err := h.opts.Live.DeleteTranscriptsBefore(ctx, h.opts.Clock().Add(-h.opts.TranscriptRetention))
		cancel()
		switch {
		case err != nil && h.ctx.Err() == nil:
			h.opts.Logger.Warn("terminal: deleting old transcripts", "error", err)
		case n > 0:
			h.opts.Logger.Info("terminal: old transcripts deleted", "count", n)
		}
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func randomID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WatchHandler is the /api/ws/watch endpoint: a read-only console of
// another user's tab, for a helper who took a help request (?help=ID) or
// a follower of a broadcast (?broadcast=ID). Like Handler, it checks the
// session itself.
func (h *Hub) WatchHandler() echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if !auth.SameOrigin(r, h.opts.PublicURL) {
			return httpError(http.StatusForbidden, "cross-site WebSocket refused")
		}
		u, err := h.opts.Auth.UserFromRequest(r)
		if errors.Is(err, auth.ErrNoSession) {
			return httpError(http.StatusUnauthorized, "not logged in")
		}
		if err != nil {
			return err
		}
		if u.MustChangePassword {
			return auth.RefusePasswordChange(c)
		}
		w, k, err := h.watchTarget(r.Context(), u, r.URL.Query())
		if err != nil {
			return err
		}
		ws, err := h.up.Upgrade(c.Response(), r, nil)
		if err != nil {
			return nil // the upgrader has answered
		}
		cn := newConn(h, ws, u, auth.SessionToken(r))
		cn.watch = w
		if msg := h.registerWatcher(cn, k); msg != "" {
			closeFrame(ws, CloseWatchEnded, msg)
			return nil
		}
		if w.kind == watchHelp {
			h.audit(u.Username, "live.join", k.user, map[string]any{"help": w.help, "tab": k.id})
		}
		h.wg.Add(1)
		go cn.writeLoop()
		cn.readLoop()
		if w.kind == watchHelp {
			h.audit(u.Username, "live.leave", k.user, map[string]any{"help": w.help, "tab": k.id})
		}
		return nil
	}
}

// watchTarget checks, before the upgrade, that u may watch what the query
// names, and returns the watch and the tab it watches.
func (h *Hub) watchTarget(ctx context.Context, u auth.User, q map[string][]string) (*watch, tabKey, error) {
	get := func(k string) string {
		if v := q[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	if id := get("broadcast"); id != "" {
		cs, _, err := h.castFor(u, id)
		if err != nil {
			return nil, tabKey{}, err
		}
		return &watch{kind: watchFollow, cast: cs.ID}, cs.key, nil
	}
	id, err := strconv.ParseInt(get("help"), 10, 64)
	if err != nil || id <= 0 {
		return nil, tabKey{}, httpError(http.StatusBadRequest, "say ?help=ID or ?broadcast=ID")
	}
	if !u.Teaches() {
		return nil, tabKey{}, httpError(http.StatusForbidden, "only teaching staff join a student's console")
	}
	if err := h.needLive(); err != nil {
		return nil, tabKey{}, err
	}
	hr, err := h.opts.Live.HelpRequestByID(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound), err == nil && hr.ClosedAt != nil:
		return nil, tabKey{}, httpError(http.StatusNotFound, "this help request has ended")
	case err != nil:
		return nil, tabKey{}, err
	case hr.TakenBy == nil || *hr.TakenBy != u.Username:
		return nil, tabKey{}, httpError(http.StatusForbidden, "take the request first")
	}
	if h.opts.Course != nil {
		if test := h.opts.Course.LiveRestriction(hr.Username, h.opts.Clock()); test != "" {
			return nil, tabKey{}, httpError(http.StatusForbidden, hr.Username+" is in a test; their console cannot be joined now")
		}
	}
	return &watch{kind: watchHelp, help: id}, tabKey{hr.Username, hr.Tab}, nil
}

// registerWatcher binds a watcher to the tab k; it says why not, or "".
func (h *Hub) registerWatcher(c *conn, k tabKey) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return "server shutting down"
	}
	t := h.tabs[k]
	if t == nil {
		return k.user + "'s console is not open"
	}
	if c.watch.kind == watchFollow && t.cast != c.watch.cast {
		return "the broadcast has ended"
	}
	c.tab = t
	if !t.addWatcher(c) {
		return k.user + "'s console has closed"
	}
	h.wg.Add(1) // the reader; done in unregister
	h.conns[c] = struct{}{}
	return ""
}

// recheckLive ends what the live classroom may no longer do for user ("" for
// everyone): a student now inside a restricted test is no longer joined
// and follows no broadcast.
func (h *Hub) recheckLive(user string) {
	if h.opts.Course == nil {
		return
	}
	now := h.opts.Clock()
	blocked := map[string]bool{}
	isBlocked := func(name string) bool {
		b, ok := blocked[name]
		if !ok {
			b = h.opts.Course.LiveRestriction(name, now) != ""
			blocked[name] = b
		}
		return b
	}
	for _, t := range h.allTabs() {
		owner := isBlocked(t.key.user)
		t.mu.Lock()
		var ending []*conn
		for c := range t.watchers {
			mine := user == "" || c.user.Username == user || t.key.user == user
			if mine && ((owner && c.watch.kind == watchHelp) ||
				(c.watch.kind == watchFollow && !c.user.Teaches() && isBlocked(c.user.Username))) {
				ending = append(ending, c)
			}
		}
		for _, c := range ending {
			delete(t.watchers, c)
		}
		if len(ending) > 0 {
			t.watchersChangedLocked()
		}
		t.mu.Unlock()
		h.closeWatchers(ending, CloseWatchEnded, "a test has begun; the live classroom is switched off for it")
	}
}

// endHelpOf ends the open help requests of a student who logged out, and
// their helpers' views.
func (h *Hub) endHelpOf(user, reason string) {
	if h.opts.Live == nil {
		return
	}
	h.spawn(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rs, err := h.opts.Live.CloseHelpRequestsOf(ctx, user, user, time.Now())
		if err != nil {
			h.opts.Logger.Error("terminal: ending help requests at logout", "user", user, "error", err)
		}
		for _, r := range rs {
			h.audit(user, "live.help_end", user, map[string]any{"id": r.ID, "reason": "logout"})
			h.endHelp(r.ID, reason)
		}
	})
}
