// Package terminal owns /api/ws: the WebSocket bridge between a browser tab
// and the TTY of that user's sandbox. It speaks the protocol of
// docs/protocol.md: JSON commands in text frames from the browser; TTY
// bytes in binary frames and JSON events in text frames back. It keeps a
// tab's sandbox through short disconnects (grace period, bounded scrollback
// replayed on reattach), throttles a flooding program through the TTY
// instead of buffering without bound, caps output per command, rate-limits
// runs, warms a spare container for each connected user, and closes a
// user's sockets and sandboxes when their login session ends.
//
// It must never: upgrade a request without a live session cookie or from a
// foreign Origin, let one user reach another user's session (tabs are keyed
// by username and tab id), run a path the workspace policy does not let the
// user read, forward input to a session before the sandbox made it active,
// hold more than a fixed amount of output per connection, or keep a sandbox
// alive past the grace period once its last socket is gone.
//
// Wiring (cmd/pyide):
//
//	hub := terminal.New(terminal.Options{
//		Auth:      authService,
//		Sandboxes: sb, // runs programs and alone says whether the engine is there
//		Files:     terminal.WorkspaceFiles{W: ws},
//		PublicURL: cfg.PublicURL,
//	})
//	srv := server.New(server.Options{...,
//		Raw:            map[string]echo.HandlerFunc{"/ws": hub.Handler()},
//		BeforeShutdown: func(ctx context.Context) { _ = hub.Close(ctx) },
//	})
//
// The hub sees programs through two interfaces it declares, Sandboxes and
// Session: it never learns whether Docker exists, and never waits for the
// engine while holding a lock.
//
// The course calls hub.Recheck when its rules change (a test starts, a
// deadline passes), so a restriction reaches sandboxes already running.
//
// Hub.Close closes every socket with a close frame and stops every session
// it started; close the sandbox Manager after it.
package terminal
