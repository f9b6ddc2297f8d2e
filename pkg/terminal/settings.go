package terminal

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
)

// Limits are the limits the sandbox holds every run to, as the console
// tells them: "stopped: over the 128 MB memory limit" needs the number.
// The hub enforces none of them; the sandbox manager does.
type Limits struct {
	MemoryMB          int  `json:"memory_mb"`
	CPUSeconds        int  `json:"cpu_seconds"`         // per command: the run, and each input at the prompt
	SessionCPUSeconds int  `json:"session_cpu_seconds"` // for a whole run
	IdleSeconds       int  `json:"idle_seconds"`        // no input for this long ends a run
	ReplAfterError    bool `json:"repl_after_error"`    // a script that fails still leaves its REPL open
}

// Settings is what the console needs to know before the first run.
type Settings struct {
	// REPL: this user may open an empty REPL (staff always; students with
	// STUDENT_REPL). A test with restrict_repl still refuses it while open.
	REPL   bool   `json:"repl"`
	Limits Limits `json:"limits"`
}

func (h *Hub) settings(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, Settings{REPL: u.IsStaff() || h.opts.StudentREPL, Limits: h.opts.Limits})
}
