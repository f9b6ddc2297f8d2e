package grading

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pythonide/pyide/pkg/store"
)

// File is one file of the work under test, named relative to its folder.
type File struct {
	Name string
	Data []byte
}

// TestResult is what one test gave; a run keeps them as they were, with the
// test's input and expected output of that moment.
type TestResult struct {
	Test      int64   `json:"test"`
	Kind      string  `json:"kind"`
	Name      string  `json:"name"` // an I/O case's name; "file.py::test_x" for a test of a file
	Hidden    bool    `json:"hidden"`
	Points    float64 `json:"points"`
	MaxPoints float64 `json:"max_points"`
	Passed    bool    `json:"passed"`
	// Outcome: passed, failed, error (the test could not run), timeout,
	// memory, skipped, not_run.
	Outcome string `json:"outcome"`
	// Reason says why, in plain words ("" when it passed).
	Reason   string  `json:"reason"`
	Stdin    string  `json:"stdin,omitempty"`
	Expected string  `json:"expected,omitempty"`
	Actual   string  `json:"actual,omitempty"`
	Stderr   string  `json:"stderr,omitempty"`
	Message  string  `json:"message,omitempty"` // pytest's report of a failure
	Seconds  float64 `json:"seconds"`
}

// Outcome is a whole grading: its results, score and, when the grader
// could not report, why.
type Outcome struct {
	Tests    []TestResult `json:"tests"`
	Score    float64      `json:"score"`
	MaxScore float64      `json:"max_score"`
	Error    string       `json:"error,omitempty"`
	Took     float64      `json:"seconds"`
}

// Limits of one grading.
const (
	outputBytes    = 64 << 10 // stdout kept of one I/O case
	reportBytes    = 16 << 20 // the grader's whole report
	gradeSlack     = 15 * time.Second
	maxGradingTime = 5 * time.Minute
)

// grader's input and report: see sandbox-image/grader.py.
type graderInput struct {
	Key         string        `json:"key"`
	Files       []graderFile  `json:"files"`
	IO          []graderCase  `json:"io"`
	Py          []graderTests `json:"py"`
	TestSeconds int           `json:"test_seconds"`
	OutputBytes int           `json:"output_bytes"`
}

type graderFile struct {
	Name string `json:"name"`
	Data string `json:"data"`
}

type graderCase struct {
	ID         int64  `json:"id"`
	Main       string `json:"main"`
	Stdin      string `json:"stdin"`
	CPUSeconds int    `json:"cpu_seconds"`
}

type graderTests struct {
	ID     int64   `json:"id"`
	Name   string  `json:"name"`
	Source string  `json:"source"`
	Points float64 `json:"points"`
}

type graderReport struct {
	IO []struct {
		ID          int64   `json:"id"`
		Stdout      string  `json:"stdout"`
		StdoutBytes int64   `json:"stdout_bytes"`
		Stderr      string  `json:"stderr"`
		Exit        *int    `json:"exit"`
		Signal      *int    `json:"signal"`
		Timeout     bool    `json:"timeout"`
		Memory      bool    `json:"memory"`
		CPUSeconds  float64 `json:"cpu_seconds"`
		Missing     bool    `json:"missing"`
	} `json:"io"`
	Py []struct {
		ID    int64   `json:"id"`
		Error *string `json:"error"`
		Tests []struct {
			Name    string  `json:"name"`
			Outcome string  `json:"outcome"`
			Message string  `json:"message"`
			Points  float64 `json:"points"`
			Seconds float64 `json:"seconds"`
		} `json:"tests"`
	} `json:"py"`
	Error string `json:"error"`
}

var reportMark = []byte("@@PYIDE-RESULT ")

// grade runs tests against files in one fresh grading container and judges
// what came back.
func (s *Service) grade(ctx context.Context, r Runner, files []File, tests []store.GradingTest) (Outcome, error) {
	began := time.Now()
	if r == nil {
		return Outcome{}, ErrUnavailable
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return Outcome{}, err
	}
	files = unwrap(files)
	in := graderInput{Key: hex.EncodeToString(key), TestSeconds: s.opts.TestSeconds, OutputBytes: outputBytes}
	budget := 5 * time.Second
	var total int64
	for _, f := range files {
		total += int64(len(f.Data))
		in.Files = append(in.Files, graderFile{Name: f.Name, Data: base64.StdEncoding.EncodeToString(f.Data)})
	}
	if total > maxSendBytes {
		return Outcome{}, fmt.Errorf("%w: the files are larger than %d MB together", errTooLarge, maxSendBytes>>20)
	}
	for _, t := range tests {
		switch t.Kind {
		case store.TestIO:
			in.IO = append(in.IO, graderCase{ID: t.ID, Main: mainFile(files, t.MainFile), Stdin: t.Stdin, CPUSeconds: t.CPUSeconds})
			budget += time.Duration(2*t.CPUSeconds+1) * time.Second
		case store.TestPy:
			in.Py = append(in.Py, graderTests{ID: t.ID, Name: t.Name, Source: t.Source, Points: t.Points})
			budget += time.Duration(s.opts.TestSeconds) * time.Second * 3
		}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return Outcome{}, err
	}
	res, err := r.Run(ctx, body, reportBytes, min(budget+gradeSlack, maxGradingTime))
	if err != nil {
		return Outcome{}, err
	}
	rep, why := readReport(res, key)
	out := judge(tests, rep, why)
	out.Took = time.Since(began).Seconds()
	return out, nil
}

