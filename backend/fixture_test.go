package backend

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/store"
)

// fixtureSources returns one source per fixture in testdata/archive.
func fixtureSources(t *testing.T) (string, []Source) {
	t.Helper()
	root, err := filepath.Abs("../testdata/archive")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []Source
	for _, e := range entries {
		if e.Name() == "expected" || strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		p := filepath.Join(root, e.Name())
		if _, err := archive.Detect(p); err != nil {
			continue // deliberately broken fixtures are covered by the archive tests
		}
		out = append(out, Source{Name: e.Name(), Path: p, Format: archive.FormatAuto})
	}
	return root, out
}

// expectedMessages reads testdata/archive/expected/<rel>/<n>.eml in order.
func expectedMessages(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	type exp struct {
		n    int
		body string
	}
	var out []exp
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".eml"))
		if err != nil || !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, exp{n, string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	bodies := make([]string, len(out))
	for i, x := range out {
		bodies[i] = x.body
	}
	return bodies
}

// TestFixturesByteExact serves every hand-made fixture over IMAP and
// compares each message's BODY[] with the expected original (framing
// removed, CRLF), and RFC822.SIZE with its length.
func TestFixturesByteExact(t *testing.T) {
	root, sources := fixtureSources(t)
	before := sealOf(t, root)
	e := newEnv(t, sources...)
	folders, err := e.db.Folders()
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(nil)
	checked := 0
	for _, f := range folders {
		if f.NoSelect || f.Kind == 0 {
			continue
		}
		rel, err := filepath.Rel(root, f.Loc)
		if err != nil {
			t.Fatal(err)
		}
		want := expectedMessages(t, filepath.Join(root, "expected", rel))
		got := fetchAll(t, c, f.Name)
		if len(got) != len(want) {
			t.Errorf("%s (%s): %d messages served, %d expected", f.Name, rel, len(got), len(want))
			continue
		}
		for i := range got {
			if string(got[i].Body) != want[i] {
				t.Errorf("%s message %d: BODY[] differs from expected/%s/%d.eml\n got %q\nwant %q", f.Name, i+1, rel, i+1, got[i].Body, want[i])
			}
			if got[i].Size != int64(len(got[i].Body)) {
				t.Errorf("%s message %d: RFC822.SIZE %d, BODY[] is %d bytes", f.Name, i+1, got[i].Size, len(got[i].Body))
			}
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("only %d fixture messages checked", checked)
	}
	t.Logf("%d fixture messages byte-exact in %d folders", checked, len(folders))
	after := sealOf(t, root)
	for p, s := range before {
		if after[p] != s {
			t.Errorf("fixture %s changed while being served", p)
		}
	}
	_ = store.SrcMbox
}
