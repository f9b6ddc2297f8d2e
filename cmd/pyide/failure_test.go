package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pythonide/pyide/pkg/pgcluster"
	"github.com/pythonide/pyide/pkg/sandbox/sandboxtest"
	"github.com/pythonide/pyide/pkg/servertest"
)

// TestDatabaseRestart: PostgreSQL goes away under a running server;
// requests fail cleanly and fast, and everything recovers without
// restarting pyide.
func TestDatabaseRestart(t *testing.T) {
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	_ = os.Chmod(filepath.Dir(dir), 0o755)
	// fsync stays on: the outage is a crash, and what was committed before
	// it must still be there after.
	c, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	s := startServe(t, map[string]string{"DATABASE_URL": c.URL(""), "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
	client := s.login(t)
	if code, _ := get(t, client, s.base+"/api/auth/me"); code != 200 {
		t.Fatalf("me: %d", code)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	// Every answer during the outage is quick, JSON and 5xx.
	for i := 0; i < 3; i++ {
		start := time.Now()
		code, body := get(t, client, s.base+"/api/auth/me")
		if code < 500 || !strings.Contains(body, `"error"`) || time.Since(start) > 15*time.Second {
			t.Fatalf("during the outage: %d %s after %v", code, body, time.Since(start))
		}
	}
	code, body := get(t, http.DefaultClient, s.base+"/readyz")
	if code != 503 || !strings.Contains(body, `"database":{"status":"down"`) {
		t.Fatalf("readyz during the outage: %d %s", code, body)
	}
	if code, _ := get(t, http.DefaultClient, s.base+"/healthz"); code != 200 {
		t.Fatalf("healthz must stay up: %d", code)
	}
	if err := c.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, 30*time.Second, "readyz after the database came back", func() bool {
		code, _ := get(t, http.DefaultClient, s.base+"/readyz")
		return code == 200
	})
	servertest.Eventually(t, 30*time.Second, "the old session after the database came back", func() bool {
		code, _ := get(t, client, s.base+"/api/auth/me")
		return code == 200
	})
}

// dockerProxy forwards a unix socket to the real engine, so a test can take
// "Docker" away and bring it back.
func dockerProxy(t *testing.T, path string) (stop func()) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				out, err := net.Dial("unix", "/var/run/docker.sock")
				if err != nil {
					in.Close()
					return
				}
				go func() { _, _ = io.Copy(out, in); out.Close() }()
				_, _ = io.Copy(in, out)
				in.Close()
			}()
		}
	}()
	return func() { ln.Close() }
}

type wsEvent struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

// runOverWS saves code, runs it over the WebSocket and returns the events
// and output seen until the REPL prompt, an exit or an error event.
func runOverWS(t *testing.T, s *served, client *http.Client, path, code string) (events []wsEvent, output string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", s.base+"/api/files/content?path="+path, strings.NewReader(code))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("saving %s: %d", path, resp.StatusCode)
	}
	d := websocket.Dialer{Jar: client.Jar, HandshakeTimeout: 10 * time.Second}
	// A fresh tab: a reconnect to an old one would first replay how its
	// last run ended.
	tab := fmt.Sprintf("t%d", time.Now().UnixNano())
	conn, _, err := d.Dial(strings.Replace(s.base, "http", "ws", 1)+"/api/ws?tab="+tab, http.Header{"Origin": {s.base}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.WriteJSON(map[string]string{"type": "run", "path": path})
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	var out strings.Builder
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("websocket: %v (events %v, output %q)", err, events, out.String())
		}
		if kind == websocket.BinaryMessage {
			out.Write(msg)
			if strings.HasSuffix(out.String(), ">>> ") { // the script ended in the REPL
				return events, out.String()
			}
			continue
		}
		var ev wsEvent
		_ = json.Unmarshal(msg, &ev)
		events = append(events, ev)
		if ev.Type == "exited" || ev.Type == "error" {
			return events, out.String()
		}
	}
}

// TestDockerAwayAndBack: without a Docker engine the IDE still logs in and
// saves files, Run says execution is unavailable, /readyz names Docker as
// down; when the engine answers again, Run works without a restart.
func TestDockerAwayAndBack(t *testing.T) {
	sandboxtest.RequireDocker(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	// The proxy stops after the server (cleanups run last first): a server
	// that lost its engine before stopping could not remove its sandboxes.
	var stop func()
	t.Cleanup(func() {
		if stop != nil {
			stop()
		}
	})
	s := startServe(t, map[string]string{"DATABASE_URL": "", "DOCKER_HOST": "unix://" + sock, "SANDBOX_IMAGE": sandboxtest.Image(),
		"BACKUP_SCHEDULE": "1h", "BACKUP_DIR": t.TempDir()})
	client := s.login(t)
	code, body := get(t, http.DefaultClient, s.base+"/readyz")
	if code != 200 || !strings.Contains(body, `"docker":{"status":"down"`) {
		t.Fatalf("readyz without Docker: %d %s", code, body)
	}
	events, _ := runOverWS(t, s, client, "Local/admin/hello.py", "print('hello ' * 2)\n")
	last := events[len(events)-1]
	if last.Type != "error" || !strings.Contains(last.Message, "execution is unavailable") {
		t.Fatalf("run without Docker: %+v", events)
	}
	stop = dockerProxy(t, sock)
	servertest.Eventually(t, 45*time.Second, "Docker seen as back", func() bool {
		_, body := get(t, http.DefaultClient, s.base+"/readyz")
		return strings.Contains(body, `"docker":{"status":"ok"`)
	})
	events, out := runOverWS(t, s, client, "Local/admin/hello.py", "print('hello ' * 2)\n")
	if !strings.Contains(out, "hello hello") {
		t.Fatalf("run after Docker came back: events %+v, output %q\n%s", events, out, s.stderr.String())
	}
	// Every metric the alert rules use is exported (the rules list them).
	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	servertest.Eventually(t, 30*time.Second, "the first scheduled backup", func() bool {
		_, body := get(t, http.DefaultClient, s.base+"/metrics")
		return !strings.Contains(body, "pyide_backup_last_success_timestamp_seconds 0")
	})
	_, metrics := get(t, http.DefaultClient, s.base+"/metrics")
	names := regexp.MustCompile(`(?m)^#\s+(pyide_[a-z_]+)`).FindAllStringSubmatch(string(rules), -1)
	if len(names) < 8 {
		t.Fatalf("found only %d metric names in the alert rules' header", len(names))
	}
	if !regexp.MustCompile(`(?m)^pyide_output_bytes_total [1-9]`).MatchString(metrics) {
		t.Error("pyide_output_bytes_total did not count the run's output")
	}
	for _, m := range names {
		if !regexp.MustCompile(`(?m)^` + m[1] + `[{ ]`).MatchString(metrics) {
			t.Errorf("the alert rules use %s, which /metrics does not export", m[1])
		}
	}
}
