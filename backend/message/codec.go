package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Cache codec: a version byte, then uvarints, zig-zag varints and
// length-prefixed strings. Lists and maps carry 0 for nil and n+1 for n
// elements so that nil and empty round-trip.

var errTruncated = errors.New("truncated")

type encoder struct{ b []byte }

func (e *encoder) byte(c byte)      { e.b = append(e.b, c) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(v bool)      { e.byte(boolByte(v)) }
func (e *encoder) listLen(nil_ bool, n int) {
	if nil_ {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(n) + 1)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func (e *encoder) strs(l []string) {
	e.listLen(l == nil, len(l))
	for _, s := range l {
		e.str(s)
	}
}

func (e *encoder) params(m map[string]string) {
	e.listLen(m == nil, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(errTruncated)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(errors.New("bad boolean"))
	return false
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail(errTruncated)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// listLen returns the element count, or -1 for nil. Counts are bounded by
// the remaining input so that garbage cannot make us allocate much.
func (d *decoder) listLen() int {
	v := d.uvarint()
	if d.err != nil || v == 0 {
		return -1
	}
	if v-1 > uint64(len(d.b)) {
		d.fail(fmt.Errorf("list length %d beyond input", v-1))
		return -1
	}
	return int(v - 1)
}

func (d *decoder) strs() []string {
	n := d.listLen()
	if n < 0 {
		return nil
	}
	l := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		l = append(l, d.str())
	}
	return l
}

func (d *decoder) params() map[string]string {
	n := d.listLen()
	if n < 0 {
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
	}
	return d.err
}
