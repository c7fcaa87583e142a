package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"regexp"
	"strconv"
)

// respFilter sits between the connection (after TLS) and imapclient and
// mends the few responses real servers send that go-imap's client cannot
// parse (it drops the connection on them, so a feature that is optional
// would take every command on that connection with it):
//
//   - `* QUOTA "ROOT"` with no resource list (Courier-IMAP for an account
//     without a quota; RFC 9208 wants a list) becomes `* QUOTA "ROOT" ()`,
//     which reads as "no limits".
//
// It follows literals ({n} at a line end), so message bytes are passed on
// untouched; a line longer than its buffer is passed on as it is.
type respFilter struct {
	net.Conn
	br      *bufio.Reader
	out     []byte // ready for the reader
	litLeft int64  // bytes of a literal still to pass through
	midLine bool   // inside a line too long to inspect
	fixes   int    // responses mended (tests, logs)
	// onFix, if set, is told of each mended response (the pool logs the
	// first one).
	onFix func(what string)
}

func newRespFilter(c net.Conn, prefix []byte) *respFilter {
	return &respFilter{Conn: c, br: bufio.NewReaderSize(c, 64<<10), out: prefix}
}

var (
	bareQuota  = regexp.MustCompile(`^\* QUOTA ("(?:[^"\\]|\\.)*"|[^ \r\n()]+)[ \t]*\r?\n$`)
	literalEnd = regexp.MustCompile(`\{(\d+)\+?\}\r?\n$`)
)

func (f *respFilter) Read(p []byte) (int, error) {
	for len(f.out) == 0 {
		if f.litLeft > 0 {
			n := int64(len(p))
			if n > f.litLeft {
				n = f.litLeft
			}
			m, err := f.br.Read(p[:n])
			f.litLeft -= int64(m)
			return m, err
		}
		line, err := f.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			f.midLine = true
			f.out = append(f.out[:0], line...)
			break
		}
		if len(line) == 0 && err != nil {
			return 0, err
		}
		whole := !f.midLine
		f.midLine = false
		if whole && bareQuota.Match(line) {
			fixed := bytes.TrimRight(line, " \t\r\n")
			line = append(fixed[:len(fixed):len(fixed)], " ()\r\n"...)
			f.fixes++
			if f.onFix != nil {
				f.onFix(`a QUOTA answer without a resource list (taken as "no limits")`)
			}
		}
		if m := literalEnd.FindSubmatch(line); m != nil {
			if n, perr := strconv.ParseInt(string(m[1]), 10, 64); perr == nil {
				f.litLeft = n
			}
		}
		f.out = append(f.out[:0], line...)
		if err != nil && len(f.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	return n, nil
}
