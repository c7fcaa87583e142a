package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// MboxEntry is one message found by ScanMbox.
type MboxEntry struct {
	Offset   int64     // offset of the "From " separator line
	Length   int64     // raw length up to the next separator (or the scan end)
	FromDate time.Time // date from the "From " line; zero if unparseable
	// Raw holds the file bytes [Offset, Offset+Length). It is valid only
	// during the callback; copy what must be kept.
	Raw []byte
}

// defaultScanChunk is how much ScanMbox reads at a time.
const defaultScanChunk = 1 << 20

// ScanMbox streams the mbox behind r from offset start (0, or the offset of
// a separator found by an earlier scan) up to end (the file size at scan
// time), calling fn for each message in file order. It holds a bounded read
// buffer plus the current message, never the whole file.
//
// Leading bytes at offset 0 that are not a separator are skipped and
// reported as one Problem; a file with no separator at all yields that one
// Problem and no entries. A last message that ends in the middle of a line
// (a truncated file) is still passed to fn, and reported as a Problem.
//
// next is where scanning ended: end normally; the offset of the entry fn
// failed on (with fn's error returned as is); or the offset of the message
// being read when reading failed. If start is not at a separator, err wraps
// ErrNotAtSeparator.
func ScanMbox(r io.ReaderAt, path string, start, end int64, fn func(MboxEntry) error) (next int64, problems []Problem, err error) {
	return scanMbox(r, path, start, end, defaultScanChunk, fn)
}

type mboxScanner struct {
	r     io.ReaderAt
	path  string
	end   int64
	chunk int
	buf   []byte // file bytes [base, base+len(buf))
	base  int64
	// readErr is set when reading failed; end is then where data stops.
	readErr error
}

// avail is the file offset just past the buffered bytes.
func (s *mboxScanner) avail() int64 { return s.base + int64(len(s.buf)) }

func (s *mboxScanner) eof() bool { return s.avail() >= s.end }

// fill reads the next chunk, first dropping buffered bytes before keep when
// that makes room. A failed or short read sets readErr and moves end to
// where the data stops.
func (s *mboxScanner) fill(keep int64) {
	want := s.end - s.avail()
	if want > int64(s.chunk) {
		want = int64(s.chunk)
	}
	if want <= 0 {
		return
	}
	if drop := int(keep - s.base); drop > 0 && (drop >= len(s.buf)/2 || cap(s.buf)-len(s.buf) < int(want)) {
		n := copy(s.buf, s.buf[drop:])
		s.buf = s.buf[:n]
		s.base = keep
	}
	if cap(s.buf)-len(s.buf) < int(want) {
		nb := make([]byte, len(s.buf), 2*cap(s.buf)+int(want))
		copy(nb, s.buf)
		s.buf = nb
	}
	off := s.avail()
	n, err := s.r.ReadAt(s.buf[len(s.buf):len(s.buf)+int(want)], off)
	s.buf = s.buf[:len(s.buf)+n]
	if n == int(want) {
		return
	}
	// Scan what was read; the message in progress is not delivered.
	if err == nil || errors.Is(err, io.EOF) {
		err = fmt.Errorf("file ends at offset %d, before its size %d when the scan started: %w", s.avail(), s.end, io.ErrUnexpectedEOF)
	}
	s.readErr = fmt.Errorf("mbox %q at offset %d: read: %w", s.path, s.avail(), err)
	s.end = s.avail()
}

// at returns the buffered bytes from file offset off on.
func (s *mboxScanner) at(off int64) []byte { return s.buf[off-s.base:] }

var fromSep = []byte("\nFrom ")

