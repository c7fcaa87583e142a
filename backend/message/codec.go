package message

import (
	"sort"

	"github.com/popbridge/popbridge/internal/binrec"
)

// Cache codec: a version byte, then the layout of package binrec
// (uvarints, zig-zag varints, length-prefixed strings; lists and maps
// carry 0 for nil and n+1 for n elements so that nil and empty
// round-trip).

type encoder struct{ binrec.Encoder }

type decoder struct{ binrec.Decoder }

func (e *encoder) params(m map[string]string) {
	e.ListLen(m == nil, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.Str(k)
		e.Str(m[k])
	}
}

func (d *decoder) params() map[string]string {
	n := d.ListLen()
	if n < 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n && d.Err == nil; i++ {
		k := d.Str()
		m[k] = d.Str()
	}
	return m
}
