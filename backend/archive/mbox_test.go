package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIsSeparator(t *testing.T) {
	for _, c := range []struct {
		line, next string
		want       bool
	}{
		{"From alice@example.com Mon Mar  4 09:12:33 2019", "Return-Path: <alice@example.com>", true},
		{"From - Mon Apr 01 09:00:00 2019", "X-Mozilla-Status: 0001", true},
		{"From MAILER-DAEMON Fri Jul  4 12:00:00 1969", "Date: Fri, 4 Jul 1969 12:00:00 -0400", true},
		{"From x", "Subject : obsolete space before the colon", true},
		{"From x", "X-Weird!#$%&'*+-/=?^_`{|}~: all ftext", true},
		{"From here on, this body", "They are not separators", false},
		{"From me to you", "", false},
		{"From x", " folded: continuation", false},
		{"From x", "\tfolded: continuation", false},
		{"From x", ":no name", false},
		{"From x", "Two words: no", false},
		{"From x", "Ünïcode: 8-bit is not ftext", false},
		{"From x", "NoColon", false},
		{">From x", "A: b", false},
		{"From: alice", "A: b", false},
		{"from x", "A: b", false},
		{"From", "A: b", false},
		{"", "A: b", false},
		{"From ", "A: b", true},
		// Known limitation: an unescaped body line followed by something
		// that looks like a header is taken for a separator.
		{"From the desk of Carol", "Note: read this", true},
	} {
		if got := IsSeparator([]byte(c.line), []byte(c.next)); got != c.want {
			t.Errorf("IsSeparator(%q, %q) = %v, want %v", c.line, c.next, got, c.want)
		}
	}
}

func TestFromLineDate(t *testing.T) {
	utc := time.UTC
	p9 := time.FixedZone("", 9*3600)
	m5 := time.FixedZone("", -5*3600)
	for _, c := range []struct {
		line string
		want time.Time
	}{
		{"From alice@example.com Mon Mar  4 09:12:33 2019", time.Date(2019, 3, 4, 9, 12, 33, 0, utc)},
		{"From alice@example.com Mon Mar 4 09:12:33 2019", time.Date(2019, 3, 4, 9, 12, 33, 0, utc)},
		{"From - Mon Apr 01 09:00:00 2019", time.Date(2019, 4, 1, 9, 0, 0, 0, utc)},
		{"From x Tue Apr  2 10:00:00 +0900 2019", time.Date(2019, 4, 2, 10, 0, 0, 0, p9)},
		{"From x Wed Apr  3 15:30:00 2019 +0900", time.Date(2019, 4, 3, 15, 30, 0, 0, p9)},
		{"From x Wed Apr 3 15:30:00 JST 2019", time.Date(2019, 4, 3, 15, 30, 0, 0, p9)},
		{"From x Wed Apr 3 15:30:00 EST 2019", time.Date(2019, 4, 3, 15, 30, 0, 0, m5)},
		{"From x Wed Apr 3 15:30:00 GMT 2019", time.Date(2019, 4, 3, 15, 30, 0, 0, utc)},
		{"From x Wed Apr 3 15:30:00 CEST 2019", time.Date(2019, 4, 3, 15, 30, 0, 0, utc)}, // unknown zone name: year still found? no: see below
		{"From grace@example.net Wed Dec 31 23:59:59 1969", time.Date(1969, 12, 31, 23, 59, 59, 0, utc)},
		{"From MAILER-DAEMON Fri Jul  4 12:00:00 1969", time.Date(1969, 7, 4, 12, 0, 0, 0, utc)},
		{"From x Mon, 4 Mar 2019 09:12:33 -0500", time.Date(2019, 3, 4, 9, 12, 33, 0, m5)},
		{"From x 4 Mar 2019 09:12:33", time.Date(2019, 3, 4, 9, 12, 33, 0, utc)},
		{"From x Mon Mar 4 09:12 2019", time.Date(2019, 3, 4, 9, 12, 0, 0, utc)},
		{"From x Mon Mar 4 09:12:33 99", time.Date(1999, 3, 4, 9, 12, 33, 0, utc)},
		{"From x Mon March 4 09:12:33 2019", time.Date(2019, 3, 4, 9, 12, 33, 0, utc)},
		{"From x Mon Mar  4 09:12:33 2019\r\n", time.Date(2019, 3, 4, 9, 12, 33, 0, utc)},
		{"From x Mon Mar  4 09:12:33 2019 remote from uucphost", time.Date(2019, 3, 4, 9, 12, 33, 0, utc)},
		{"Mon Mar  4 09:12:33 2019", time.Date(2019, 3, 4, 9, 12, 33, 0, utc)},
		{"From Mon Mar  4 09:12:33 2019", time.Date(2019, 3, 4, 9, 12, 33, 0, utc)},
		{"From x Sat Dec 31 23:59:60 2016", time.Date(2016, 12, 31, 23, 59, 59, 0, utc)},
		{"From x", time.Time{}},
		{"From ", time.Time{}},
		{"", time.Time{}},
		{"From x Mon Mar 32 09:12:33 2019", time.Time{}},
		{"From x Sat Feb 30 09:12:33 2019", time.Time{}},
		{"From x Mon Mar 0 09:12:33 2019", time.Time{}},
		{"From x Mon Mar 4 25:00:00 2019", time.Time{}},
		{"From x Mon Mar 4 09:60:00 2019", time.Time{}},
		{"From x Mon Mar 4 09:12:33", time.Time{}},
		{"From x Mon Mars 4 09:12:33 2019", time.Time{}},
		{"From x Mon Mar 4 9h12 2019", time.Time{}},
	} {
		got := FromLineDate([]byte(c.line))
		if c.line == "From x Wed Apr 3 15:30:00 CEST 2019" {
			// An unknown zone name ends the scan before the year.
			c.want = time.Time{}
		}
		_, gotOff := got.Zone()
		_, wantOff := c.want.Zone()
		if !got.Equal(c.want) || gotOff != wantOff || got.IsZero() != c.want.IsZero() {
			t.Errorf("FromLineDate(%q) = %v, want %v", c.line, got, c.want)
		}
	}
}

