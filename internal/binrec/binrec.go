// Package binrec is the byte layout of popbridge's binary records: the
// store's message and upload records and the envelope and body-structure
// cache of backend/message. Numbers are uvarints or zig-zag varints,
// strings and byte strings are length-prefixed, and lists carry 0 for nil
// and n+1 for n elements so that nil and empty round-trip.
//
// The Decoder never panics and never allocates more than its input
// allows: the first error sticks (Err), and every later read returns a
// zero value.
package binrec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrTruncated is wrapped by the errors of a record cut short.
var ErrTruncated = errors.New("truncated")

// Encoder appends to B.
type Encoder struct{ B []byte }

func (e *Encoder) Byte(c byte)      { e.B = append(e.B, c) }
func (e *Encoder) Uvarint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }
func (e *Encoder) Varint(v int64)   { e.B = binary.AppendVarint(e.B, v) }

// Bool is one byte, 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Byte(1)
	} else {
		e.Byte(0)
	}
}

// Str and Bytes are length-prefixed.
func (e *Encoder) Str(s string) {
	e.Uvarint(uint64(len(s)))
	e.B = append(e.B, s...)
}

func (e *Encoder) Bytes(b []byte) {
	e.Uvarint(uint64(len(b)))
	e.B = append(e.B, b...)
}

// ListLen starts a list: 0 for nil, else n+1.
func (e *Encoder) ListLen(isNil bool, n int) {
	if isNil {
		e.Uvarint(0)
		return
	}
	e.Uvarint(uint64(n) + 1)
}

// Strs is a list of strings.
func (e *Encoder) Strs(l []string) {
	e.ListLen(l == nil, len(l))
	for _, s := range l {
		e.Str(s)
	}
}

// Decoder reads B; Err is the first error.
type Decoder struct {
	B   []byte
	Err error
}

// Fail records err unless an error came first.
func (d *Decoder) Fail(err error) {
	if d.Err == nil {
		d.Err = err
	}
}

func (d *Decoder) Byte() byte {
	if d.Err != nil {
		return 0
	}
	if len(d.B) == 0 {
		d.Fail(ErrTruncated)
		return 0
	}
	c := d.B[0]
	d.B = d.B[1:]
	return c
}

// Bool fails on a byte other than 0 or 1.
func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail(errors.New("bad boolean"))
	return false
}

func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Fail(ErrTruncated)
		return 0
	}
	d.B = d.B[n:]
	return v
}

func (d *Decoder) Varint() int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Fail(ErrTruncated)
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Uint32 is a Uvarint that must fit 32 bits.
func (d *Decoder) Uint32() uint32 {
	v := d.Uvarint()
	if v > math.MaxUint32 {
		d.Fail(fmt.Errorf("%d out of range", v))
		return 0
	}
	return uint32(v)
}

// Int32 is a Varint that must fit 32 bits.
func (d *Decoder) Int32() int32 {
	v := d.Varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.Fail(fmt.Errorf("%d out of range", v))
		return 0
	}
	return int32(v)
}

// raw returns the next length-prefixed field, aliasing B.
func (d *Decoder) raw() []byte {
	n := d.Uvarint()
	if d.Err != nil {
		return nil
	}
	if n > uint64(len(d.B)) {
		d.Fail(ErrTruncated)
		return nil
	}
	s := d.B[:n:n]
	d.B = d.B[n:]
	return s
}

func (d *Decoder) Str() string { return string(d.raw()) }

// Bytes copies (B may be memory that goes away); empty gives nil.
func (d *Decoder) Bytes() []byte {
	s := d.raw()
	if len(s) == 0 {
		return nil
	}
	return append([]byte(nil), s...)
}

// ListLen reads what Encoder.ListLen wrote: -1 for nil. A count beyond
// the bytes left (every element takes one at least) is an error.
func (d *Decoder) ListLen() int {
	v := d.Uvarint()
	if d.Err != nil || v == 0 {
		return -1
	}
	if v-1 > uint64(len(d.B)) {
		d.Fail(fmt.Errorf("list length %d beyond input", v-1))
		return -1
	}
	return int(v - 1)
}

// Strs reads what Encoder.Strs wrote.
func (d *Decoder) Strs() []string {
	n := d.ListLen()
	if n < 0 {
		return nil
	}
	l := make([]string, 0, n)
	for i := 0; i < n && d.Err == nil; i++ {
		l = append(l, d.Str())
	}
	if d.Err != nil {
		return nil
	}
	return l
}

// End fails when bytes are left (for records that end where they end;
// records that may grow at the end do not call it).
func (d *Decoder) End() error {
	if d.Err == nil && len(d.B) != 0 {
		d.Fail(fmt.Errorf("%d trailing bytes", len(d.B)))
	}
	return d.Err
}
