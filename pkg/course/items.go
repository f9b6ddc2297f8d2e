package course

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v5"

	"github.com/pythonide/pyide/pkg/auth"
	"github.com/pythonide/pyide/pkg/httpapi"
	"github.com/pythonide/pyide/pkg/store"
)

// An item is an assignment or a test. The two differ only in their time
// rules, so what every item has is written once, here: who may know of
// one, the order of a list, and the endpoints that list, show, create,
// replace and delete one (with what each audits and whom it tells). Each
// kind brings its own rules: assignments.go (a deadline and a late
// policy), tests.go (a window, a duration per student counted from their
// start, and exam restrictions).

// kind is one kind of item: its names, where its material lives, and its
// rules. T is the item as stored, In what staff send to create or replace
// one, V what the API shows of one.
type kind[T, In, V any] struct {
	// name is the store's kind, the JSON key of one item ("assignment"),
	// the word in messages and the middle of audit actions
	// (course.assignment.create).
	name string
	// plural is the path and the JSON key of a list ("assignments").
	plural string
	// root is the folder of the items' material (Assignments, Tests).
	root string
	// cached is this kind's items in the cache.
	cached func(st *state) map[string]T
	// meta is what every item has.
	meta func(x T) meta
	// view is x as the API shows it to user at now.
	view func(st *state, x T, user string, now time.Time) V
	// slug is where an input holds the item's slug (an update takes it
	// from the path); fromInput checks an input and makes the item.
	slug      func(in *In) *string
	fromInput func(in In) (T, error)
	// create and update write an item; create records by as its author.
	create func(ctx context.Context, db *store.DB, x T, by string) (T, error)
	update func(ctx context.Context, db *store.DB, x T) (T, error)
	// created and updated are what the audit log keeps of a create and of
	// an update.
	created, updated func(x T) map[string]any
}

// meta is what every item has, whatever its kind.
type meta struct {
	slug, title string
	publishAt   *time.Time
	// listedBy orders a list: an assignment's due time, a test's start.
	listedBy time.Time
}

// slugRe is the shape of a slug: it names folders under Assignments,
// Tests and Submissions.
var slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// checkHead checks what every kind's input has.
func checkHead(slug, title, description string) error {
	if !slugRe.MatchString(slug) {
		return badRequest("slug: 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit")
	}
	switch {
	case title == "" || utf8.RuneCountInString(title) > maxTitle || !utf8.ValidString(title):
		return badRequest(fmt.Sprintf("title: required, at most %d characters", maxTitle))
	case len(description) > maxDescription || !utf8.ValidString(description):
		return badRequest(fmt.Sprintf("description_md: at most %d KB of UTF-8", maxDescription>>10))
	}
	return nil
}

// notFound is the answer for a slug u may not know of, the same as for a
// slug that does not exist.
func (k kind[T, In, V]) notFound(slug string) error {
	return echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("no such %s: %q", k.name, slug))
}

// sees says whether u may know of an item published at publishAt: staff
// always (drafts too), students from its publish time on.
func sees(u auth.User, publishAt *time.Time, now time.Time) bool {
	return u.Teaches() || published(publishAt, now)
}

// visible is the cached item slug of kind k, as u may see it at now.
func visible[T, In, V any](s *Service, k kind[T, In, V], u auth.User, slug string, now time.Time) (T, error) {
	x, ok := k.cached(s.state.Load())[slug]
	if !ok || !sees(u, k.meta(x).publishAt, now) {
		var none T
		return none, k.notFound(slug)
	}
	return x, nil
}

// sorted is the cached items of kind k in list order: by their kind's
// time, then by slug.
func sorted[T, In, V any](k kind[T, In, V], st *state) []T {
	out := slices.Collect(maps.Values(k.cached(st)))
	slices.SortFunc(out, func(a, b T) int {
		ma, mb := k.meta(a), k.meta(b)
		return cmp.Or(ma.listedBy.Compare(mb.listedBy), strings.Compare(ma.slug, mb.slug))
	})
	return out
}

// find is the cached item slug, of either kind: its kind and what every
// item has.
func (st *state) find(slug string) (kindName string, m meta, ok bool) {
	if a, ok := st.assignments[slug]; ok {
		return assignmentKind.name, assignmentKind.meta(a), true
	}
	if t, ok := st.tests[slug]; ok {
		return testKind.name, testKind.meta(t), true
	}
	return "", meta{}, false
}

// itemVisible finds an item of either kind by slug, as u may see it: its
// kind and title.
func (s *Service) itemVisible(u auth.User, slug string, now time.Time) (kindName, title string, err error) {
	kindName, m, ok := s.state.Load().find(slug)
	if !ok || !sees(u, m.publishAt, now) {
		return "", "", notFoundItem(slug)
	}
	return kindName, m.title, nil
}

// Item is itemVisible for other packages (the grader): an item's kind and
// title as u may see it now, with the same 404 for an item u may not know
// of, and the exam hold (403) for a student inside a restricted test.
func (s *Service) Item(u auth.User, slug string, now time.Time) (kindName, title string, err error) {
	if kindName, title, err = s.itemVisible(u, slug, now); err != nil {
		return "", "", err
	}
	return kindName, title, s.examHold(u, slug, now)
}

