package frontend

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestDistServesAnIndex(t *testing.T) {
	t.Parallel()
	index, err := fs.ReadFile(Dist, "index.html")
	if err != nil {
		t.Fatalf("Dist has no index.html: %v", err)
	}
	isPlaceholder := strings.Contains(string(index), `name="pyide-placeholder"`)
	if Built() == isPlaceholder {
		t.Fatalf("Built() = %v but index.html placeholder marker present = %v", Built(), isPlaceholder)
	}
}

// A built index.html must only reference assets that were embedded with it:
// a stale or partial dist/ would otherwise serve a blank page.
func TestBuiltIndexReferencesEmbeddedAssets(t *testing.T) {
	t.Parallel()
	if !Built() {
		t.Skip("front end not built (cd frontend && npm ci && npm run build)")
	}
	index, err := fs.ReadFile(Dist, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="/(assets/[^"]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) == 0 {
		t.Fatal("built index.html references no /assets/ files")
	}
	for _, ref := range refs {
		if _, err := fs.Stat(Dist, ref[1]); err != nil {
			t.Errorf("index.html references %s, not embedded: %v", ref[1], err)
		}
	}
}
