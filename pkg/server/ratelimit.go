package server

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
	"golang.org/x/time/rate"

	"github.com/pythonide/pyide/pkg/auth"
)

// writeLimiter allows each user perMinute state-changing API requests a
// minute, with the whole minute's worth available as a burst (autosave and
// uploads come in bursts). The map holds one small limiter per user who
// wrote; a course has at most a few hundred.
type writeLimiter struct {
	perMinute int
	mu        sync.Mutex
	users     map[string]*rate.Limiter
}

func newWriteLimiter(perMinute int) *writeLimiter {
	return &writeLimiter{perMinute: perMinute, users: map[string]*rate.Limiter{}}
}

func (l *writeLimiter) limiter(user string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.users[user]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.perMinute)), l.perMinute)
		l.users[user] = lim
	}
	return lim
}

func (l *writeLimiter) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		u, ok := auth.CurrentUser(c)
		if !ok {
			return next(c)
		}
		r := l.limiter(u.Username).Reserve()
		if d := r.Delay(); d > 0 {
			r.Cancel()
			secs := int(math.Ceil(d.Seconds()))
			c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
			return echo.NewHTTPError(http.StatusTooManyRequests,
				"too many changes at once ("+strconv.Itoa(l.perMinute)+" a minute); try again in "+strconv.Itoa(secs)+" s")
		}
		return next(c)
	}
}
