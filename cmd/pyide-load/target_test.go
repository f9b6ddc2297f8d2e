package main

import (
	"testing"
	"time"
)

func TestLoopbackURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string // want "" = refused
	}{
		{"ipv4 loopback", "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"trailing slash", "http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
		{"all of 127/8", "http://127.9.9.9:80", "http://127.9.9.9:80"},
		{"ipv6 loopback", "http://[::1]:8080", "http://[::1]:8080"},
		{"localhost is pinned to 127.0.0.1", "http://LocalHost:8080", "http://127.0.0.1:8080"},
		{"https", "https://127.0.0.1:8443", "https://127.0.0.1:8443"},
		{"private address", "http://10.0.0.5:8080", ""},
		{"public name", "http://ide.example.edu:8080", ""},
		{"a name that merely starts with localhost", "http://localhost.example.com:8080", ""},
		{"decimal 127 trick", "http://2130706433:8080", ""},
		{"unspecified", "http://0.0.0.0:8080", ""},
		{"no port", "http://127.0.0.1", ""},
		{"a path", "http://127.0.0.1:8080/api", ""},
		{"user info", "http://u:p@127.0.0.1:8080", ""},
		{"websocket scheme", "ws://127.0.0.1:8080", ""},
		{"no scheme", "127.0.0.1:8080", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := loopbackURL(tt.in)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("loopbackURL(%q) = %v, want refused", tt.in, u)
			case tt.want != "" && err != nil:
				t.Errorf("loopbackURL(%q): %v", tt.in, err)
			case tt.want != "" && u.String() != tt.want:
				t.Errorf("loopbackURL(%q) = %v, want %v", tt.in, u, tt.want)
			}
		})
	}
}

func TestLoopbackDocker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, host string
		ok         bool
	}{
		{"default socket", "", true},
		{"unix socket", "unix:///var/run/docker.sock", true},
		{"tcp loopback", "tcp://127.0.0.1:2375", true},
		{"tcp remote", "tcp://192.168.1.10:2376", false},
		{"ssh", "ssh://user@host", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := loopbackDocker(tt.host); (err == nil) != tt.ok {
				t.Errorf("loopbackDocker(%q) = %v, want ok=%v", tt.host, err, tt.ok)
			}
		})
	}
}

func TestThinkRange(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "5s", "8s-2s", "0s-1s", "-1s-2s", "a-b", "2s-", "2s-8s-9s"} {
		var r thinkRange
		if err := r.Set(bad); err == nil {
			t.Errorf("-think %q accepted as %s", bad, r.String())
		}
	}
	var r thinkRange
	if err := r.Set("6s-24s"); err != nil || r.lo != 6*time.Second || r.hi != 24*time.Second {
		t.Errorf("-think 6s-24s = %v, %v", r, err)
	}
}