// refSplit is an independent, whole-file reference for ScanMbox: split into
// lines, a line at offset 0 starting with "From " or any IsSeparator line
// starts a message.
func refSplit(data []byte) (offsets []int64, junk int64) {
	junk = -1
	var lines [][]byte
	var starts []int64
	for off := 0; off < len(data); {
		i := bytes.IndexByte(data[off:], '\n')
		end := len(data)
		if i >= 0 {
			end = off + i + 1
		}
		starts = append(starts, int64(off))
		lines = append(lines, data[off:end])
		off = end
	}
	strip := func(l []byte) []byte { return trimCR(bytes.TrimSuffix(l, []byte("\n"))) }
	for k, l := range lines {
		var next []byte
		if k+1 < len(lines) {
			next = strip(lines[k+1])
		}
		if k == 0 && bytes.HasPrefix(l, []byte("From ")) {
			offsets = append(offsets, 0)
			continue
		}
		if k+1 < len(lines) && bytes.HasSuffix(l, []byte("\n")) && IsSeparator(strip(l), next) {
			if k == len(lines)-1 {
				continue
			}
			offsets = append(offsets, starts[k])
		}
	}
	if len(data) > 0 && (len(offsets) == 0 || offsets[0] != 0) {
		junk = 0
	}
	return offsets, junk
}

// genMbox builds an mbox with the quirks ScanMbox must handle. Lines end
// with CRLF when crlf is set.
func genMbox(rng *rand.Rand, n int, crlf bool) []byte {
	var b bytes.Buffer
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	for i := range n {
		fmt.Fprintf(&b, "From sender%d@example.com Mon Mar  4 09:12:%02d 2019%s", i, i%60, eol)
		if i%3 == 0 {
			fmt.Fprintf(&b, "X-Mozilla-Status: 000%d%s", i%10, eol)
		}
		fmt.Fprintf(&b, "Subject: message %d%sMessage-ID: <%d@example.com>%s%s", i, eol, i, eol, eol)
		for j := range rng.IntN(8) {
			switch rng.IntN(7) {
			case 0:
				b.WriteString("From here on, an unescaped line" + eol + "not followed by a header" + eol)
			case 1:
				b.WriteString(">From a quoted line" + eol)
			case 2:
				b.WriteString(strings.Repeat("long line ", rng.IntN(40)) + eol)
			case 3:
				b.WriteString("From nothing" + eol + eol)
			case 4:
				b.WriteString("Fro" + eol + "m x" + eol)
			default:
				fmt.Fprintf(&b, "body line %d of message %d%s", j, i, eol)
			}
		}
		if i%5 != 4 {
			b.WriteString(eol) // separator blank line, mostly
		}
	}
	return b.Bytes()
}