// ErrUnavailable is what a Runner answers when no grading container can
// run (no Docker engine answers, or the server is shutting down).
var ErrUnavailable = errors.New("grading is unavailable: no Docker engine answers")

// errTooLarge: the files are too large to send to the grader.
var errTooLarge = errors.New("too large to grade")

// unwrap takes away the one folder every file is in: a student who submits
// (or checks) their folder hw1 has hw1/main.py, and the tests import
// solution from the top.
func unwrap(files []File) []File {
	for {
		top := ""
		for _, f := range files {
			dir, _, ok := strings.Cut(f.Name, "/")
			if !ok || (top != "" && dir != top) {
				return files
			}
			top = dir
		}
		if top == "" {
			return files
		}
		out := make([]File, len(files))
		for i, f := range files {
			out[i] = File{Name: strings.TrimPrefix(f.Name, top+"/"), Data: f.Data}
		}
		files = out
	}
}

// mainFile is the file an I/O case runs: the test's, else main.py, else the
// only .py file at the top.
func mainFile(files []File, want string) string {
	if want != "" {
		return want
	}
	var top []string
	for _, f := range files {
		if f.Name == "main.py" {
			return f.Name
		}
		if !strings.Contains(f.Name, "/") && path.Ext(f.Name) == ".py" {
			top = append(top, f.Name)
		}
	}
	if len(top) == 1 {
		return top[0]
	}
	return "main.py"
}

// readReport finds the grader's signed report in what the container
// printed. Anything else there (a program writing to the container's
// stdout) is ignored; a report that does not verify is no report.
func readReport(res RunResult, key []byte) (*graderReport, string) {
	out := res.Stdout
	for {
		i := bytes.Index(out, reportMark)
		if i < 0 {
			break
		}
		out = out[i+len(reportMark):]
		line, rest, ok := bytes.Cut(out, []byte("\n"))
		if !ok {
			break
		}
		lenStr, sig, _ := bytes.Cut(line, []byte(" "))
		n, err := strconv.Atoi(string(lenStr))
		if err != nil || n < 0 || n > len(rest) {
			continue
		}
		payload := rest[:n]
		mac := hmac.New(sha256.New, key)
		mac.Write(payload)
		want := hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(want), sig) {
			continue
		}
		var rep graderReport
		if err := json.Unmarshal(payload, &rep); err != nil {
			continue
		}
		return &rep, ""
	}
	switch {
	case res.TimedOut:
		return nil, "the grading ran out of time before every test was done"
	case res.OOM:
		return nil, "the grading ran out of memory"
	case res.Truncated:
		return nil, "the grading printed more than it may"
	}
	return nil, "the grader's report is missing or damaged (the program under test may have interfered with it)"
}

