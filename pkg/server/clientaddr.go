package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr returns the function that names the client of a request: the
// address its connection comes from, unless that is one of the trusted
// reverse proxies. Only then is X-Forwarded-For believed, and read from the
// right: each proxy appends the address it was connected from, so the
// rightmost hop that is not one of ours is the client, and anything to its
// left was written by the client itself and proves nothing. A hop that is
// not an address ends the walk at the last one read.
//
// Echo's own extractors trust loopback and private networks by default; a
// lab whose machines sit on a private network could then claim any address.
func ClientAddr(trusted []netip.Prefix) func(*http.Request) string {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		client, err := parseAddr(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		if !isTrusted(client) {
			return client.String()
		}
		var hops []string
		for _, line := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(line, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			hop := strings.TrimSpace(hops[i])
			if hop == "" {
				continue
			}
			a, err := parseAddr(hop)
			if err != nil {
				break
			}
			client = a
			if !isTrusted(a) {
				break
			}
		}
		return client.String()
	}
}

// parseAddr reads an address with or without a port ("[::1]:80",
// "10.0.0.2:4000", "2001:db8::7"); an IPv4-mapped IPv6 address is IPv4.
func parseAddr(s string) (netip.Addr, error) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	return a.Unmap(), err
}
