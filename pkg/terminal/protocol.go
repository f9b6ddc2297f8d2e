package terminal

import "github.com/pythonide/pyide/pkg/sandbox"

// The vocabulary of /api/ws (docs/protocol.md): the types of the messages
// a browser sends and of the events the server sends back, with the one
// function that makes each event. The front end's types
// (frontend/src/console/protocol.ts) are checked against this file and
// against sandbox's exit reasons by protocol_ts_test.go: change both sides
// together.

// Message types: the JSON text frames a browser sends (fields in message).
const (
	MsgRun    = "run"    // {path}: run a file of the tree
	MsgREPL   = "repl"   // an empty REPL
	MsgStdin  = "stdin"  // {data}: keystrokes
	MsgResize = "resize" // {cols, rows}
	MsgStop   = "stop"   // end the run
)

// Event types: the JSON text frames the server sends, each made by the
// function below of the same name.
const (
	EventStarted       = "started"
	EventQueued        = "queued"
	EventExited        = "exited"
	EventOutputLimited = "output_limited"
	EventError         = "error"
)

// event is one JSON event.
type event map[string]any

// startedEvent: the run is live; path is the tree path ("" for an empty
// REPL); folders maps each folder's path inside the sandbox to its tree
// path, for naming the files of a traceback as the tree does.
func startedEvent(session, path string, folders map[string]string) event {
	if folders == nil {
		folders = map[string]string{}
	}
	return event{"type": EventStarted, "session": session, "path": path, "folders": folders}
}

// queuedEvent: the run waits for a free slot of the server, at position.
func queuedEvent(position int) event {
	return event{"type": EventQueued, "position": position}
}

// exitedEvent: the run ended; Reason is one of sandbox's Reason constants.
func exitedEvent(e sandbox.Exit) event {
	return event{"type": EventExited, "code": e.Code, "reason": e.Reason}
}

// outputLimitedEvent: the command printed more than the output cap; the
// rest of its output is dropped.
func outputLimitedEvent() event {
	return event{"type": EventOutputLimited}
}

// errorEvent: something the user should read.
func errorEvent(message string) event {
	return event{"type": EventError, "message": message}
}
