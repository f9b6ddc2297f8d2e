package grading

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/sandbox"
)

// dolosImage is the similarity report's image tests use.
func dolosImage() string {
	if img := os.Getenv("PYIDE_DOLOS_IMAGE"); img != "" {
		return img
	}
	return "pyide-dolos:latest"
}

// TestSimilarity: two students hand in the same program with other names,
// a third something else; the report, made by Dolos in a container of its
// own, puts the first two on top with the lines alike. Staff only.
func TestSimilarity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	if !e.m.ImageExists(context.Background(), dolosImage()) {
		t.Skipf("skipping: image %s not built (bash dolos-image/build.sh)", dolosImage())
	}
	b, err := e.m.NewBatches(sandbox.BatchOptions{Name: "similarity", Image: dolosImage(),
		Cmd: []string{"node", "/opt/dolos/compare.mjs"}, MemoryMB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.opts.Similarity = batches{b}
	e.assignment("hw1")
	progs := map[string]string{
		"alice": "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n\nprint(total([1, 2, 3]))\n",
		"bob":   "def add_up(values):\n    acc = 0\n    for v in values:\n        acc += v\n    return acc\n\nprint(add_up([1, 2, 3]))\n",
		"prof":  "",
	}
	for _, u := range []string{"alice", "bob"} {
		e.write(u, map[string]string{"Local/" + u + "/hw1/main.py": progs[u]})
		e.must(e.do(u, "POST", "/api/course/assignments/hw1/submit", map[string]any{"files": []string{"Local/" + u + "/hw1"}}), 201)
	}
	if r := e.do("alice", "POST", "/api/course/items/hw1/grading/similarity", nil); r.Status != 403 {
		t.Fatalf("a student started a report: %d", r.Status)
	}
	e.must(e.do("prof", "POST", "/api/course/items/hw1/grading/similarity", nil), 202)
	deadline := time.Now().Add(waitLong)
	var rep *SimilarityReport
	for {
		r := e.must(e.do("prof", "GET", "/api/course/items/hw1/grading/similarity", nil), 200)
		rep = decode[*SimilarityReport](t, r, "similarity")
		if rep.State != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the report never finished")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rep.State != "done" || len(rep.Pairs) != 1 || rep.Students != 2 {
		t.Fatalf("report: %+v", rep)
	}
	p := rep.Pairs[0]
	if p.Left+p.Right != "alicebob" || p.Similarity < 0.9 || len(p.Fragments) == 0 || !strings.Contains(rep.Sources["bob"], "add_up") {
		t.Errorf("pair: %+v", p)
	}
}
