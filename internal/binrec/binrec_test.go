package binrec

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// TestRoundTrip: what an Encoder wrote reads back the same; nil and empty
// lists stay apart.
func TestRoundTrip(t *testing.T) {
	var e Encoder
	e.Byte(7)
	e.Bool(true)
	e.Uvarint(math.MaxUint32)
	e.Varint(-1 << 40)
	e.Str("受信トレイ")
	e.Bytes([]byte{0, 1, 2})
	e.Bytes(nil)
	e.Strs(nil)
	e.Strs([]string{})
	e.Strs([]string{"a", ""})
	e.Varint(math.MinInt32)
	d := Decoder{B: e.B}
	got := []any{d.Byte(), d.Bool(), d.Uint32(), d.Varint(), d.Str(), d.Bytes(), d.Bytes(), d.Strs(), d.Strs(), d.Strs(), d.Int32()}
	want := []any{byte(7), true, uint32(math.MaxUint32), int64(-1 << 40), "受信トレイ", []byte{0, 1, 2}, []byte(nil), []string(nil), []string{}, []string{"a", ""}, int32(math.MinInt32)}
	if err := d.End(); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v %v\nwant %#v", got, err, want)
	}
}

// TestBadInput: every way a record can be wrong is an error that sticks,
// never a panic or a large allocation.
func TestBadInput(t *testing.T) {
	for name, c := range map[string]struct {
		b    []byte
		read func(d *Decoder)
	}{
		"empty":           {nil, func(d *Decoder) { d.Byte() }},
		"cut varint":      {[]byte{0x80}, func(d *Decoder) { d.Uvarint() }},
		"cut string":      {[]byte{5, 'a'}, func(d *Decoder) { d.Str() }},
		"huge list":       {[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, func(d *Decoder) { d.Strs() }},
		"bad bool":        {[]byte{2}, func(d *Decoder) { d.Bool() }},
		"uint32 overflow": {[]byte{0x80, 0x80, 0x80, 0x80, 0x10}, func(d *Decoder) { d.Uint32() }},
		"trailing":        {[]byte{1, 2}, func(d *Decoder) { d.Byte(); d.End() }},
	} {
		d := Decoder{B: c.b}
		c.read(&d)
		if d.Err == nil {
			t.Errorf("%s: no error", name)
		}
		first := d.Err
		if d.Str() != "" || d.Uvarint() != 0 || !errors.Is(d.Err, first) {
			t.Errorf("%s: the first error did not stick", name)
		}
	}
}
