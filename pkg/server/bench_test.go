package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/servertest"
	"github.com/pythonide/pyide/pkg/store"
)

// BenchmarkLoginStorm is the start of a class: 100 students log in at the
// same moment with the default bcrypt cost, while a cheap request measures
// whether everything else still answers.
func BenchmarkLoginStorm(b *testing.B) {
	const students = 100
	for _, cost := range []int{10, 11} {
		b.Run(fmt.Sprintf("cost%d", cost), func(b *testing.B) {
			h := auth.NewHasher(cost, runtime.NumCPU())
			ts := servertest.New(b, servertest.Options{Hasher: h, Auth: func(o *auth.Options) { o.AbsoluteTimeout = time.Hour }})
			// One hash for all: a hundred at the real cost would be the
			// benchmark's setup, not its subject.
			hash, _ := h.Hash(context.Background(), "password123")
			for i := 0; i < students; i++ {
				if _, err := ts.DB.CreateUser(context.Background(), store.User{Username: fmt.Sprintf("s%03d", i), Role: "student", PasswordHash: hash}); err != nil {
					b.Fatal(err)
				}
			}
			var all, each, health []time.Duration
			for b.Loop() {
				lat := make([]time.Duration, students)
				var wg sync.WaitGroup
				start := time.Now()
				for i := 0; i < students; i++ {
					wg.Go(func() {
						body, _ := json.Marshal(map[string]string{"username": fmt.Sprintf("s%03d", i), "password": "password123"})
						t0 := time.Now()
						resp, err := http.Post(ts.URL+"/api/auth/login", "application/json", strings.NewReader(string(body)))
						if err != nil || resp.StatusCode != 200 {
							b.Errorf("login %d: %v %v", i, resp, err)
							return
						}
						resp.Body.Close()
						lat[i] = time.Since(t0)
					})
				}
				time.Sleep(50 * time.Millisecond)
				t0 := time.Now()
				if resp, err := http.Get(ts.URL + "/healthz"); err == nil {
					resp.Body.Close()
				}
				health = append(health, time.Since(t0))
				wg.Wait()
				all = append(all, time.Since(start))
				each = append(each, lat...)
			}
			slices.Sort(each)
			b.ReportMetric(float64(slices.Max(all).Milliseconds()), "ms/all-100")
			b.ReportMetric(float64(each[len(each)/2].Milliseconds()), "p50-ms")
			b.ReportMetric(float64(each[len(each)*99/100].Milliseconds()), "p99-ms")
			b.ReportMetric(float64(slices.Max(health).Milliseconds()), "healthz-ms")
		})
	}
}
