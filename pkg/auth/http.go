package auth

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/httpapi"
)

// SameOrigin reports whether a request's Origin header names this server:
// the configured public URL, or else the Host the request was sent to. A
// request without Origin (curl, the CLI) is not cross-site.
func SameOrigin(r *http.Request, publicURL string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" {
		return false
	}
	if publicURL != "" {
		p, err := url.Parse(publicURL)
		return err == nil && strings.EqualFold(p.Scheme, o.Scheme) && strings.EqualFold(p.Host, o.Host)
	}
	return strings.EqualFold(o.Host, r.Host)
}

// SameOriginWrites refuses state-changing requests that come from another
// site (CSRF): SameSite cookies alone do not cover every browser.
func (s *Service) SameOriginWrites(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if !SameOrigin(c.Request(), s.opts.PublicURL) {
				return echo.NewHTTPError(http.StatusForbidden, "cross-site request refused")
			}
		}
		return next(c)
	}
}

// SessionToken returns the raw session token of a request, or "".
func SessionToken(r *http.Request) string {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

// UserFromRequest authenticates a raw request; the WebSocket endpoint uses
// it before upgrading.
func (s *Service) UserFromRequest(r *http.Request) (User, error) {
	return s.Authenticate(r.Context(), SessionToken(r))
}

// RequireUser answers 401 unless the request carries a live session, and
// 403 (RefusePasswordChange) to a user who must change a handed-out
// password, except on the endpoints that let them do so.
func (s *Service) RequireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		u, err := s.UserFromRequest(c.Request())
		if errors.Is(err, ErrNoSession) {
			return echo.NewHTTPError(http.StatusUnauthorized, "not logged in")
		}
		if err != nil {
			return err
		}
		SetUser(c, u)
		if u.MustChangePassword && !beforeChange[c.Request().Method+" "+c.Path()] {
			return RefusePasswordChange(c)
		}
		return next(c)
	}
}

// beforeChange are the endpoints a user who must change their password may
// use: enough to change it, to leave, and for the page to learn why.
var beforeChange = map[string]bool{
	"GET /api/auth/me":        true,
	"POST /api/auth/password": true,
	"POST /api/auth/logout":   true,
}

// CodePasswordChangeRequired is the "code" of the 403 that RequireUser
// gives a user who must change a handed-out password: the front end opens
// its change-password dialog when it sees it.
const CodePasswordChangeRequired = "password_change_required"

// RefusePasswordChange answers 403 with CodePasswordChangeRequired. The
// WebSocket endpoint, which checks the session itself, uses it too.
func RefusePasswordChange(c *echo.Context) error {
	return c.JSON(http.StatusForbidden, map[string]string{
		"error": "choose your own password first: the one you were given only lets you log in and change it",
		"code":  CodePasswordChangeRequired,
	})
}

// RequireRole answers 403 unless the user (RequireUser ran first) has one
// of roles.
func RequireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			u, err := MustUser(c)
			if err != nil {
				return err
			}
			for _, r := range roles {
				if u.Role == r {
					return next(c)
				}
			}
			return echo.NewHTTPError(http.StatusForbidden, "not allowed for your role")
		}
	}
}

// RequireStaff is RequireRole(professor, admin).
var RequireStaff = RequireRole(RoleProfessor, RoleAdmin)

// RequireTeaching is RequireRole(ta, professor, admin): reading students'
// work, grading, the help queue.
var RequireTeaching = RequireRole(RoleTA, RoleProfessor, RoleAdmin)

func (s *Service) setCookie(c *echo.Context, token string, maxAge int) {
	secure := s.opts.CookieSecure || c.Request().TLS != nil || strings.HasPrefix(s.opts.PublicURL, "https://")
	c.SetCookie(&http.Cookie{
		Name: CookieName, Value: token, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}

// Register adds the auth endpoints: public ones on public, the rest on
// authed (already behind RequireUser).
func (s *Service) Register(public, authed *echo.Group) {
	public.POST("/auth/login", s.handleLogin)
	authed.POST("/auth/logout", s.handleLogout)
	authed.GET("/auth/me", s.handleMe)
	authed.POST("/auth/password", s.handlePassword)
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *Service) handleLogin(c *echo.Context) error {
	var req loginRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "username and password are required")
	}
	if len(req.Username) > 64 || len(req.Password) > 1024 {
		return echo.NewHTTPError(http.StatusUnauthorized, ErrBadCredentials.Error())
	}
	username := strings.ToLower(strings.TrimSpace(req.Username))
	token, u, err := s.Login(c.Request().Context(), username, req.Password, c.RealIP(), c.Request().UserAgent())
	var throttled *ThrottledError
	switch {
	case errors.As(err, &throttled):
		secs := int(math.Ceil(throttled.RetryAfter.Seconds()))
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return echo.NewHTTPError(http.StatusTooManyRequests, throttled.Error())
	case errors.Is(err, ErrBadCredentials):
		return echo.NewHTTPError(http.StatusUnauthorized, err.Error())
	case err != nil:
		return err
	}
	s.setCookie(c, token, int(s.opts.AbsoluteTimeout/time.Second))
	return c.JSON(http.StatusOK, map[string]any{"user": u, "must_change_password": u.MustChangePassword})
}

func (s *Service) handleLogout(c *echo.Context) error {
	u, err := MustUser(c)
	if err != nil {
		return err
	}
	if err := s.Logout(c.Request().Context(), u.Username, SessionToken(c.Request())); err != nil {
		return err
	}
	s.setCookie(c, "", -1)
	return c.NoContent(http.StatusNoContent)
}

func (s *Service) handleMe(c *echo.Context) error {
	u, err := MustUser(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user": u, "must_change_password": u.MustChangePassword})
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

func (s *Service) handlePassword(c *echo.Context) error {
	u, err := MustUser(c)
	if err != nil {
		return err
	}
	var req passwordRequest
	if err := httpapi.Bind(c, &req); err != nil {
		return err
	}
	err = s.ChangePassword(c.Request().Context(), u, SessionToken(c.Request()), req.CurrentPassword, req.NewPassword)
	switch {
	case errors.Is(err, ErrBadCredentials):
		return echo.NewHTTPError(http.StatusForbidden, "the current password is wrong")
	case errors.Is(err, ErrPasswordPolicy):
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	case err != nil:
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
