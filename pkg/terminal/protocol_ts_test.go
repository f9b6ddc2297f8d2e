package terminal

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pythonide/pyide/pkg/sandbox"
)

// protocolTS is the browser's side of the protocol.
const protocolTS = "../../frontend/src/console/protocol.ts"

// TestProtocolMatchesTypeScript keeps the two sides of /api/ws one
// protocol (docs/protocol.md): the TypeScript types of protocol.ts name
// exactly the message types this package accepts, with fields of
// message; exactly the events it sends, with the fields (and JSON kinds)
// the event functions give them, each one parsed by parseEvent; and exactly
// pkg/sandbox's exit reasons, each with words for the user. A change on
// one side alone fails here.
func TestProtocolMatchesTypeScript(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(protocolTS)
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)

	t.Run("messages", func(t *testing.T) {
		ts := tsUnion(t, src, "ClientMessage")
		sameSet(t, "message types", slices.Collect(maps.Keys(ts)), goConstants(t, ".", "Msg"))
		fields := jsonFields(reflect.TypeFor[message]())
		for typ, tsFields := range ts {
			for name, tsType := range tsFields {
				goKind, ok := fields[name]
				switch {
				case !ok:
					t.Errorf("protocol.ts sends %q with a field %q that the server's message has not", typ, name)
				case goKind != tsKind(tsType):
					t.Errorf("protocol.ts sends %q.%s as %s, the server reads a %s", typ, name, tsType, goKind)
				}
			}
		}
	})

	t.Run("events", func(t *testing.T) {
		// One of each, made as the server makes them; a new event type
		// needs its line here (the constants are read from the source).
		made := map[string]event{
			EventStarted:         startedEvent("s1", "Local/alice/a.py", map[string]string{"/home/student": "Local/alice"}),
			EventQueued:          queuedEvent(2),
			EventExited:          exitedEvent(sandbox.Exit{Code: 1, Reason: sandbox.ReasonError}),
			EventOutputLimited:   outputLimitedEvent(),
			EventError:           errorEvent("words"),
			EventWatchers:        watchersEvent([]string{"tina"}, "tina"),
			EventKeyboardRequest: keyboardRequestEvent("tina"),
			EventKeyboard:        keyboardEvent(true),
			EventBehind:          behindEvent(),
		}
		sameSet(t, "event types this test makes", slices.Collect(maps.Keys(made)), goConstants(t, ".", "Event"))
		ts := tsUnion(t, src, "ServerEvent")
		sameSet(t, "event types", slices.Collect(maps.Keys(ts)), slices.Collect(maps.Keys(made)))
		for typ, ev := range made {
			goFields := eventFields(t, ev)
			if goFields["type"] != typ {
				t.Errorf("the %s event says it is a %q event", typ, goFields["type"])
			}
			delete(goFields, "type")
			tsFields := map[string]string{}
			for name, tsType := range ts[typ] {
				tsFields[name] = tsKind(tsType)
			}
			if !maps.Equal(goFields, tsFields) {
				t.Errorf("the %s event: the server sends %v, protocol.ts declares %v", typ, goFields, tsFields)
			}
			if !strings.Contains(src, "case '"+typ+"':") {
				t.Errorf("parseEvent in protocol.ts has no case for %q: the browser would drop it", typ)
			}
		}
	})

	t.Run("close codes", func(t *testing.T) {
		for name, code := range map[string]int{"CloseSessionEnded": CloseSessionEnded, "CloseWatchEnded": CloseWatchEnded} {
			m := regexp.MustCompile(`(?m)^export const ` + name + ` = (\d+)$`).FindStringSubmatch(src)
			if m == nil || m[1] != strconv.Itoa(code) {
				t.Errorf("protocol.ts: %s is %v, the server's is %d", name, m, code)
			}
		}
	})

	t.Run("exit reasons", func(t *testing.T) {
		reasons := goConstants(t, "../sandbox", "Reason")
		m := regexp.MustCompile(`(?m)^export type ExitReason = (.*)$`).FindStringSubmatch(src)
		if m == nil {
			t.Fatal("protocol.ts has no one-line `export type ExitReason = ...`")
		}
		sameSet(t, "exit reasons", quoted(m[1]), reasons)
		block := regexp.MustCompile(`(?s)const reasonText[^{]*\{(.*?)\n\}`).FindStringSubmatch(src)
		if block == nil {
			t.Fatal("protocol.ts has no reasonText")
		}
		words := regexp.MustCompile(`(?m)^\s*(\w+):`).FindAllStringSubmatch(block[1], -1)
		var described []string
		for _, w := range words {
			described = append(described, w[1])
		}
		sameSet(t, "exit reasons with words (reasonText)", described, reasons)
	})
}

