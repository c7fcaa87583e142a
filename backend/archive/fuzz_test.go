package archive

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/, made from the fixtures.

func FuzzScanMbox(f *testing.F) {
	f.Add([]byte("From x\nA: b\n\nFrom y\nB: c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, chunk := range []int{1 + len(data)%23, defaultScanChunk} {
			var offsets []int64
			end := int64(-1)
			next, problems, err := scanMbox(bytes.NewReader(data), "fuzz.mbox", 0, int64(len(data)), chunk, func(e MboxEntry) error {
				if end >= 0 && e.Offset != end {
					t.Fatalf("chunk %d: entry at %d does not follow the previous one ending at %d", chunk, e.Offset, end)
				}
				if e.Offset < 0 || e.Length < 5 || e.Offset+e.Length > int64(len(data)) || e.Length != int64(len(e.Raw)) {
					t.Fatalf("chunk %d: entry %d+%d out of bounds (%d bytes, raw %d)", chunk, e.Offset, e.Length, len(data), len(e.Raw))
				}
				if !bytes.Equal(e.Raw, data[e.Offset:e.Offset+e.Length]) || !bytes.HasPrefix(e.Raw, []byte("From ")) {
					t.Fatalf("chunk %d: entry at %d: raw is not the file's bytes", chunk, e.Offset)
				}
				end = e.Offset + e.Length
				offsets = append(offsets, e.Offset)
				checkServed(t, e.Raw, ServeMbox(e.Raw))
				checkMeta(t, ParseMeta(e.Raw))
				return nil
			})
			if err != nil || next != int64(len(data)) {
				t.Fatalf("chunk %d: next %d err %v", chunk, next, err)
			}
			if len(offsets) > 0 && end != int64(len(data)) {
				t.Fatalf("chunk %d: entries end at %d, file at %d", chunk, end, len(data))
			}
			if len(offsets) == 0 && len(data) > 0 && len(problems) == 0 {
				t.Fatalf("chunk %d: no entries and no problem for %d bytes", chunk, len(data))
			}
			for _, p := range problems {
				if p.Path != "fuzz.mbox" {
					t.Fatalf("problem names %q", p.Path)
				}
			}
			// Resuming at any entry gives the same tail.
			if len(offsets) > 1 {
				k := len(data) % len(offsets)
				var tail []int64
				_, _, err := scanMbox(bytes.NewReader(data), "fuzz.mbox", offsets[k], int64(len(data)), chunk, func(e MboxEntry) error {
					tail = append(tail, e.Offset)
					return nil
				})
				if err != nil || !slices.Equal(tail, offsets[k:]) {
					t.Fatalf("chunk %d: resume at %d: %v %v, want %v", chunk, offsets[k], tail, err, offsets[k:])
				}
			}
		}
		// Any bytes, served either way.
		checkServed(t, data, ServeMbox(data))
		checkServed(t, data, ServeFile(data))
	})
}

// checkServed checks what holds for every served message: no growth beyond
// 2x and no bare LF.
func checkServed(t *testing.T, raw, served []byte) {
	t.Helper()
	if len(served) > 2*len(raw) {
		t.Fatalf("served %d bytes from %d", len(served), len(raw))
	}
	for i, c := range served {
		if c == '\n' && (i == 0 || served[i-1] != '\r') {
			t.Fatalf("bare LF at %d in served %q", i, served)
		}
	}
}

func checkMeta(t *testing.T, m Meta) {
	t.Helper()
	if m.Flags != nil && len(m.Flags) == 0 {
		t.Fatalf("empty non-nil flags")
	}
	if !slices.IsSorted(m.Flags) || len(slices.Compact(slices.Clone(m.Flags))) != len(m.Flags) {
		t.Fatalf("flags not sorted and unique: %q", m.Flags)
	}
	for _, f := range m.Flags {
		if strings.HasPrefix(f, `\`) {
			if !slices.Contains([]string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`}, f) {
				t.Fatalf("unknown system flag %q", f)
			}
		} else if !isAtom([]byte(f)) {
			t.Fatalf("keyword %q is not an atom", f)
		}
	}
	if m.UIDL != strings.TrimSpace(m.UIDL) {
		t.Fatalf("UIDL %q not trimmed", m.UIDL)
	}
}

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte("From - x\nX-Mozilla-Status: 0001\nX-Mozilla-Keys: a\n b\nStatus: RO\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkMeta(t, ParseMeta(data))
		checkServed(t, data, ServeFile(data))
		checkServed(t, data, ServeMbox(data))
	})
}

func FuzzParseMozillaStatus(f *testing.F) {
	f.Add("0001")
	f.Fuzz(func(t *testing.T, s string) {
		bits, ok := ParseMozillaStatus(s)
		if !ok {
			if bits != 0 {
				t.Fatalf("%q: bits %#x with !ok", s, bits)
			}
			return
		}
		for _, form := range []string{"%x", "%08x", "%X", "0x%04x", " %x\t"} {
			b2, ok2 := ParseMozillaStatus(fmt.Sprintf(form, bits))
			if !ok2 || b2 != bits {
				t.Fatalf("%q = %#x, but %q = %#x, %v", s, bits, fmt.Sprintf(form, bits), b2, ok2)
			}
		}
	})
}

func FuzzParseMaildirInfo(f *testing.F) {
	f.Add("1262304000.M1P100.host:2,FRSa")
	kw := []string{"todo", "", "$Important"}
	allowed := []string{`$Forwarded`, `\Answered`, `\Seen`, `\Deleted`, `\Draft`, `\Flagged`, "todo", "$Important"}
	f.Fuzz(func(t *testing.T, name string) {
		flags, ok := ParseMaildirInfo(name, kw)
		if !ok && flags != nil {
			t.Fatalf("%q: flags %q without info", name, flags)
		}
		if ok != (strings.Contains(name, ":2,") || strings.Contains(name, "!2,")) && !strings.ContainsAny(name, "/") {
			t.Fatalf("%q: ok = %v", name, ok)
		}
		if !slices.IsSorted(flags) || len(slices.Compact(slices.Clone(flags))) != len(flags) {
			t.Fatalf("%q: flags not sorted/unique: %q", name, flags)
		}
		for _, fl := range flags {
			if !slices.Contains(allowed, fl) {
				t.Fatalf("%q: unexpected flag %q", name, fl)
			}
		}
	})
}