type scanned struct {
	offsets  []int64
	raws     [][]byte
	problems []Problem
	next     int64
	err      error
}

func scanAll(data []byte, start int64, chunk int) scanned {
	var s scanned
	s.next, s.problems, s.err = scanMbox(bytes.NewReader(data), "test.mbox", start, int64(len(data)), chunk, func(e MboxEntry) error {
		if e.Length != int64(len(e.Raw)) || cap(e.Raw) != len(e.Raw) {
			return fmt.Errorf("entry at %d: Length %d, len(Raw) %d, cap(Raw) %d", e.Offset, e.Length, len(e.Raw), cap(e.Raw))
		}
		s.offsets = append(s.offsets, e.Offset)
		s.raws = append(s.raws, bytes.Clone(e.Raw))
		return nil
	})
	return s
}

func checkScan(t *testing.T, what string, data []byte, start int64, got scanned, wantOffsets []int64) {
	t.Helper()
	if got.err != nil || got.next != int64(len(data)) {
		t.Fatalf("%s: next %d err %v; want %d, nil", what, got.next, got.err, len(data))
	}
	if !slices.Equal(got.offsets, wantOffsets) {
		t.Fatalf("%s: offsets\n got %v\nwant %v", what, got.offsets, wantOffsets)
	}
	for k, off := range got.offsets {
		end := int64(len(data))
		if k+1 < len(got.offsets) {
			end = got.offsets[k+1]
		}
		if !bytes.Equal(got.raws[k], data[off:end]) {
			t.Fatalf("%s: entry %d raw differs", what, k)
		}
	}
}

// TestScanMboxChunkBoundaries scans generated files with every tiny buffer
// size, so separators, "From " prefixes and the line after a From line fall
// across every possible buffer edge, and compares with a whole-file split.
func TestScanMboxChunkBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, crlf := range []bool{false, true} {
		data := genMbox(rng, 40, crlf)
		want, _ := refSplit(data)
		if len(want) < 40 {
			t.Fatalf("reference found %d messages in 40", len(want))
		}
		for _, chunk := range slices.Collect(rangeInts(1, 90)) {
			got := scanAll(data, 0, chunk)
			checkScan(t, fmt.Sprintf("crlf=%v chunk=%d", crlf, chunk), data, 0, got, want)
			if len(got.problems) != 0 {
				t.Errorf("crlf=%v chunk=%d: problems %v", crlf, chunk, got.problems)
			}
		}
		got := scanAll(data, 0, defaultScanChunk)
		checkScan(t, "default chunk", data, 0, got, want)
	}
}

