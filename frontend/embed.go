// Package frontend owns the browser IDE (a Vue 3 + Vite app in this folder) and
// hands its built files to the server as an fs.FS. It must never depend on Node
// at Go build time: `go build ./...` works on a fresh clone.
//
// Why two embeds: Vite writes the app into dist/, which git ignores except for
// dist/.keep (a tracked file, so the `all:dist` pattern always matches; the Vite
// config preserves it when it empties dist/). That keeps `git status` clean after
// a build. When dist/ has no index.html the server gets placeholder/ instead: one
// page that says how to build the front end.
package frontend

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

//go:embed placeholder/index.html
var placeholder embed.FS

// Dist is the web root: the built app when there is one, else the placeholder
// page. It always holds index.html at its root.
var Dist fs.FS = pick()

// Built reports whether Dist is the real app rather than the placeholder.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

func pick() fs.FS {
	root, dir := fs.FS(placeholder), "placeholder"
	if Built() {
		root, dir = dist, "dist"
	}
	sub, err := fs.Sub(root, dir)
	if err != nil {
		// fs.Sub fails only on an invalid path; both are constants.
		panic(err)
	}
	return sub
}