// tsUnion reads `export type Name =` followed by one `| { type: 'x'; f: T }`
// line per member: each member's type and its other fields with their
// TypeScript types.
func tsUnion(t *testing.T, src, name string) map[string]map[string]string {
	t.Helper()
	_, rest, ok := strings.Cut(src, "export type "+name+" =\n")
	if !ok {
		t.Fatalf("protocol.ts has no `export type %s =` followed by its members", name)
	}
	member := regexp.MustCompile(`^\s*\|\s*\{\s*(.*?)\s*\}\s*$`)
	out := map[string]map[string]string{}
	for _, line := range strings.Split(rest, "\n") {
		m := member.FindStringSubmatch(line)
		if m == nil {
			break
		}
		fields := map[string]string{}
		typ := ""
		for _, f := range strings.Split(m[1], ";") {
			k, v, ok := strings.Cut(f, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case !ok:
				t.Fatalf("protocol.ts, %s: cannot read the field %q", name, f)
			case k == "type":
				typ = strings.Trim(v, "'")
			default:
				fields[k] = v
			}
		}
		out[typ] = fields
	}
	if len(out) == 0 {
		t.Fatalf("protocol.ts: %s has no members (one `| { type: '...'; ... }` per line)", name)
	}
	return out
}

// tsKind is the JSON kind a TypeScript field type stands for.
func tsKind(tsType string) string {
	switch tsType {
	case "number", "boolean", "string", "string[]":
		return tsType
	case "ExitReason | string", "string | ExitReason":
		return "string"
	case "Record<string, string>":
		return "map[string]interface {}"
	}
	return "unknown TypeScript type " + tsType
}

// jsonFields is the JSON kind of each field of a struct, by JSON name.
func jsonFields(typ reflect.Type) map[string]string {
	out := map[string]string{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.String:
			out[name] = "string"
		case reflect.Bool:
			out[name] = "boolean"
		case reflect.Int, reflect.Int64, reflect.Uint, reflect.Float64:
			out[name] = "number"
		default:
			out[name] = ft.String()
		}
	}
	return out
}

// eventFields is the JSON kind of each field of an event as it goes out.
func eventFields(t *testing.T, ev event) map[string]string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			if k == "type" {
				out[k] = v
			} else {
				out[k] = "string"
			}
		case float64:
			out[k] = "number"
		case bool:
			out[k] = "boolean"
		case []any:
			out[k] = "string[]"
			for _, x := range v {
				if _, ok := x.(string); !ok {
					out[k] = "a list of " + reflect.TypeOf(x).String()
				}
			}
		default:
			out[k] = reflect.TypeOf(v).String()
		}
	}
	return out
}

// goConstants is the values of the string constants named prefix… in the
// (non-test) Go files of dir: every one, so a constant added there is
// compared too.
func goConstants(t *testing.T, dir, prefix string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, prefix) || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, v)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no string constants %s… in %s", prefix, dir)
	}
	return out
}

func quoted(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// sameSet fails unless ts (the TypeScript side) and goSide hold the same
// names, and says which are missing where.
func sameSet(t *testing.T, what string, ts, goSide []string) {
	t.Helper()
	onlyTS, onlyGo := difference(ts, goSide), difference(goSide, ts)
	if len(onlyTS) > 0 || len(onlyGo) > 0 {
		t.Errorf("%s differ: only in protocol.ts %q, only in Go %q", what, onlyTS, onlyGo)
	}
}

func difference(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