func rangeInts(from, to int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := from; i < to; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// TestScanMboxSeparatorAcrossEdge puts a separator exactly across the buffer
// edge: "\nFro" | "m x\nSubject: …".
func TestScanMboxSeparatorAcrossEdge(t *testing.T) {
	first := "From a Mon Mar  4 09:12:33 2019\nSubject: one\n\nbody\n"
	data := []byte(first + "From b Mon Mar  4 09:12:34 2019\nSubject: two\n\nbody\n")
	sep := int64(len(first))
	for _, chunk := range []int{int(sep) - 3, int(sep) - 1, int(sep), int(sep) + 1, int(sep) + 3, int(sep) + 8, int(sep) + 33, int(sep) + 34} {
		got := scanAll(data, 0, chunk)
		checkScan(t, fmt.Sprintf("chunk=%d", chunk), data, 0, got, []int64{0, sep})
	}
}

func TestScanMboxResume(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := genMbox(rng, 30, false)
	all := scanAll(data, 0, 64)
	for k, off := range all.offsets {
		got := scanAll(data, off, 64)
		checkScan(t, fmt.Sprintf("resume at entry %d", k), data, off, got, all.offsets[k:])
	}
	// Not at a separator: the file was rewritten.
	for _, off := range []int64{1, all.offsets[1] - 1, all.offsets[1] + 1, all.offsets[2] + 3} {
		_, _, err := scanMbox(bytes.NewReader(data), "test.mbox", off, int64(len(data)), 64, func(MboxEntry) error { return nil })
		if !errors.Is(err, ErrNotAtSeparator) || !strings.Contains(err.Error(), fmt.Sprintf(`"test.mbox" at offset %d`, off)) {
			t.Errorf("resume at %d: err = %v; want ErrNotAtSeparator naming file and offset", off, err)
		}
	}
	// Out of range.
	if _, _, err := ScanMbox(bytes.NewReader(data), "test.mbox", int64(len(data))+1, int64(len(data)), nil); err == nil {
		t.Error("start beyond end: no error")
	}
	// start == end: nothing to do.
	next, problems, err := ScanMbox(bytes.NewReader(data), "test.mbox", int64(len(data)), int64(len(data)), nil)
	if next != int64(len(data)) || problems != nil || err != nil {
		t.Errorf("start == end: %d %v %v", next, problems, err)
	}
}

func TestScanMboxCRLF(t *testing.T) {
	data := []byte("From a Mon Mar  4 09:12:33 2019\r\nSubject: one\r\n\r\nFrom the desk\r\nof someone\r\n\r\n" +
		"From b Mon Mar  4 09:12:34 2019\r\nSubject: two\r\n\r\nbody\r\n\r\n")
	got := scanAll(data, 0, 16)
	checkScan(t, "crlf", data, 0, got, []int64{0, int64(bytes.Index(data, []byte("From b")))})
	if string(ServeMbox(got.raws[0])) != "Subject: one\r\n\r\nFrom the desk\r\nof someone\r\n" {
		t.Errorf("served %q", ServeMbox(got.raws[0]))
	}
}

func TestScanMboxEdgeCases(t *testing.T) {
	for _, c := range []struct {
		name     string
		data     string
		offsets  []int64
		problems []string
	}{
		{"empty", "", nil, nil},
		{"from line only, no newline", "From x", []int64{0}, []string{"at offset 0: last message ends in the middle of a line"}},
		{"offset 0 needs no header", "From x\nbody text\n", []int64{0}, nil},
		{"too short", "Fro", nil, []string{"at offset 0: not an mbox file"}},
		{"junk only", "hello\nworld\nFrom x\n\n", nil, []string{"at offset 0: not an mbox file"}},
		{"junk then message", "hello\nFrom x\nA: b\n\nc\n", []int64{6}, []string{"at offset 0: 6 bytes before the first"}},
		{"leading blank line", "\nFrom x\nA: b\n", []int64{1}, []string{"at offset 0: 1 bytes before"}},
		{"last line is a From line", "From x\nA: b\n\nFrom y\n", []int64{0}, nil},
		{"last line is an unterminated From line", "From x\nA: b\n\nFrom y", []int64{0}, []string{"at offset 0: last message ends in the middle"}},
		{"From line then header at EOF without newline", "From x\nA: b\n\nFrom y\nB: c", []int64{0, 13}, []string{"at offset 13: last message ends in the middle"}},
		{"consecutive separators", "From x\nA: b\nFrom y\nB: c\n", []int64{0, 12}, nil},
	} {
		for _, chunk := range []int{1, 2, 3, 5, 8, 9, 13, 1 << 20} {
			got := scanAll([]byte(c.data), 0, chunk)
			if got.err != nil || got.next != int64(len(c.data)) {
				t.Errorf("%s/%d: next %d err %v", c.name, chunk, got.next, got.err)
			}
			if !slices.Equal(got.offsets, c.offsets) {
				t.Errorf("%s/%d: offsets %v, want %v", c.name, chunk, got.offsets, c.offsets)
			}
			problemsMatch(t, c.name, got.problems, c.problems...)
		}
	}
}

// TestScanMboxTruncated covers a scan end inside a message (the file grew
// while, or was cut before, the scan) and a file shorter than end.
func TestScanMboxTruncated(t *testing.T) {
	data := []byte("From a Mon Mar  4 09:12:33 2019\nSubject: one\n\nbody\n\nFrom b Mon Mar  4 09:12:34 2019\nSubject: two\n\nbody two\n\n")
	second := int64(bytes.Index(data, []byte("From b")))
	// end in the middle of the second message's header.
	end := second + 40
	var raws []string
	next, problems, err := scanMbox(bytes.NewReader(data), "t.mbox", 0, end, 16, func(e MboxEntry) error {
		raws = append(raws, string(e.Raw))
		return nil
	})
	if err != nil || next != end {
		t.Fatalf("next %d err %v", next, err)
	}
	if len(raws) != 2 || raws[1] != string(data[second:end]) {
		t.Fatalf("raws %q", raws)
	}
	problemsMatch(t, "cut", problems, fmt.Sprintf("t.mbox at offset %d: last message ends in the middle of a line", second))

	// The file is shorter than end: a read error, entries before it kept.
	raws = nil
	short := data[:second+50] // past the line that confirms the separator
	next, _, err = scanMbox(bytes.NewReader(short), "t.mbox", 0, int64(len(data)), 16, func(e MboxEntry) error {
		raws = append(raws, string(e.Raw))
		return nil
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), `mbox "t.mbox" at offset`) {
		t.Errorf("short file: err = %v; want io.ErrUnexpectedEOF naming the file", err)
	}
	if next != second || len(raws) != 1 {
		t.Errorf("short file: next %d (want %d), %d entries (want 1)", next, second, len(raws))
	}
}

func TestScanMboxCallbackError(t *testing.T) {
	data := genMbox(rand.New(rand.NewPCG(5, 6)), 10, false)
	all := scanAll(data, 0, 1<<20)
	stop := errors.New("stop")
	n := 0
	next, _, err := ScanMbox(bytes.NewReader(data), "t.mbox", 0, int64(len(data)), func(e MboxEntry) error {
		n++
		if n == 4 {
			return stop
		}
		return nil
	})
	if err != stop || next != all.offsets[3] {
		t.Errorf("next %d err %v; want %d, stop", next, err, all.offsets[3])
	}
	// The last entry failing.
	next, _, err = ScanMbox(bytes.NewReader(data), "t.mbox", 0, int64(len(data)), func(e MboxEntry) error {
		if e.Offset == all.offsets[len(all.offsets)-1] {
			return stop
		}
		return nil
	})
	if err != stop || next != all.offsets[len(all.offsets)-1] {
		t.Errorf("last: next %d err %v", next, err)
	}
}

// trackingReader records how far into the file reads have gone.
type trackingReader struct {
	r       io.ReaderAt
	mu      sync.Mutex
	readEnd int64
	biggest int
}

func (t *trackingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := t.r.ReadAt(p, off)
	t.mu.Lock()
	t.readEnd = max(t.readEnd, off+int64(n))
	t.biggest = max(t.biggest, len(p))
	t.mu.Unlock()
	return n, err
}

// TestScanMboxStreams checks that ScanMbox does not read ahead of the
// message it delivers by more than a chunk plus one line.
func TestScanMboxStreams(t *testing.T) {
	data := genMbox(rand.New(rand.NewPCG(7, 8)), 200, false)
	tr := &trackingReader{r: bytes.NewReader(data)}
	const chunk = 64
	maxLine := 0
	for _, l := range bytes.Split(data, []byte("\n")) {
		maxLine = max(maxLine, len(l)+1)
	}
	_, _, err := scanMbox(tr, "t.mbox", 0, int64(len(data)), chunk, func(e MboxEntry) error {
		ahead := tr.readEnd - (e.Offset + e.Length)
		if ahead > int64(chunk+2*maxLine) {
			return fmt.Errorf("entry at %d: read %d bytes beyond it", e.Offset, ahead)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr.biggest > chunk {
		t.Errorf("a single read asked for %d bytes, chunk is %d", tr.biggest, chunk)
	}
}
