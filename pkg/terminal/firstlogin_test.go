package terminal_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pythonide/pyide/pkg/store"
)

// A user who must change a handed-out password gets no console until
// they have: the socket is refused before any upgrade.
func TestHandshakeRefusesPasswordChangeRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	h, err := hasher.Hash(ctx, "from the roster")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreateUser(ctx, store.User{Username: "newbie", Role: "student", PasswordHash: h, MustChangePassword: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(e.srv.URL+"/api/auth/login", "application/json",
		strings.NewReader(`{"username":"newbie","password":"from the roster"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	ck := resp.Cookies()[0]
	ws, status, err := e.dialRaw(ck, e.srv.URL, "")
	if ws != nil {
		ws.Close()
	}
	if status != http.StatusForbidden {
		t.Fatalf("status = %d (err %v), want 403", status, err)
	}
}
