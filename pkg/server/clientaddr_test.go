package server_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/server"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	proxies := prefixes("10.0.0.0/8", "fd00::/8")
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string // X-Forwarded-For header lines
		want    string
	}{
		{"no proxies: the peer", nil, "203.0.113.7:5000", nil, "203.0.113.7"},
		{"no proxies: a forged header is ignored", nil, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"untrusted peer: its header is ignored", proxies, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted proxy: the address it forwards for", proxies, "10.0.0.2:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"trusted proxy, no header: the proxy", proxies, "10.0.0.2:4000", nil, "10.0.0.2"},
		{"spoofed chain: what the client wrote is left of the real hop", proxies, "10.0.0.2:4000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"spoofed chain naming a proxy", proxies, "10.0.0.2:4000", []string{"10.9.9.9, 198.51.100.1"}, "198.51.100.1"},
		{"two proxies: the rightmost hop that is not ours", proxies, "10.0.0.2:4000", []string{"1.2.3.4, 198.51.100.1, 10.0.0.3"}, "198.51.100.1"},
		{"header split over lines", proxies, "10.0.0.2:4000", []string{"1.2.3.4", "198.51.100.1"}, "198.51.100.1"},
		{"unreadable hop: stop at the last one read", proxies, "10.0.0.2:4000", []string{"198.51.100.1, unknown"}, "10.0.0.2"},
		{"unreadable hop further left is never reached", proxies, "10.0.0.2:4000", []string{"garbage, 198.51.100.1"}, "198.51.100.1"},
		{"only proxies: the leftmost", proxies, "10.0.0.2:4000", []string{"10.0.0.5, 10.0.0.3"}, "10.0.0.5"},
		{"IPv6 proxy and client", proxies, "[fd00::1]:4000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv4-mapped peer counts as IPv4", proxies, "[::ffff:10.0.0.2]:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"empty entries are skipped", proxies, "10.0.0.2:4000", []string{"198.51.100.1, "}, "198.51.100.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := server.ClientAddr(tc.trusted)(r); got != tc.want {
				t.Errorf("client %q, want %q", got, tc.want)
			}
		})
	}
}

// The client address reaches the login (the throttle's key, the session's
// record): a header is believed only from a trusted proxy.
func TestLoginSeesClientAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted []netip.Prefix
		xff     string
		want    string
	}{
		{"untrusted peer", prefixes("10.0.0.0/8"), "198.51.100.1", "127.0.0.1"},
		{"trusted proxy", prefixes("127.0.0.0/8"), "198.51.100.1", "198.51.100.1"},
		{"trusted proxy, spoofed chain", prefixes("127.0.0.0/8"), "6.6.6.6, 198.51.100.1", "198.51.100.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, func(o *server.Options) { o.TrustedProxies = tc.trusted })
			r := e.Client().Do("POST", "/api/auth/login", `{"username":"alice","password":"correct horse"}`, "X-Forwarded-For", tc.xff)
			if r.Status != 200 {
				t.Fatalf("login: %d %s", r.Status, r.Raw)
			}
			token := strings.TrimPrefix(strings.SplitN(r.Header.Get("Set-Cookie"), ";", 2)[0], auth.CookieName+"=")
			s, _, err := e.DB.SessionUser(context.Background(), auth.HashToken(token))
			if err != nil {
				t.Fatal(err)
			}
			if ip := s.IP; ip != tc.want {
				t.Errorf("the login came from %q, want %q", ip, tc.want)
			}
		})
	}
}