// items serves the endpoints every kind has.
type items[T, In, V any] struct {
	s *Service
	k kind[T, In, V]
}

// registerItems adds the endpoints every kind has, /<plural> and
// /<plural>/:slug, to c.
func registerItems[T, In, V any](c *echo.Group, s *Service, k kind[T, In, V]) {
	h := items[T, In, V]{s: s, k: k}
	c.GET("/"+h.k.plural, h.list)
	c.POST("/"+h.k.plural, h.create, auth.RequireStaff)
	c.GET("/"+h.k.plural+"/:slug", h.get)
	c.PUT("/"+h.k.plural+"/:slug", h.update, auth.RequireStaff)
	c.DELETE("/"+h.k.plural+"/:slug", h.delete, auth.RequireStaff)
}

// answer is the reply about one item: the server's time and the item as u
// sees it then.
func (h items[T, In, V]) answer(c *echo.Context, status int, u auth.User, x T, now time.Time) error {
	return c.JSON(status, map[string]any{"now": stamp(now), h.k.name: h.k.view(h.s.state.Load(), x, u.Username, now)})
}

func (h items[T, In, V]) list(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := h.s.now()
	st := h.s.state.Load()
	out := []V{}
	for _, x := range sorted(h.k, st) {
		if sees(u, h.k.meta(x).publishAt, now) {
			out = append(out, h.k.view(st, x, u.Username, now))
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(now), h.k.plural: out})
}

func (h items[T, In, V]) get(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	now := h.s.now()
	x, err := visible(h.s, h.k, u, c.Param("slug"), now)
	if err != nil {
		return err
	}
	return h.answer(c, http.StatusOK, u, x, now)
}

// create makes an item and its folders (material, submissions).
func (h items[T, In, V]) create(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	var in In
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	x, err := h.k.fromInput(in)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	x, err = h.k.create(ctx, h.s.opts.DB, x, u.Username)
	if errors.Is(err, store.ErrConflict) {
		return echo.NewHTTPError(http.StatusConflict, fmt.Sprintf("an assignment or test named %q already exists", *h.k.slug(&in)))
	}
	if err != nil {
		return err
	}
	h.s.reloadAfterWrite(ctx, "")
	slug := h.k.meta(x).slug
	if err := h.s.opts.Files.EnsureItemFolders(h.k.root, slug); err != nil {
		return err
	}
	h.s.audit(ctx, u.Username, "course."+h.k.name+".create", slug, h.k.created(x))
	return h.answer(c, http.StatusCreated, u, x, h.s.now())
}

// update replaces an item's editable fields; its slug never changes.
func (h items[T, In, V]) update(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug := c.Param("slug")
	var in In
	if err := httpapi.Bind(c, &in); err != nil {
		return err
	}
	given := h.k.slug(&in)
	if *given != "" && *given != slug {
		return badRequest("slug: cannot be changed")
	}
	*given = slug
	x, err := h.k.fromInput(in)
	if err != nil {
		return err
	}
	old, known := h.k.cached(h.s.state.Load())[slug]
	ctx := c.Request().Context()
	x, err = h.k.update(ctx, h.s.opts.DB, x)
	if errors.Is(err, store.ErrNotFound) {
		return h.k.notFound(slug)
	}
	if err != nil {
		return err
	}
	h.s.reloadAfterWrite(ctx, "")
	// A test moved to a later end may need auto-submitting again later
	// (only tests are auto-submitted).
	h.s.forgetAutoSubmits(slug)
	h.s.audit(ctx, u.Username, "course."+h.k.name+".update", slug, h.k.updated(x))
	if publishAt := h.k.meta(x).publishAt; !known || !samePtrTime(h.k.meta(old).publishAt, publishAt) {
		h.s.audit(ctx, u.Username, "course."+h.k.name+".publish", slug, map[string]any{"publish_at": publishAt})
	}
	return h.answer(c, http.StatusOK, u, x, h.s.now())
}

// delete deletes an item's rows (its files stay on disk); with
// submissions it needs ?force=true.
func (h items[T, In, V]) delete(c *echo.Context) error {
	u, err := auth.MustUser(c)
	if err != nil {
		return err
	}
	slug := c.Param("slug")
	ctx := c.Request().Context()
	n, err := h.s.opts.DB.CountSubmissions(ctx, slug)
	if err != nil {
		return err
	}
	if n > 0 && c.QueryParam("force") != "true" {
		return echo.NewHTTPError(http.StatusConflict,
			fmt.Sprintf("%q has %d submissions; delete with ?force=true to drop them and their grades (the files stay on disk)", slug, n))
	}
	err = h.s.opts.DB.DeleteItem(ctx, slug, h.k.name)
	if errors.Is(err, store.ErrNotFound) {
		return h.k.notFound(slug)
	}
	if err != nil {
		return err
	}
	h.s.reloadAfterWrite(ctx, "")
	h.s.forgetAutoSubmits(slug)
	h.s.audit(ctx, u.Username, "course."+h.k.name+".delete", slug, map[string]any{"submissions": n})
	return c.JSON(http.StatusOK, map[string]any{"now": stamp(h.s.now()), "deleted": slug})
}

func samePtrTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
