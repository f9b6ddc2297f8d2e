package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pythonide/pyide/pkg/store"
	"github.com/pythonide/pyide/pkg/store/storetest"
)

// TestGradingRuns: a run is written once and never changed; the latest
// run of each student's latest submission is the one that counts.
func TestGradingRuns(t *testing.T) {
	t.Parallel()
	url := storetest.NewURL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, u := range []string{"alice", "bob"} {
		if _, err := db.CreateUser(ctx, store.User{Username: u, Role: "student", PasswordHash: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.CreateAssignment(ctx, store.Assignment{Slug: "hw1", Title: "HW", DueAt: now, LatePolicy: "none", CreatedBy: "prof"}); err != nil {
		t.Fatal(err)
	}
	sub := func(user string, n int) store.Submission {
		s, err := db.InsertSubmission(ctx, store.Submission{Item: "hw1", Kind: store.KindAssignment, Username: user, N: n,
			SubmittedAt: now, Snapshot: ".snapshots/x"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	run := func(s store.Submission, score float64) store.GradingRun {
		r, err := db.InsertGradingRun(ctx, store.GradingRun{SubmissionID: s.ID, Item: s.Item, Username: s.Username, N: s.N,
			Cause: "submit", Score: score, MaxScore: 10, Results: json.RawMessage(`[]`), RequestedBy: s.Username,
			StartedAt: now, FinishedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a1 := sub("alice", 1)
	run(a1, 3)
	a2 := sub("alice", 2)
	run(a2, 5)
	run(a2, 6) // a regrade
	b1 := sub("bob", 1)
	run(b1, 9)
	sub("bob", 2) // not graded yet
	latest, err := db.LatestRuns(ctx, "hw1")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || latest["alice"].Score != 6 || latest["alice"].N != 2 {
		t.Fatalf("latest runs: %+v", latest)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE grading_runs SET score = 10`); err == nil {
		t.Fatal("a grading run was changed")
	}
	subs, err := db.LatestSubmissions(ctx, "hw1")
	if err != nil || len(subs) != 2 || subs[0].N != 2 || subs[1].N != 2 {
		t.Fatalf("latest submissions: %+v %v", subs, err)
	}

	// Rubric marks: exactly the lines given, of this item only.
	r1, err := db.SaveRubricItem(ctx, store.RubricItem{Item: "hw1", Points: -1, Comment: "no comments"})
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := db.SaveRubricItem(ctx, store.RubricItem{Item: "hw1", Points: 2, Comment: "nice tests"})
	if err := db.SetRubricMarks(ctx, "hw1", "alice", []int64{r1.ID, r2.ID}, "prof", now); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRubricMarks(ctx, "hw1", "alice", []int64{r2.ID}, "prof", now); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRubricMarks(ctx, "hw1", "alice", []int64{999}, "prof", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown rubric line: %v", err)
	}
	marks, err := db.RubricMarks(ctx, "hw1", "")
	if err != nil || len(marks["alice"]) != 1 || marks["alice"][0] != r2.ID {
		t.Fatalf("marks: %v %v", marks, err)
	}

	// Release: off until turned on; only released grades reach a student.
	if _, err := db.SetGrade(ctx, store.Grade{Item: "hw1", Username: "alice", MaxScore: 10, GradedBy: "prof", GradedAt: now}); err != nil {
		t.Fatal(err)
	}
	if gs, _ := db.ReleasedGrades(ctx, "alice"); len(gs) != 0 {
		t.Fatalf("unreleased grade shown: %+v", gs)
	}
	if err := db.SetReleased(ctx, "hw1", true, "prof", now); err != nil {
		t.Fatal(err)
	}
	if gs, _ := db.ReleasedGrades(ctx, "alice"); len(gs) != 1 {
		t.Fatalf("released grade missing: %+v", gs)
	}
}
