package terminal

import (
	"bytes"
	"strings"
	"testing"
)

func TestRing(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"empty", 8, nil, ""},
		{"fits", 8, []string{"ab", "cd"}, "abcd"},
		{"exactly full", 4, []string{"ab", "cd"}, "abcd"},
		{"wraps, no line break", 4, []string{"abc", "def"}, "cdef"},
		{"wraps, starts after the first line break", 8, []string{"one\ntwo\n", "three"}, "three"},
		{"one write larger than the ring", 4, []string{"abcdefgh"}, "efgh"},
		{"many small writes", 5, []string{"a", "b", "c", "d", "e", "f", "g"}, "cdefg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ring{max: tt.max}
			for _, w := range tt.writes {
				r.write([]byte(w))
			}
			if got := string(r.snapshot()); got != tt.want {
				t.Errorf("snapshot = %q, want %q", got, tt.want)
			}
			r.reset()
			if got := r.snapshot(); len(got) != 0 {
				t.Errorf("after reset: %q", got)
			}
		})
	}
}

// The ring never holds more than its size, whatever is written.
func TestRingBounded(t *testing.T) {
	r := ring{max: 1000}
	var all bytes.Buffer
	for i := range 5000 {
		chunk := strings.Repeat(string(rune('a'+i%26)), i%37+1)
		r.write([]byte(chunk))
		all.WriteString(chunk)
		if len(r.buf) > r.max {
			t.Fatalf("ring grew to %d bytes", len(r.buf))
		}
	}
	if got := r.snapshot(); !bytes.HasSuffix(all.Bytes(), got) || len(got) != r.max {
		t.Errorf("snapshot is not the last %d bytes written", r.max)
	}
}
