package workspace

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// validPDF is a complete one-page PDF (the same bytes a viewer renders in
// frontend/e2e), so the test is about a real PDF, not just its magic.
func validPDF() string {
	stream := "BT /F1 24 Tf 72 720 Td (Week 1 notes) Tj ET"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b strings.Builder
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.String()
}

// cspDirectives splits a Content-Security-Policy into directive → tokens.
func cspDirectives(csp string) map[string][]string {
	out := map[string][]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			out[strings.ToLower(f[0])] = f[1:]
		}
	}
	return out
}

// Every user file, PDFs included, is served inert: Chromium renders a PDF
// under the bare CSP sandbox (frontend/e2e proves it in a frame), so there
// is no exception that HTML merely named .pdf could use to run on our origin.
func TestServeFileKeepsEveryFileInert(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	const page = "<html><body><script>alert(document.cookie)</script></body></html>"
	const svg = `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`
	cases := []struct {
		name, path, content, wantType string
	}{
		{"real PDF", "Lecture Notes/notes.pdf", validPDF(), "application/pdf"},
		{"real PDF, upper-case extension", "Local/alice/SCAN.PDF", validPDF(), "application/pdf"},
		{"HTML named .pdf", "Local/alice/fake.pdf", page, "application/pdf"},
		{"HTML", "Local/alice/page.html", page, "text/plain; charset=utf-8"},
		{"XHTML", "Local/alice/page.xhtml", page, "text/plain; charset=utf-8"},
		{"SVG", "Local/alice/pic.svg", svg, "text/plain; charset=utf-8"},
		{"JavaScript", "Local/alice/app.js", "alert(1)\n", "text/plain; charset=utf-8"},
		{"HTML with no extension", "Local/alice/README", page, "text/plain; charset=utf-8"},
	}
	for _, tc := range cases {
		ev.disk(tc.path, tc.content)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ev.do(alice.Username, http.MethodGet, q("/api/files/content", tc.path), nil)
			expect(t, r, http.StatusOK)
			if r.Body.String() != tc.content {
				t.Fatalf("body differs from the file: %q", r.Body.String())
			}
			h := r.Header()
			if got := h.Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type %q, want %q", got, tc.wantType)
			}
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "SAMEORIGIN",
				"Cache-Control":          "private, no-cache",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}
			csp := cspDirectives(h.Get("Content-Security-Policy"))
			// A bare sandbox: any allow-* token (allow-scripts, allow-same-origin…) would let the file act.
			if tokens, ok := csp["sandbox"]; !ok || len(tokens) != 0 {
				t.Errorf("CSP %q: want a bare sandbox directive", h.Get("Content-Security-Policy"))
			}
			if got := strings.Join(csp["default-src"], " "); got != "'none'" {
				t.Errorf("CSP %q: default-src is %q, want 'none'", h.Get("Content-Security-Policy"), got)
			}
			for d := range csp {
				if d != "default-src" && strings.HasSuffix(d, "-src") {
					t.Errorf("CSP %q: %s loosens default-src 'none'", h.Get("Content-Security-Policy"), d)
				}
			}
		})
	}
}
