// Package metrics owns the Prometheus registry of pyide and the /metrics
// endpoint. Other packages never import Prometheus: they expose plain
// counters or hooks, and this package turns them into metrics at scrape
// time. /metrics answers only with the configured bearer token, or from
// loopback when no token is set.
package metrics

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
)

// Metrics is the registry and the metrics recorded directly.
type Metrics struct {
	Registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	logins       *prometheus.CounterVec
	// SandboxStarts counts sandbox starts by path (warm, cold).
	SandboxStarts *prometheus.CounterVec
	// SandboxStartFailures counts starts that failed.
	SandboxStartFailures prometheus.Counter
	// SandboxStartSeconds is click-to-running latency by path.
	SandboxStartSeconds *prometheus.HistogramVec
	// SandboxExits counts ended sessions by reason.
	SandboxExits *prometheus.CounterVec
	// OutputBytes counts TTY output read from sandboxes.
	OutputBytes prometheus.Counter
	// EchoSeconds is the time from a student's input reaching the server
	// to the sandbox's next output (a keystroke's echo, mostly).
	EchoSeconds prometheus.Histogram
}

// New registers every metric, plus the Go and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: r,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pyide_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pyide_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pyide_logins_total", Help: "Login attempts by result (success, failure, throttled).",
		}, []string{"result"}),
		SandboxStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pyide_sandbox_starts_total", Help: "Sandbox sessions started, by path (warm spare or cold).",
		}, []string{"path"}),
		SandboxStartFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pyide_sandbox_start_failures_total", Help: "Sandbox starts that failed.",
		}),
		SandboxStartSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pyide_sandbox_start_seconds", Help: "Time from Run to a running sandbox, by path.",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"path"}),
		SandboxExits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pyide_sandbox_exits_total", Help: "Sandbox sessions ended, by reason.",
		}, []string{"reason"}),
		OutputBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pyide_output_bytes_total", Help: "Terminal output bytes read from sandboxes.",
		}),
		EchoSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "pyide_terminal_echo_seconds", Help: "Time from a student's input reaching the server to the sandbox's next output.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
	}
	r.MustRegister(m.httpRequests, m.httpDuration, m.logins, m.SandboxStarts,
		m.SandboxStartFailures, m.SandboxStartSeconds, m.SandboxExits, m.OutputBytes, m.EchoSeconds)
	return m
}

// Gauge registers a gauge read at scrape time.
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// Middleware records every request by its route pattern (never the raw
// path, which would explode the label space), and login outcomes.
func (m *Metrics) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		err := next(c)
		status := httpapi.Status(c, err)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		if strings.HasPrefix(route, "/*") || route == "/" {
			route = "web"
		}
		m.httpRequests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
		m.httpDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		if route == "/api/auth/login" {
			switch status {
			case http.StatusOK:
				m.logins.WithLabelValues("success").Inc()
			case http.StatusTooManyRequests:
				m.logins.WithLabelValues("throttled").Inc()
			case http.StatusUnauthorized:
				m.logins.WithLabelValues("failure").Inc()
			}
		}
		return err
	}
}

// Handler serves /metrics to holders of token, or only to loopback
// clients when token is empty.
func (m *Metrics) Handler(token string) echo.HandlerFunc {
	h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	return func(c *echo.Context) error {
		r := c.Request()
		if token != "" {
			got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				return echo.NewHTTPError(http.StatusUnauthorized, "metrics need the bearer token (METRICS_TOKEN)")
			}
		} else if !fromLoopback(r) {
			return echo.NewHTTPError(http.StatusForbidden, "metrics are served to loopback only unless METRICS_TOKEN is set")
		}
		h.ServeHTTP(c.Response(), r)
		return nil
	}
}

func fromLoopback(r *http.Request) bool {
	if r.Header.Get("X-Forwarded-For") != "" {
		// Came through a proxy on this machine: not a loopback client.
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// poolCollector reports database pool statistics at scrape time.
type poolCollector struct {
	stat                                 func() store.PoolStat
	total, idle, acquired, max, waitSecs *prometheus.Desc
}

// DBPool registers the statistics of the database pool.
func (m *Metrics) DBPool(stat func() store.PoolStat) {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	m.Registry.MustRegister(&poolCollector{
		stat:     stat,
		total:    d("pyide_db_pool_connections", "Open database connections."),
		idle:     d("pyide_db_pool_idle_connections", "Idle database connections."),
		acquired: d("pyide_db_pool_acquired_connections", "Database connections in use."),
		max:      d("pyide_db_pool_max_connections", "Largest pool size."),
		waitSecs: d("pyide_db_pool_acquire_wait_seconds_total", "Time spent waiting for a free connection."),
	})
}

func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.total
	ch <- p.idle
	ch <- p.acquired
	ch <- p.max
	ch <- p.waitSecs
}

func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := p.stat()
	ch <- prometheus.MustNewConstMetric(p.total, prometheus.GaugeValue, float64(s.Total))
	ch <- prometheus.MustNewConstMetric(p.idle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(p.acquired, prometheus.GaugeValue, float64(s.Acquired))
	ch <- prometheus.MustNewConstMetric(p.max, prometheus.GaugeValue, float64(s.Max))
	ch <- prometheus.MustNewConstMetric(p.waitSecs, prometheus.CounterValue, s.AcquireWait.Seconds())
}
