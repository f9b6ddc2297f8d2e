package main

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// The report is one self-contained page: inline SVG, no script, no
// external CSS, so it opens from an artifacts folder anywhere.

const chartW, chartH, pad = 520, 200, 40

// histogramSVG draws one latency histogram with log-spaced buckets.
func histogramSVG(title string, bs []Bucket) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" role="img" aria-label="%s">`, chartW, chartH+pad, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="4" y="14" class="t">%s</text>`, template.HTMLEscapeString(title))
	if len(bs) == 0 {
		b.WriteString(`<text x="4" y="40">no samples</text></svg>`)
		return template.HTML(b.String())
	}
	top := 1
	for _, x := range bs {
		top = max(top, x.Count)
	}
	bw := float64(chartW-pad) / float64(len(bs))
	for i, x := range bs {
		h := float64(chartH-40) * float64(x.Count) / float64(top)
		xp := float64(pad) + float64(i)*bw
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="bar"><title>%s–%s ms: %d</title></rect>`,
			xp+1, float64(chartH)-h, bw-2, h, num(x.Lo), hiLabel(x.Hi), x.Count)
		if x.Count > 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="s" text-anchor="middle">%d</text>`, xp+bw/2, float64(chartH)-h-3, x.Count)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="s" text-anchor="middle">%s</text>`, xp+bw/2, chartH+14, num(x.Lo))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="s" text-anchor="end">ms (bucket start)</text>`, chartW, chartH+32)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func num(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gs", v/1000)
	}
	return fmt.Sprintf("%g", v)
}

func hiLabel(v float64) string {
	if v == 0 {
		return "∞"
	}
	return num(v)
}

// timelineSVG draws keystroke round trip p50/p99 per window (left axis,
// ms) and running sandboxes (right axis).
func timelineSVG(ws []window) template.HTML {
	var b strings.Builder
	w := chartW + 200
	fmt.Fprintf(&b, `<svg width="%d" height="%d" role="img" aria-label="REPL round trip over time">`, w, chartH+pad)
	b.WriteString(`<text x="4" y="14" class="t">keystroke round trip per 5 s: p50 blue, p99 red (ms, left); running sandboxes grey (right)</text>`)
	if len(ws) == 0 {
		b.WriteString(`<text x="4" y="40">no samples</text></svg>`)
		return template.HTML(b.String())
	}
	maxMS, maxS := 1.0, 1.0
	for _, x := range ws {
		maxMS = math.Max(maxMS, x.P99)
		maxS = math.Max(maxS, x.Sessions)
	}
	plotW := float64(w - 2*pad)
	span := ws[len(ws)-1].At
	xOf := func(t float64) float64 { return float64(pad) + plotW*t/span }
	yOf := func(v, top float64) float64 { return float64(chartH) - float64(chartH-30)*v/top }
	line := func(class string, val func(window) (float64, bool), top float64) {
		var pts []string
		for _, x := range ws {
			if v, ok := val(x); ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(x.At), yOf(v, top)))
			}
		}
		fmt.Fprintf(&b, `<polyline class="%s" points="%s"/>`, class, strings.Join(pts, " "))
	}
	line("sess", func(x window) (float64, bool) { return x.Sessions, x.Sessions >= 0 }, maxS)
	line("p50", func(x window) (float64, bool) { return x.P50, x.Samples > 0 }, maxMS)
	line("p99", func(x window) (float64, bool) { return x.P99, x.Samples > 0 }, maxMS)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="ax"/>`, pad, chartH, w-pad, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="34" class="s" text-anchor="end">%.0f ms</text>`, pad-2, maxMS)
	fmt.Fprintf(&b, `<text x="%d" y="34" class="s">%.0f</text>`, w-pad+2, maxS)
	for _, t := range []float64{0, span / 2, span} {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="s" text-anchor="middle">%.0f s</text>`, xOf(t), chartH+14, t)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pyide-load N={{.R.Config.N}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;max-width:1100px}
pre{background:#f5f5f5;padding:12px;overflow:auto;font-size:12px;white-space:pre-wrap}
.t{font-size:13px;font-weight:600}.s{font-size:10px;fill:#444}
.bar{fill:#4a7fc1}.p50{fill:none;stroke:#1f5fbf;stroke-width:1.5}.p99{fill:none;stroke:#c0392b;stroke-width:1.5}
.sess{fill:none;stroke:#999;stroke-dasharray:4 3}.ax{stroke:#888}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:8px}
</style></head><body>
<h1>Classroom load: N={{.R.Config.N}}, {{.R.Config.Duration}}</h1>
<pre>{{.Summary}}</pre>
<h2>Over time</h2>
{{.Timeline}}
<h2>Latency histograms</h2>
<div class="grid">{{range .Hists}}<div>{{.}}</div>{{end}}</div>
<p>Raw figures: result.json (same folder). Server log: server.log.</p>
</body></html>
`))

func writeReport(w io.Writer, r *Result) error {
	var hists []template.HTML
	for _, h := range []struct{ key, title string }{
		{"login", "login"},
		{"click_warm", "click → first output, warm"},
		{"click_cold", "click → first output, cold"},
		{"click_stampede", "click → first output, all N at once (ours)"},
		{"baseline", "click → first output, docker run per click (all N at once)"},
		{"repl_keystroke", "REPL keystroke round trip"},
		{"repl_line", "REPL line (Enter → prompt)"},
		{"save", "file save"},
	} {
		if bs, ok := r.Histograms[h.key]; ok {
			hists = append(hists, histogramSVG(h.title, bs))
		}
	}
	return page.Execute(w, map[string]any{
		"R": r, "Summary": r.summaryText(), "Timeline": timelineSVG(r.Timeline), "Hists": hists,
	})
}
