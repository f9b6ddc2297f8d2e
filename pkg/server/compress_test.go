package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/server"
)

// userFile is served the way pkg/workspace serves a student's file: with an
// ETag and byte ranges, through http.ServeContent.
var userFile = strings.Repeat("print('a line of a student file')\n", 200)

func compressEnv(t *testing.T) *env {
	return newEnvWith(t, func(o *server.Options) {
		o.Web = fstest.MapFS{
			"index.html":         {Data: []byte("<html>app</html>")},
			"assets/app-1.js":    {Data: []byte("console.log(1)")},
			"assets/app-1.js.br": {Data: []byte("brotli bytes")},
			"assets/app-1.js.gz": {Data: []byte("gzip bytes")},
			"assets/pic-1.png":   {Data: []byte("\x89PNG not twinned")},
		}
		o.Raw = map[string]echo.HandlerFunc{
			"/big": func(c *echo.Context) error {
				return c.JSON(http.StatusOK, map[string]string{"text": strings.Repeat("many words ", 500)})
			},
			"/file": func(c *echo.Context) error {
				c.Response().Header().Set("ETag", `"v1"`)
				c.Response().Header().Set("Content-Type", "text/plain; charset=utf-8")
				http.ServeContent(c.Response(), c.Request(), "a.py", time.Time{}, strings.NewReader(userFile))
				return nil
			},
			"/png": func(c *echo.Context) error {
				return c.Blob(http.StatusOK, "image/png", bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000))
			},
			"/upgrade": func(c *echo.Context) error {
				conn, rw, err := http.NewResponseController(c.Response()).Hijack()
				if err != nil {
					return err
				}
				defer conn.Close()
				_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw frames")
				return rw.Flush()
			},
		}
	})
}

func gunzip(t *testing.T, s string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(s))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCompression(t *testing.T) {
	t.Parallel()
	e := compressEnv(t)
	c := e.Client()
	tests := []struct {
		name, path string
		hdr        []string
		status     int
		encoding   string
		body       string // "" = not checked
	}{
		{name: "generated JSON is gzipped", path: "/api/big", hdr: []string{"Accept-Encoding", "gzip, deflate, br"}, status: 200, encoding: "gzip"},
		{name: "not for a browser that refuses gzip", path: "/api/big", hdr: []string{"Accept-Encoding", "br, gzip;q=0"}, status: 200},
		{name: "not without Accept-Encoding", path: "/api/big", hdr: []string{"Accept-Encoding", "identity"}, status: 200},
		{name: "a user's file is sent as it is", path: "/api/file", hdr: []string{"Accept-Encoding", "gzip"}, status: 200, body: userFile},
		{name: "a byte range of it is the bytes asked for", path: "/api/file", hdr: []string{"Accept-Encoding", "gzip", "Range", "bytes=6-30"}, status: 206, body: userFile[6:31]},
		{name: "its ETag still answers If-None-Match", path: "/api/file", hdr: []string{"Accept-Encoding", "gzip", "If-None-Match", `"v1"`}, status: 304, body: ""},
		{name: "compressed types are left alone", path: "/api/png", hdr: []string{"Accept-Encoding", "gzip"}, status: 200},
		{name: "an asset's brotli twin", path: "/assets/app-1.js", hdr: []string{"Accept-Encoding", "gzip, deflate, br, zstd"}, status: 200, encoding: "br", body: "brotli bytes"},
		{name: "an asset's gzip twin", path: "/assets/app-1.js", hdr: []string{"Accept-Encoding", "gzip"}, status: 200, encoding: "gzip", body: "gzip bytes"},
		{name: "an asset as it is", path: "/assets/app-1.js", hdr: []string{"Accept-Encoding", "identity"}, status: 200, body: "console.log(1)"},
		{name: "an asset without a twin", path: "/assets/pic-1.png", hdr: []string{"Accept-Encoding", "br, gzip"}, status: 200, body: "\x89PNG not twinned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.Do("GET", tt.path, "", tt.hdr...)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %.200s", r.Status, tt.status, r.Raw)
			}
			if got := r.Header.Get("Content-Encoding"); got != tt.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tt.encoding)
			}
			if !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Accept-Encoding") {
				t.Errorf("no Vary: Accept-Encoding (%q)", r.Header.Values("Vary"))
			}
			if tt.body != "" && r.Raw != tt.body {
				t.Errorf("body %.80q, want %.80q", r.Raw, tt.body)
			}
			switch {
			case tt.path == "/api/big" && tt.encoding == "gzip":
				if !strings.Contains(gunzip(t, r.Raw), "many words") {
					t.Error("the gzipped body is not the JSON")
				}
			case tt.path == "/api/file":
				if r.Header.Get("ETag") != `"v1"` {
					t.Errorf("ETag %q", r.Header.Get("ETag"))
				}
			case strings.HasPrefix(tt.path, "/assets/"):
				if !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
					t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
				}
				if want := map[string]string{".js": "text/javascript", ".png": "image/png"}[tt.path[strings.LastIndex(tt.path, "."):]]; !strings.HasPrefix(r.Header.Get("Content-Type"), want) {
					t.Errorf("Content-Type %q, want %s", r.Header.Get("Content-Type"), want)
				}
			}
		})
	}
}

// A WebSocket upgrade reaches its handler with a connection it can hijack,
// and what it writes there is not touched.
func TestCompressionLeavesUpgradesAlone(t *testing.T) {
	t.Parallel()
	e := compressEnv(t)
	u, _ := url.Parse(e.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /api/upgrade HTTP/1.1\r\nHost: "+u.Host+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nAccept-Encoding: gzip\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// After a 101 the connection is the handler's: read to its close.
	body, _ := io.ReadAll(br)
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Content-Encoding") != "" || string(body) != "raw frames" {
		t.Fatalf("%d %q %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), body)
	}
}