// judge turns the grader's report into one result per test. Without a
// report every test fails with why.
func judge(tests []store.GradingTest, rep *graderReport, why string) Outcome {
	var out Outcome
	if rep != nil && rep.Error != "" {
		why = "the grader failed: " + firstLine(rep.Error)
	}
	out.Error = why
	ioRes := map[int64]int{}
	pyRes := map[int64]int{}
	if rep != nil {
		for i, r := range rep.IO {
			ioRes[r.ID] = i
		}
		for i, r := range rep.Py {
			pyRes[r.ID] = i
		}
	}
	notRun := func(t store.GradingTest, name string, points float64) TestResult {
		reason := why
		if reason == "" {
			reason = "the test did not run"
		}
		return TestResult{Test: t.ID, Kind: t.Kind, Name: name, Hidden: t.Hidden, MaxPoints: points, Outcome: "not_run",
			Reason: reason, Stdin: t.Stdin, Expected: t.Expected}
	}
	for _, t := range tests {
		switch t.Kind {
		case store.TestIO:
			i, ok := ioRes[t.ID]
			if !ok {
				out.Tests = append(out.Tests, notRun(t, t.Name, t.Points))
				continue
			}
			r := rep.IO[i]
			tr := TestResult{Test: t.ID, Kind: t.Kind, Name: t.Name, Hidden: t.Hidden, MaxPoints: t.Points,
				Stdin: t.Stdin, Expected: t.Expected, Actual: r.Stdout, Stderr: tail(r.Stderr, 2000), Seconds: r.CPUSeconds}
			switch {
			case r.Missing:
				tr.Outcome, tr.Reason = "error", "there is no file "+mainFile(nil, t.MainFile)+" to run"
			case r.Timeout:
				tr.Outcome, tr.Reason = "timeout", fmt.Sprintf("it did not finish within %d s of CPU time (an endless loop, or waiting for more input than the test gives?)", t.CPUSeconds)
			case r.Memory:
				tr.Outcome, tr.Reason = "memory", "it used more memory than it may"
			case r.Signal != nil:
				tr.Outcome, tr.Reason = "error", fmt.Sprintf("it was ended by signal %d", *r.Signal)
			case r.StdoutBytes > int64(len(r.Stdout)) && r.StdoutBytes > outputBytes:
				tr.Outcome, tr.Reason = "failed", fmt.Sprintf("it printed more than %d KB", outputBytes>>10)
			case r.Exit != nil && *r.Exit != 0:
				tr.Outcome, tr.Reason = "error", "it stopped with an error: "+lastLine(r.Stderr)
				if lastLine(r.Stderr) == "" {
					tr.Reason = fmt.Sprintf("it ended with exit code %d", *r.Exit)
				}
			default:
				if ok, where := sameOutput(r.Stdout, t.Expected, t.IgnoreTrailingWhitespace, t.IgnoreCase, t.Tolerance); ok {
					tr.Outcome, tr.Passed, tr.Points = "passed", true, t.Points
				} else {
					tr.Outcome, tr.Reason = "failed", "its output differs from the expected output "+where
				}
			}
			out.Tests = append(out.Tests, tr)
		case store.TestPy:
			i, ok := pyRes[t.ID]
			if !ok {
				out.Tests = append(out.Tests, notRun(t, t.Name, t.Points))
				continue
			}
			f := rep.Py[i]
			if len(f.Tests) == 0 {
				tr := notRun(t, t.Name, 0)
				tr.Outcome, tr.Reason = "error", "the file has no tests"
				if f.Error != nil {
					tr.Reason, tr.Message = "the test file could not be run", *f.Error
				}
				out.Tests = append(out.Tests, tr)
				continue
			}
			for _, pt := range f.Tests {
				tr := TestResult{Test: t.ID, Kind: t.Kind, Name: t.Name + "::" + pt.Name, Hidden: t.Hidden,
					MaxPoints: pt.Points, Message: pt.Message, Seconds: pt.Seconds, Outcome: pt.Outcome}
				if pt.Outcome == "skipped" {
					tr.MaxPoints = 0 // a skipped test counts neither way
				}
				switch pt.Outcome {
				case "passed":
					tr.Passed, tr.Points = true, pt.Points
				case "skipped":
					tr.Reason = "skipped: " + firstLine(pt.Message)
				default:
					tr.Outcome, tr.Reason = pyReason(pt.Outcome, pt.Message, f.Error)
				}
				out.Tests = append(out.Tests, tr)
			}
		}
	}
	for _, tr := range out.Tests {
		out.Score += tr.Points
		out.MaxScore += tr.MaxPoints
	}
	return out
}

// pyReason words a failed test of a file from pytest's report.
func pyReason(outcome, message string, fileError *string) (string, string) {
	switch {
	case fileError != nil:
		return "error", "the test file could not be run: " + firstLine(errLine(*fileError))
	case strings.Contains(message, "TestTimeout"):
		return "timeout", "it did not finish in time (an endless loop?)"
	case strings.Contains(message, "the program used more memory"):
		return "memory", "it used more memory than it may"
	case strings.Contains(message, "ProgramError:"):
		return "error", errLine(message)
	case outcome == "error":
		return "error", "the test could not run: " + errLine(message)
	}
	return "failed", errLine(message)
}

// errLine is the gist of pytest's report: its "E" lines, joined.
func errLine(message string) string {
	var lines []string
	for l := range strings.SplitSeq(message, "\n") {
		if rest, ok := strings.CutPrefix(l, "E "); ok {
			lines = append(lines, strings.TrimSpace(rest))
		}
	}
	if len(lines) == 0 {
		return lastLine(message)
	}
	out := strings.Join(lines, " · ")
	out = strings.TrimPrefix(out, "ProgramError: ")
	if len(out) > 500 {
		out = out[:500] + "…"
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// readFiles reads the files of a submission's snapshot.
func (s *Service) snapshotFiles(sub store.Submission) ([]File, error) {
	var out []File
	var total int64
	for _, f := range sub.Files {
		total += f.Size
		if total > maxSendBytes {
			return nil, fmt.Errorf("%w: the submission is larger than %d MB", errTooLarge, maxSendBytes>>20)
		}
		r, _, err := s.opts.Course.OpenSnapshotFile(sub, f.Name)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(r, maxSendBytes))
		r.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, File{Name: f.Name, Data: data})
	}
	return out, nil
}
