// Package httpapi holds the JSON conventions every endpoint shares: strict
// request decoding and the {"error": "message"} error shape. It never
// reveals an internal error or a stack trace to a client.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v5"
)

// Bind decodes a JSON body into v strictly: malformed JSON, unknown fields,
// trailing data and a wrong Content-Type are 400; a body past the server's
// limit is 413.
func Bind(c *echo.Context, v any) error {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return echo.NewHTTPError(http.StatusBadRequest, "request body: more than one JSON value")
	}
	return nil
}

func decodeError(err error) error {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxErr.Limit))
	case errors.Is(err, io.EOF):
		return echo.NewHTTPError(http.StatusBadRequest, "request body: empty, expected JSON")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return echo.NewHTTPError(http.StatusBadRequest, "request body: malformed JSON")
	case errors.As(err, &typeErr):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("request body: %q must be %s", typeErr.Field, typeErr.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		// encoding/json has no typed error for this one.
		return echo.NewHTTPError(http.StatusBadRequest, "request body: "+strings.TrimPrefix(err.Error(), "json: "))
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "request body: "+err.Error())
	}
}

// ErrorHandler renders every error as {"error": "message"}. Errors that
// are not HTTP errors are logged with the request ID and reported as a
// plain 500.
func ErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(c *echo.Context, err error) {
		if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
			return
		}
		code := http.StatusInternalServerError
		msg := "internal error; it has been logged"
		var he *echo.HTTPError
		var maxErr *http.MaxBytesError
		var connErr *pgconn.ConnectError
		switch {
		case errors.As(err, &connErr):
			// The database is restarting or gone: say so, and that it is
			// worth retrying, rather than a bare 500.
			code = http.StatusServiceUnavailable
			msg = "the database is unavailable; try again in a moment"
			c.Response().Header().Set("Retry-After", "5")
		case errors.As(err, &he):
			code = he.Code
			msg = he.Message
			if msg == "" {
				msg = http.StatusText(code)
			}
		case errors.As(err, &maxErr):
			code = http.StatusRequestEntityTooLarge
			msg = fmt.Sprintf("request body larger than %d bytes", maxErr.Limit)
		default:
			var sc echo.HTTPStatusCoder
			if errors.As(err, &sc) && sc.StatusCode() != 0 {
				code = sc.StatusCode()
				msg = http.StatusText(code)
			}
		}
		if code >= 500 {
			logger.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path,
				"status", code, "error", err, "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(code)
			return
		}
		_ = c.JSON(code, map[string]string{"error": msg})
	}
}

// Status is the status a request got or will get: the written one, or the
// one the error handler will give err. Logging and metrics use it after the
// handler returned.
func Status(c *echo.Context, err error) int {
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return he.Code
		}
		return http.StatusInternalServerError
	}
	if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Status != 0 {
		return r.Status
	}
	return http.StatusOK
}