func scanMbox(r io.ReaderAt, path string, start, end int64, chunk int, fn func(MboxEntry) error) (int64, []Problem, error) {
	var problems []Problem
	if start < 0 || start > end {
		return start, nil, fmt.Errorf("mbox %q at offset %d: start outside the file (size %d)", path, start, end)
	}
	if start == end {
		return end, nil, nil
	}
	if fn == nil {
		fn = func(MboxEntry) error { return nil }
	}
	if chunk <= 0 {
		chunk = defaultScanChunk
	}
	s := &mboxScanner{r: r, path: path, end: end, chunk: chunk, base: start}

	junk := false // the bytes from msgStart on are not a message
	if start > 0 {
		var b [6]byte
		n, err := r.ReadAt(b[:], start-1)
		if n < 6 && start+5 <= end {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return start, nil, fmt.Errorf("mbox %q at offset %d: read: %w", path, start-1, err)
		}
		if n < 6 || b[0] != '\n' || string(b[1:6]) != "From " {
			return start, nil, fmt.Errorf("mbox %q at offset %d: %w", path, start, ErrNotAtSeparator)
		}
	} else {
		for len(s.buf) < 5 && !s.eof() {
			s.fill(0)
		}
		junk = !bytes.HasPrefix(s.buf, []byte("From "))
	}

	msgStart := start
	searchFrom := start // the "\nFrom " search resumes here
	emit := func(stop int64) error {
		if junk {
			problems = append(problems, problem(path, 0, "%d bytes before the first \"From \" line skipped (not an mbox message)", stop))
			junk = false
			return nil
		}
		raw := s.at(msgStart)[:stop-msgStart]
		raw = raw[:len(raw):len(raw)]
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line = raw[:i]
		}
		return fn(MboxEntry{Offset: msgStart, Length: stop - msgStart, FromDate: FromLineDate(line), Raw: raw})
	}
	finish := func() (int64, []Problem, error) {
		if s.readErr != nil {
			return msgStart, problems, s.readErr
		}
		if junk {
			problems = append(problems, problem(path, 0, "not an mbox file: no \"From \" separator line found"))
			return end, problems, nil
		}
		if b := s.at(msgStart); len(b) > 0 && b[len(b)-1] != '\n' {
			problems = append(problems, problem(path, msgStart, "last message ends in the middle of a line (truncated file?)"))
		}
		if err := emit(end); err != nil {
			return msgStart, problems, err
		}
		return end, problems, nil
	}
	for {
		if s.avail() == searchFrom && !s.eof() {
			keep := msgStart
			if junk {
				keep = searchFrom
			}
			s.fill(keep)
		}
		idx := bytes.Index(s.at(searchFrom), fromSep)
		if idx < 0 {
			if s.eof() {
				return finish()
			}
			if t := s.avail() - int64(len(fromSep)-1); t > searchFrom {
				searchFrom = t
			}
			keep := msgStart
			if junk {
				keep = searchFrom
			}
			s.fill(keep)
			continue
		}
		cand := searchFrom + int64(idx) + 1
		b := s.at(cand)
		le := bytes.IndexByte(b, '\n')
		var line, next []byte
		complete := true
		if le < 0 {
			complete = s.eof() // the From line is the file's last line: no next line
			line = b
		} else {
			line = b[:le]
			rest := b[le+1:]
			ne := bytes.IndexByte(rest, '\n')
			switch {
			case ne >= 0:
				next = rest[:ne]
			case s.eof():
				next = rest
			default:
				complete = false
			}
		}
		if !complete {
			keep := msgStart
			if junk {
				keep = cand - 1
			}
			s.fill(keep)
			searchFrom = cand - 1
			continue
		}
		if IsSeparator(trimCR(line), trimCR(next)) {
			if err := emit(cand); err != nil {
				return msgStart, problems, err
			}
			msgStart = cand
		}
		if le < 0 {
			return finish()
		}
		searchFrom = cand + int64(le)
	}
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

// IsSeparator reports whether line (without its line ending), followed by
// next (the following line), is an mbox message separator: line starts with
// "From " and next looks like a header field ("Name:" with a valid field
// name). Old Thunderbird files have unescaped "From " lines in bodies; those
// are not followed by a header. (ScanMbox also accepts a "From " line at
// offset 0 of a file whatever follows it.)
func IsSeparator(line, next []byte) bool {
	if len(line) < 5 || string(line[:5]) != "From " {
		return false
	}
	_, ok := fieldName(next)
	return ok
}

