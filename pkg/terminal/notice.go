package terminal

// Notice tells the browser tab running session why it is about to end
// ("An administrator ended your program."), as an error event ahead of its
// exited event: the exit reason alone ("reaped") cannot say who or why. It
// reports whether a tab was running that session.
func (h *Hub) Notice(session, message string) bool {
	h.mu.Lock()
	tabs := make([]*tab, 0, len(h.tabs))
	for _, t := range h.tabs {
		tabs = append(tabs, t)
	}
	h.mu.Unlock()
	for _, t := range tabs {
		t.mu.Lock()
		r := t.cur
		if r != nil && r.sess != nil && r.exit == nil && r.sess.ID() == session {
			t.eventLocked(r, errorEvent(message))
			t.mu.Unlock()
			return true
		}
		t.mu.Unlock()
	}
	return false
}
