package grading

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sameOutput compares a program's output with the expected output of an
// I/O case, as the case's options say; where names the first difference
// ("on line 3") for the student.
//
//   - Line ends are always \n ("\r\n" counts as "\n").
//   - ignoreTrailing: spaces and tabs at the end of each line, and blank
//     lines at the end, do not count.
//   - ignoreCase: letters compare without case.
//   - tolerance: words that are numbers on both sides are equal within it
//     (|a-b| <= tolerance); the rest of the line compares word by word, so
//     the amount of space between words does not count either.
func sameOutput(actual, expected string, ignoreTrailing, ignoreCase bool, tolerance *float64) (bool, string) {
	a, e := lines(actual, ignoreTrailing), lines(expected, ignoreTrailing)
	for i := 0; i < max(len(a), len(e)); i++ {
		if i >= len(a) {
			return false, fmt.Sprintf("(line %d is missing)", i+1)
		}
		if i >= len(e) {
			return false, fmt.Sprintf("(line %d is one too many)", i+1)
		}
		if !sameLine(a[i], e[i], ignoreCase, tolerance) {
			return false, fmt.Sprintf("on line %d", i+1)
		}
	}
	return true, ""
}

func lines(s string, ignoreTrailing bool) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	out := strings.Split(s, "\n")
	if ignoreTrailing {
		for i := range out {
			out[i] = strings.TrimRight(out[i], " \t\r")
		}
		for len(out) > 0 && out[len(out)-1] == "" {
			out = out[:len(out)-1]
		}
		return out
	}
	// Without the option, a final line end is still just the end.
	if len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func sameLine(a, e string, ignoreCase bool, tolerance *float64) bool {
	if tolerance == nil {
		if ignoreCase {
			return strings.EqualFold(a, e)
		}
		return a == e
	}
	aw, ew := strings.Fields(a), strings.Fields(e)
	if len(aw) != len(ew) {
		return false
	}
	for i := range aw {
		x, errA := strconv.ParseFloat(aw[i], 64)
		y, errE := strconv.ParseFloat(ew[i], 64)
		switch {
		case errA == nil && errE == nil && !math.IsNaN(x) && !math.IsNaN(y):
			if math.Abs(x-y) > *tolerance && x != y {
				return false
			}
		case ignoreCase:
			if !strings.EqualFold(aw[i], ew[i]) {
				return false
			}
		default:
			if aw[i] != ew[i] {
				return false
			}
		}
	}
	return true
}
