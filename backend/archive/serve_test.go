package archive

import (
	"bytes"
	"strings"
	"testing"
)

func TestServeMbox(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"", ""},
		{"From x\n", ""},
		{"From x", ""},
		{"From x\n\n", ""},
		{"From x\nA: b\n\nbody\n\n", "A: b\r\n\r\nbody\r\n"},
		{"From x\nA: b\n\nbody\n", "A: b\r\n\r\nbody\r\n"},
		{"From x\r\nA: b\r\n\r\nbody\r\n\r\n", "A: b\r\n\r\nbody\r\n"},
		{"From x\nA: b\n\nbody\n\r\n", "A: b\r\n\r\nbody\r\n"},
		{"From x\nA: b\n\nbody\n\n\n", "A: b\r\n\r\nbody\r\n\r\n"},
		{"From x\nA: b\n\nbody", "A: b\r\n\r\nbody"},
		{"From x\nA: b\n\n\n\nz\n", "A: b\r\n\r\n\r\n\r\nz\r\n"},
		// Only the header block loses Thunderbird's fields, with their
		// continuation lines.
		{"From - d\nX-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: a\n b\nSubject: s\n\nX-Mozilla-Status: 0001\n\n",
			"Subject: s\r\n\r\nX-Mozilla-Status: 0001\r\n"},
		{"From x\nx-mozilla-status: 1\nX-MOZILLA-KEYS : z\nA: b\n\nc", "A: b\r\n\r\nc"},
		{"From x\nX-Mozilla-Draft-Info: x\nX-Mozilla-StatusX: y\nX-Mozilla-Status2x: z\nX-Mozilla-Status\n\n",
			"X-Mozilla-Draft-Info: x\r\nX-Mozilla-StatusX: y\r\nX-Mozilla-Status2x: z\r\nX-Mozilla-Status\r\n"},
		{"From x\nA: b\n c\nX-Mozilla-Keys: k\n\tk2\n d\nB: e\n f\n\n", "A: b\r\n c\r\nB: e\r\n f\r\n"},
		{"From x\nA: b\nX-Mozilla-Status: 0001", "A: b\r\n"},
		{"From x\nX-Mozilla-Keys: a\n b", ""},
		{"From x\nA: b\nX-Mozilla-Status: 0001\nC: d", "A: b\r\nC: d"},
		// mboxrd unquoting, everywhere after the From line.
		{"From x\nA: b\n\n>From a\n>>From b\n>Fromage\n>From\n >From c\n", "A: b\r\n\r\nFrom a\r\n>From b\r\n>Fromage\r\n>From\r\n >From c\r\n"},
		{"From x\nA: b\n\n>From end", "A: b\r\n\r\nFrom end"},
		{"From x\n>From y\nA: b\n\n", "From y\r\nA: b\r\n"},
		{"From x\r\nA: b\r\n\r\n>>From y\r\n", "A: b\r\n\r\n>From y\r\n"},
		// Line endings: lone CR stays, CR before CRLF stays.
		{"From x\nA: b\r\n\r\nx\ry\r\n", "A: b\r\n\r\nx\ry\r\n"},
		{"From x\nA: b\n\nx\r\r\n", "A: b\r\n\r\nx\r\r\n"},
		{"From x\nA: b\r\r\n\r\n", "A: b\r\r\n"},
		{"From x\nA: b\n\r", "A: b\r\n\r"},
		// Edge shapes.
		{"From x\n\nbody\n", "\r\nbody\r\n"},
		{"From x\nA: b\n\n", "A: b\r\n"},
		{"A: b\n\n>From x\n", "A: b\r\n\r\nFrom x\r\n"},
		{"\n", ""},
		{"\n\n", "\r\n"},
		{">", ">"},
		{"From x\n\x00\xff\n\n\x00", "\x00\xff\r\n\r\n\x00"},
	} {
		got := ServeMbox([]byte(c.raw))
		if string(got) != c.want {
			t.Errorf("ServeMbox(%q)\n got %q\nwant %q", c.raw, got, c.want)
		}
		if len(got) > 2*len(c.raw) {
			t.Errorf("ServeMbox(%q) grew to %d bytes", c.raw, len(got))
		}
		dst := AppendServedMbox([]byte("prefix"), []byte(c.raw))
		if string(dst) != "prefix"+c.want {
			t.Errorf("AppendServedMbox(prefix, %q) = %q", c.raw, dst)
		}
	}
}