// FromLineDate returns the date of an mbox "From " line (with or without the
// "From " prefix and line ending), or the zero time if it has none that
// parses. Accepted: asctime "Mon Jan  2 15:04:05 2006" (weekday optional,
// day padded or not, seconds optional), with a zone before or after the year
// ("-0700", "+0900", "UTC", "GMT", US zones, "JST"), and the RFC 5322 order
// "Mon, 2 Jan 2006 15:04:05 -0700". Without a zone the time is taken as UTC.
func FromLineDate(line []byte) time.Time {
	line = bytes.TrimPrefix(trimCR(bytes.TrimSuffix(line, nl)), []byte("From "))
	f := bytes.Fields(line)
	if len(f) > 16 {
		f = f[:16]
	}
	for i := range f {
		// asctime: Mon DD HH:MM[:SS] [zone] YYYY [zone]
		if i+3 < len(f) {
			if mon, ok := parseMonth(f[i]); ok {
				if day, ok := parseNum(f[i+1], 1, 2); ok {
					if h, m, sec, ok := parseClock(f[i+2]); ok {
						if t, ok := finishDate(f[i+3:], -1, mon, day, h, m, sec); ok {
							return t
						}
					}
				}
			}
		}
		// RFC 5322: DD Mon YYYY HH:MM[:SS] [zone]
		if i+3 < len(f) {
			if day, ok := parseNum(bytes.TrimSuffix(f[i], []byte(",")), 1, 2); ok {
				if mon, ok := parseMonth(f[i+1]); ok {
					if year, ok := parseYear(f[i+2]); ok {
						if h, m, sec, ok := parseClock(f[i+3]); ok {
							if t, ok := finishDate(f[i+4:], year, mon, day, h, m, sec); ok {
								return t
							}
						}
					}
				}
			}
		}
	}
	return time.Time{}
}

// finishDate reads the year (unless known) and an optional zone from rest.
func finishDate(rest [][]byte, year int, mon time.Month, day, h, m, sec int) (time.Time, bool) {
	loc := time.UTC
	for k := 0; k < len(rest) && k < 3; k++ {
		tok := rest[k]
		if y, ok := parseYear(tok); ok && year < 0 {
			year = y
			continue
		}
		if z, ok := parseZone(tok); ok {
			loc = z
			continue
		}
		break
	}
	if year < 0 {
		return time.Time{}, false
	}
	t := time.Date(year, mon, day, h, m, sec, 0, loc)
	if t.Day() != day || t.Month() != mon {
		return time.Time{}, false // Feb 30 and the like
	}
	return t, true
}

var months = [...]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

func parseMonth(b []byte) (time.Month, bool) {
	if len(b) < 3 {
		return 0, false
	}
	for i, m := range months {
		if bytes.EqualFold(b[:3], []byte(m)) {
			// Allow full names ("January") but not arbitrary words.
			full := time.Month(i + 1).String()
			if len(b) == 3 || bytes.EqualFold(b, []byte(full)) {
				return time.Month(i + 1), true
			}
		}
	}
	return 0, false
}

// parseNum parses 1..maxDigits ASCII digits.
func parseNum(b []byte, minDigits, maxDigits int) (int, bool) {
	if len(b) < minDigits || len(b) > maxDigits {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func parseYear(b []byte) (int, bool) {
	if y, ok := parseNum(b, 4, 4); ok {
		return y, true
	}
	if y, ok := parseNum(b, 2, 2); ok {
		if y < 50 {
			return 2000 + y, true
		}
		return 1900 + y, true
	}
	return 0, false
}

func parseClock(b []byte) (h, m, s int, ok bool) {
	parts := bytes.Split(b, []byte(":"))
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, false
	}
	var ok1, ok2, ok3 bool
	h, ok1 = parseNum(parts[0], 1, 2)
	m, ok2 = parseNum(parts[1], 2, 2)
	ok3 = true
	if len(parts) == 3 {
		s, ok3 = parseNum(parts[2], 2, 2)
	}
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 60 {
		return 0, 0, 0, false
	}
	if s == 60 {
		s = 59
	}
	return h, m, s, true
}

var zoneNames = map[string]int{
	"UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
	"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
	"JST": 9,
}

func parseZone(b []byte) (*time.Location, bool) {
	if len(b) == 5 && (b[0] == '+' || b[0] == '-') {
		hh, ok1 := parseNum(b[1:3], 2, 2)
		mm, ok2 := parseNum(b[3:5], 2, 2)
		if !ok1 || !ok2 || hh > 23 || mm > 59 {
			return nil, false
		}
		off := (hh*60 + mm) * 60
		if b[0] == '-' {
			off = -off
		}
		if off == 0 {
			return time.UTC, true
		}
		return time.FixedZone("", off), true
	}
	if h, ok := zoneNames[string(bytes.ToUpper(b))]; ok {
		if h == 0 {
			return time.UTC, true
		}
		return time.FixedZone("", h*3600), true
	}
	return nil, false
}
