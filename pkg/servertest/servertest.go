// Package servertest is what the tests of pyide's server parts share, as
// coder's coderdtest serves coderd's: a real server (the HTTP layer and
// login on a fresh PostgreSQL database) serving the areas a test gives it,
// users and logged-in clients, a settable clock and named waits. Nothing
// here is a mock, and nothing outside tests imports it.
package servertest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/server"
	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

// Options change the server New starts; the zero value serves login alone.
type Options struct {
	// DB is the store to serve; nil: a fresh migrated database.
	DB *store.DB
	// Hasher hashes passwords, at login and in AddUser; nil: bcrypt's
	// cheapest cost, for tests that do not measure bcrypt.
	Hasher *auth.Hasher
	// Clock is the login service's time; nil: the real clock.
	Clock *Clock
	// Auth adjusts the login service's options before it is made.
	Auth func(*auth.Options)
	// HTTP adjusts the server's options (its Routes, most often) before it
	// is made; it is called once the store and the login service exist,
	// since areas are made of them.
	HTTP func(*Server, *server.Options)
}

// Server is a running server for one test, closed when the test ends.
type Server struct {
	t      testing.TB
	DB     *store.DB
	Auth   *auth.Service
	Hasher *auth.Hasher
	URL    string
}

// New starts a server for t.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, DB: opts.DB, Hasher: opts.Hasher}
	if s.DB == nil {
		s.DB = storetest.New(t)
	}
	if s.Hasher == nil {
		s.Hasher = auth.NewHasher(4, 4)
	}
	ao := auth.Options{DB: s.DB, Hasher: s.Hasher, IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour,
		MaxFailures: 5, Window: time.Minute, Logger: Quiet()}
	if opts.Clock != nil {
		ao.Clock = opts.Clock.Now
	}
	if opts.Auth != nil {
		opts.Auth(&ao)
	}
	s.Auth = auth.New(ao)
	so := server.Options{Logger: Quiet(), Auth: s.Auth, MaxBodyBytes: 1 << 20}
	if opts.HTTP != nil {
		opts.HTTP(s, &so)
	}
	ts := httptest.NewServer(server.New(so).Handler())
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// Quiet is a logger that writes nothing.
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// AddUser creates u with password, and returns it as stored.
func (s *Server) AddUser(u store.User, password string) store.User {
	s.t.Helper()
	h, err := s.Hasher.Hash(context.Background(), password)
	if err != nil {
		s.t.Fatal(err)
	}
	u.PasswordHash = h
	created, err := s.DB.CreateUser(context.Background(), u)
	if err != nil {
		s.t.Fatal(err)
	}
	return created
}

// Client is one browser: its own cookies, so its own session.
type Client struct {
	s    *Server
	HTTP *http.Client
}

// Client is a new browser, logged in as nobody.
func (s *Server) Client() *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{s: s, HTTP: &http.Client{Jar: jar}}
}

// Login is a new browser logged in as username; the test fails unless the
// login succeeds.
func (s *Server) Login(username, password string) *Client {
	s.t.Helper()
	c := s.Client()
	if r := c.Login(username, password); r.Status != http.StatusOK {
		s.t.Fatalf("login %s: %d %s", username, r.Status, r.Raw)
	}
	return c
}

// Login posts the login form and returns the answer, whatever it is.
func (c *Client) Login(username, password string) Reply {
	c.s.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": username, "password": password})
	return c.Do("POST", "/api/auth/login", string(b))
}

// Reply is an answer, its body read and, when it is a JSON object, decoded.
type Reply struct {
	Status int
	Header http.Header
	Raw    string
	Body   map[string]any
}

// Do sends a request with body (as JSON when there is one) and headers
// given as name, value pairs; an empty value removes the header.
func (c *Client) Do(method, path, body string, hdr ...string) Reply {
	c.s.t.Helper()
	req, err := http.NewRequest(method, c.s.URL+path, strings.NewReader(body))
	if err != nil {
		c.s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r
}