func TestServeFile(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"", ""},
		{"A: b\n\nbody\n\n", "A: b\r\n\r\nbody\r\n\r\n"},
		{"From x\nA: b\n\n", "From x\r\nA: b\r\n\r\n"},
		{"A: b\n\n>From x\n", "A: b\r\n\r\n>From x\r\n"},
		{"A: b\nB: c", "A: b\r\nB: c"},
		{"X-Mozilla-Status: 0005\nX-Mozilla-Keys: $label1\nA: b\n\nc\n", "A: b\r\n\r\nc\r\n"},
		{"A: b\r\n\r\nc\r\nd\n", "A: b\r\n\r\nc\r\nd\r\n"},
		{"X-Mozilla-Status: 0005", ""},
	} {
		got := ServeFile([]byte(c.raw))
		if string(got) != c.want {
			t.Errorf("ServeFile(%q)\n got %q\nwant %q", c.raw, got, c.want)
		}
		dst := AppendServedFile([]byte("p"), []byte(c.raw))
		if string(dst) != "p"+c.want {
			t.Errorf("AppendServedFile(p, %q) = %q", c.raw, dst)
		}
	}
}

// TestServeShortLines: lines shorter than the allocation estimate make the
// body copy grow its buffer, in both the word-wise and the byte-wise loops.
func TestServeShortLines(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 100, 1000} {
		for _, line := range []string{"", "a", "abcdefg", ">From x"} {
			body := strings.Repeat(line+"\n", n)
			raw := "From x\nA: b\n\n" + body + "\n"
			want := "A: b\r\n\r\n" + strings.ReplaceAll(strings.TrimPrefix(body, ">"), "\n>From", "\nFrom")
			want = strings.ReplaceAll(want, "\n", "\r\n")
			want = strings.ReplaceAll(want, "\r\r\n", "\r\n")
			if got := ServeMbox([]byte(raw)); string(got) != want {
				t.Errorf("%d lines of %q: got %q, want %q", n, line, got, want)
			}
			for _, dst := range [][]byte{nil, make([]byte, 3, 3), make([]byte, 0, 4096)} {
				got := AppendServedMbox(dst, []byte(raw))
				if string(got[len(dst):]) != want || !bytes.Equal(got[:len(dst)], dst) {
					t.Errorf("%d lines of %q appended to cap %d: got %q", n, line, cap(dst), got)
				}
			}
		}
	}
}

func TestServeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds allocations")
	}
	raw := []byte("From - Mon Apr 01 09:00:00 2019\nX-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\n" +
		"Subject: hello\nFrom: a@example.com\n\n" + strings.Repeat("A body line of typical mail, quite a bit longer than sixteen bytes.\n>From x and some more words\n\n", 100) + "\n")
	if n := testing.AllocsPerRun(100, func() { ServeMbox(raw) }); n != 1 {
		t.Errorf("ServeMbox: %v allocations, want 1", n)
	}
	buf := make([]byte, 0, 2*len(raw))
	if n := testing.AllocsPerRun(100, func() { buf = AppendServedMbox(buf[:0], raw) }); n != 0 {
		t.Errorf("AppendServedMbox into a big enough buffer: %v allocations, want 0", n)
	}
	crlf := bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
	if n := testing.AllocsPerRun(100, func() { ServeFile(crlf) }); n != 1 {
		t.Errorf("ServeFile: %v allocations, want 1", n)
	}
}
