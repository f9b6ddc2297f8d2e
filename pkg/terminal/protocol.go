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
	// MsgKeyboard {grant}: the owner lets the helpers who asked type
	// (true), or declines and takes the keyboard back (false).
	MsgKeyboard = "keyboard"
	// MsgAskKeyboard: a helper watching asks the owner to let them type.
	MsgAskKeyboard = "ask_keyboard"
)

// Event types: the JSON text frames the server sends, each made by the
// function below of the same name.
const (
	EventStarted       = "started"
	EventQueued        = "queued"
	EventExited        = "exited"
	EventOutputLimited = "output_limited"
	EventError         = "error"
	// EventWatchers tells the owner of a console (and helpers) who watches
	// it and who may type.
	EventWatchers = "watchers"
	// EventKeyboardRequest tells the owner that a helper asks to type.
	EventKeyboardRequest = "keyboard_request"
	// EventKeyboard tells a helper whether they may type now.
	EventKeyboard = "keyboard"
	// EventBehind tells a watcher that it fell behind: the console is
	// cleared and the scrollback follows.
	EventBehind = "behind"
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

// watchersEvent: names watch this console (sorted); typing may type ("" for
// nobody).
func watchersEvent(names []string, typing string) event {
	return event{"type": EventWatchers, "names": names, "typing": typing}
}

// keyboardRequestEvent: by asks to type in this console.
func keyboardRequestEvent(by string) event {
	return event{"type": EventKeyboardRequest, "by": by}
}

// keyboardEvent: the helper may (granted) or may no longer type.
func keyboardEvent(granted bool) event {
	return event{"type": EventKeyboard, "granted": granted}
}

// behindEvent: the watcher fell behind; what follows is the scrollback.
func behindEvent() event {
	return event{"type": EventBehind}
}
