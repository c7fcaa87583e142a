package archive

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// legacyMsg builds a test message with CRLF line ends: a few header
// fields (extra ones first), a body with the given lines.
func legacyMsg(i int, extra string, body ...string) []byte {
	var b strings.Builder
	b.WriteString(extra)
	fmt.Fprintf(&b, "From: Sender %d <s%d@example.jp>\r\nTo: me@example.jp\r\nSubject: message %d\r\nMessage-ID: <m%d@example.jp>\r\nDate: Mon, 2 Jan 2006 15:04:%02d +0900\r\n\r\n", i, i, i, i, i%60)
	if len(body) == 0 {
		body = []string{fmt.Sprintf("body of message %d", i)}
	}
	for _, l := range body {
		b.WriteString(l + "\r\n")
	}
	return []byte(b.String())
}

// itemScan is what ScanItems delivered, by ID.
type itemScan struct {
	order []string
	items map[string]Item
	probs []Problem
}

func scanItemsAll(t *testing.T, f Folder) itemScan {
	t.Helper()
	s := itemScan{items: map[string]Item{}}
	probs, err := ScanItems(f, nil, func(it *Item) error {
		if it.Served == nil {
			t.Fatalf("%s: item %s delivered without bytes", f.Loc, it.ID)
		}
		if _, dup := s.items[it.ID]; dup {
			t.Fatalf("%s: item %s delivered twice", f.Loc, it.ID)
		}
		c := *it
		c.Served = bytes.Clone(it.Served)
		s.items[it.ID] = c
		s.order = append(s.order, it.ID)
		if !it.Rebuilt {
			back, err := ReadItem(f.Kind, it.Path, it.Offset, it.Length, nil)
			if err != nil || !bytes.Equal(back, it.Served) {
				t.Errorf("%s: ReadItem(%s) = %d bytes, %v; ScanItems served %d", f.Loc, it.ID, len(back), err, len(it.Served))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ScanItems(%s): %v", f.Loc, err)
	}
	s.probs = probs
	return s
}

// servedSet returns the served bytes in delivery order.
func (s itemScan) served() [][]byte {
	var out [][]byte
	for _, id := range s.order {
		out = append(out, s.items[id].Served)
	}
	return out
}

func folderByPath(t *testing.T, folders []Folder, path ...string) Folder {
	t.Helper()
	for _, f := range folders {
		if slices.Equal(f.Path, path) {
			return f
		}
	}
	var have []string
	for _, f := range folders {
		have = append(have, strings.Join(f.Path, "/"))
	}
	t.Fatalf("no folder %q; have %q", strings.Join(path, "/"), have)
	return Folder{}
}

func legacyPaths(folders []Folder) []string {
	var out []string
	for _, f := range folders {
		p := strings.Join(f.Path, "/")
		if f.NoSelect {
			p += " (container)"
		}
		out = append(out, p)
	}
	return out
}

func problemsContain(probs []Problem, substrs ...string) bool {
	for _, p := range probs {
		ok := true
		for _, s := range substrs {
			if !strings.Contains(p.Error(), s) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

var t2006 = time.Date(2006, 1, 2, 6, 4, 5, 0, time.UTC)
