package main

import (
	"strings"
	"testing"
)

func TestCompareMarksWhatMissesItsTarget(t *testing.T) {
	var a, b Result
	a.Config.N, b.Config.N = 120, 120
	a.Click.All, b.Click.All = Summary{Count: 500, P99: 4800}, Summary{Count: 500, P99: 420}
	a.Click.ServerWarm, a.Click.ServerCold = 70, 30
	b.Click.ServerWarm, b.Click.ServerCold = 99, 1
	b.ErrorTotal = 2
	text := compareText(abDesigns, []*Result{&a, &b})
	line := func(prefix string) string {
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no %q line in:\n%s", prefix, text)
		return ""
	}
	if l := line("every click, p99"); !strings.Contains(l, "4800.0 !") || !strings.Contains(l, "420.0  ") {
		t.Errorf("every click: %q", l)
	}
	if l := line("clicks that waited for the engine"); !strings.Contains(l, "30.0 !") || !strings.Contains(l, "1.0  ") {
		t.Errorf("engine share: %q", l)
	}
	if l := line("errors"); !strings.Contains(l, "0.0  ") || !strings.Contains(l, "2.0 !") {
		t.Errorf("errors: %q", l)
	}
	if l := line("click, p50"); strings.Contains(l, "!") {
		t.Errorf("a figure without a target was marked: %q", l)
	}
}

func TestAGoalIsNotMetByMeasuringNothing(t *testing.T) {
	var r Result
	for _, g := range goals {
		if g.what == "keystroke round trip, p99" && g.met(&r) {
			t.Error("no keystroke measured, yet its target counts as met")
		}
	}
}
