package workspace

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pythonide/pyide/pkg/auth"
)

const benchUsers = 60

// BenchmarkFileOps measures list, read and write of typical files (a
// folder of 20 small scripts, a 2 KB script) through the HTTP handlers
// with the real database. One op is a round of 60 users each sending one
// request at once (a class pressing Save together); p50 and p99 are of the
// single requests. It is a closed loop at full contention, so the
// percentiles include queueing for the 2 cores and the database pool.
func BenchmarkFileOps(b *testing.B) {
	ev := newEnv(b, nil)
	script := strings.Repeat("print('hello, world')  # a line of a typical script\n", 40) // ~2 KB
	var users []string
	for i := range benchUsers {
		name := fmt.Sprintf("s%02d", i)
		ev.users[name] = auth.User{ID: int64(100 + i), Username: name, Role: auth.RoleStudent}
		if err := ev.ws.EnsureUserDirs(name); err != nil {
			b.Fatal(err)
		}
		for f := range 20 {
			ev.disk(fmt.Sprintf("Local/%s/file%02d.py", name, f), script)
		}
		users = append(users, name)
	}
	// The background loop would have seen these files already.
	if err := ev.ws.Reconcile(context.Background()); err != nil {
		b.Fatal(err)
	}
	ops := map[string]func(user string, i int) *http.Request{
		"list": func(user string, _ int) *http.Request {
			return httptest.NewRequest("GET", q("/api/files", "Local/"+user), nil)
		},
		"read": func(user string, i int) *http.Request {
			return httptest.NewRequest("GET", q("/api/files/content", fmt.Sprintf("Local/%s/file%02d.py", user, i%20)), nil)
		},
		"write": func(user string, i int) *http.Request {
			return httptest.NewRequest("PUT", q("/api/files/content", fmt.Sprintf("Local/%s/file%02d.py", user, i%20)),
				strings.NewReader(script+fmt.Sprintf("# save %d\n", i)))
		},
	}
	for _, name := range []string{"list", "read", "write"} {
		op := ops[name]
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, b.N*benchUsers)
			var wg sync.WaitGroup
			var failed sync.Once
			b.ResetTimer()
			for u := range benchUsers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range b.N {
						i := n*benchUsers + u
						req := op(users[u], i)
						req.Header.Set("X-Test-User", users[u])
						rec := httptest.NewRecorder()
						start := time.Now()
						ev.e.ServeHTTP(rec, req)
						lat[i] = time.Since(start)
						if rec.Code != http.StatusOK {
							failed.Do(func() { b.Errorf("%s: %d %s", name, rec.Code, rec.Body.String()) })
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
