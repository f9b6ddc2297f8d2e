package server

import (
	"compress/gzip"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v5"
)

// Compression, for students on slow links. Two kinds of answer are sent as
// they are, whatever the browser accepts:
//
//   - files: the front end's assets were compressed at build time (serveWeb
//     picks the .br or .gz twin), and users' files are served with an ETag and
//     byte ranges that must describe the bytes on disk (an editor saves with
//     If-Match, the PDF viewer asks for ranges). Such answers carry
//     Accept-Ranges, an ETag or a Content-Range, which is what compress looks
//     at, so a new file endpoint needs no entry here.
//   - WebSocket upgrades: the hijacked connection speaks its own protocol.
//
// Everything else the server generates (JSON, CSV exports, metrics) is
// gzipped when its type is text.

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return w
}}

// compressTypes are the media types worth compressing; images, PDFs and
// archives are compressed already.
var compressTypes = map[string]bool{
	"application/json": true, "application/javascript": true, "text/javascript": true,
	"text/html": true, "text/css": true, "text/plain": true, "text/csv": true,
	"image/svg+xml": true, "application/xml": true, "text/xml": true,
}

func compress(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r := c.Request()
		if r.Header.Get("Upgrade") != "" {
			return next(c)
		}
		// This answer, or an asset's compressed twin, depends on it.
		c.Response().Header().Add("Vary", "Accept-Encoding")
		if !accepts(r.Header.Get("Accept-Encoding"), "gzip") {
			return next(c)
		}
		orig := c.Response()
		w := &gzipResponse{ResponseWriter: orig}
		c.SetResponse(w)
		defer func() {
			// The error handler runs after us and writes to the real response.
			c.SetResponse(orig)
			w.close()
		}()
		return next(c)
	}
}

// gzipResponse decides at WriteHeader, from the headers the handler set,
// whether to compress.
type gzipResponse struct {
	http.ResponseWriter
	gz      *gzip.Writer // nil: the body goes through as it is
	decided bool
}

func (w *gzipResponse) WriteHeader(code int) {
	if !w.decided {
		w.decided = true
		if h := w.Header(); worthCompressing(code, h) {
			h.Del("Content-Length")
			h.Set("Content-Encoding", "gzip")
			w.gz = gzipWriters.Get().(*gzip.Writer)
			w.gz.Reset(w.ResponseWriter)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *gzipResponse) Write(b []byte) (int, error) {
	if !w.decided {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", http.DetectContentType(b))
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.gz != nil {
		return w.gz.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is compressed so far (a streamed answer stays streamed).
func (w *gzipResponse) Flush() {
	if w.gz != nil {
		_ = w.gz.Flush()
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets echo find its Response (status for the log) and
// http.ResponseController reach the connection.
func (w *gzipResponse) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *gzipResponse) close() {
	if w.gz == nil {
		return
	}
	_ = w.gz.Close()
	w.gz.Reset(nil)
	gzipWriters.Put(w.gz)
	w.gz = nil
}

func worthCompressing(code int, h http.Header) bool {
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return false
	}
	if h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" || h.Get("Accept-Ranges") != "" || h.Get("ETag") != "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return compressTypes[mt]
}

// accepts reports whether an Accept-Encoding header allows coding (named,
// or by "*", and not with q=0).
func accepts(header, coding string) bool {
	star := false
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != coding && name != "*" {
			continue
		}
		refused := false
		for p := range strings.SplitSeq(params, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
				q, err := strconv.ParseFloat(v, 64)
				refused = err == nil && q == 0
			}
		}
		if name == coding {
			return !refused
		}
		star = !refused
	}
	return star
}

// precompressed is the build's compressed twin of an asset that the browser
// accepts (brotli first, it is smaller), or "" and "".
func precompressed(r *http.Request, has func(name string) bool, name string) (file, coding string) {
	ae := r.Header.Get("Accept-Encoding")
	for _, c := range []struct{ coding, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
		if accepts(ae, c.coding) && has(name+c.ext) {
			return name + c.ext, c.coding
		}
	}
	return "", ""
}
