package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// loopbackURL checks that raw names a server on this machine and returns it
// normalised (scheme and host only; "localhost" becomes 127.0.0.1 so that
// no resolver can point it elsewhere). The load generator opens hundreds of
// sessions with real passwords: aimed at a real server by mistake it would
// be an attack, so anything that is not loopback is refused.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-server: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("-server %q: want an http:// or https:// URL", raw)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("-server %q: want only scheme, host and port", raw)
	}
	host, port := u.Hostname(), u.Port()
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-server %q: not a loopback address; the load generator only talks to a server on this machine", raw)
	}
	if port == "" {
		return nil, fmt.Errorf("-server %q: name the port", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(ip.String(), port)}, nil
}

// loopbackDocker checks DOCKER_HOST: the baseline and the container census
// talk to the local engine only.
func loopbackDocker(dockerHost string) error {
	if dockerHost == "" || strings.HasPrefix(dockerHost, "unix://") {
		return nil
	}
	u, err := url.Parse(dockerHost)
	if err == nil && u.Scheme == "tcp" {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("DOCKER_HOST=%q: the load generator uses only a local Docker engine", dockerHost)
}
