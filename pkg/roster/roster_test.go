package roster

import (
	"strings"
	"testing"
)

func TestParseRoles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line, want string // want: the role read, or part of the error
		ok               bool
	}{
		{"student", "ann,Ann A,student", "student", true},
		{"teaching assistant", "tom,Tom T,TA", "ta", true},
		{"professor", "pat,Pat P,professor", "professor", true},
		{"admin", "root,Root,admin", "admin", true},
		{"unknown", "eve,Eve,grader", "must be student, ta, professor or admin", false},
		{"empty", "eve,Eve,", "must be student, ta, professor or admin", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			es, err := Parse(strings.NewReader(tc.line))
			switch {
			case tc.ok && (err != nil || len(es) != 1 || es[0].Role != tc.want):
				t.Errorf("Parse(%q) = %+v, %v; want role %q", tc.line, es, err, tc.want)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Parse(%q): error %v, want one saying %q", tc.line, err, tc.want)
			}
		})
	}
}
