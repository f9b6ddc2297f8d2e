package auth

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// Roles. A professor and an admin may do everything a student may, and more.
const (
	RoleStudent   = "student"
	RoleProfessor = "professor"
	RoleAdmin     = "admin"
)

// User is the logged-in user of a request.
type User struct {
	ID          int64  `json:"-"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	// MustChangePassword: the password was handed out (roster import, a
	// reset); until the user picks their own, RequireUser lets them do
	// nothing else.
	MustChangePassword bool `json:"must_change_password"`
}

// ValidRole reports whether role is one of the three roles.
func ValidRole(role string) bool {
	return role == RoleStudent || role == RoleProfessor || role == RoleAdmin
}

// IsStaff reports whether u is a professor or an admin.
func (u User) IsStaff() bool { return u.Role == RoleProfessor || u.Role == RoleAdmin }

const userKey = "pyide.user"

// CurrentUser returns the user that RequireUser put on c. Handlers behind
// RequireUser can rely on ok being true.
func CurrentUser(c *echo.Context) (User, bool) {
	u, ok := c.Get(userKey).(User)
	return u, ok
}

// MustUser is CurrentUser for handlers behind RequireUser; it answers 401
// when there is no user, so a mis-wired route fails closed.
func MustUser(c *echo.Context) (User, error) {
	u, ok := CurrentUser(c)
	if !ok {
		return User{}, echo.NewHTTPError(http.StatusUnauthorized, "not logged in")
	}
	return u, nil
}

// SetUser puts u on c; RequireUser calls it after checking the session.
func SetUser(c *echo.Context, u User) { c.Set(userKey, u) }
