package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// FP is a message fingerprint: a SHA-256 truncated to 16 bytes.
type FP [16]byte

// String returns f in lower-case hex.
func (f FP) String() string { return hex.EncodeToString(f[:]) }

// IsZero reports whether f is the zero value (no fingerprint).
func (f FP) IsZero() bool { return f == FP{} }

// ignoredFields are header fields that local clients add or rewrite; they
// do not take part in ContentFP. Lower case.
var ignoredFields = map[string]bool{
	"x-mozilla-status":  true,
	"x-mozilla-status2": true,
	"x-mozilla-keys":    true,
	"status":            true,
	"x-status":          true,
	"x-uidl":            true,
	"x-account-key":     true,
	"content-length":    true,
	"lines":             true,
}

// fpWriter buffers normalised output in front of a hash so that the hash
// sees large writes.
type fpWriter struct {
	h   hash.Hash
	buf []byte
}

func (w *fpWriter) write(b []byte) {
	if len(w.buf)+len(b) > cap(w.buf) {
		w.h.Write(w.buf)
		w.buf = w.buf[:0]
		if len(b) > cap(w.buf) {
			w.h.Write(b)
			return
		}
	}
	w.buf = append(w.buf, b...)
}

func (w *fpWriter) writeByte(c byte) {
	if len(w.buf) == cap(w.buf) {
		w.h.Write(w.buf)
		w.buf = w.buf[:0]
	}
	w.buf = append(w.buf, c)
}

func (w *fpWriter) sum() (fp FP) {
	w.h.Write(w.buf)
	w.buf = w.buf[:0]
	var s [sha256.Size]byte
	copy(fp[:], w.h.Sum(s[:0]))
	return fp
}

// trimLineEnd removes trailing spaces, tabs and carriage returns.
func trimLineEnd(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\r':
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

// ContentFP is the whole-message fingerprint used for dedup. It is the same
// for the same message across LF vs CRLF line ends, header folding and white
// space runs in field values, field name case, client-added fields
// (X-Mozilla-Status, X-Mozilla-Status2, X-Mozilla-Keys, Status, X-Status,
// X-UIDL, X-Account-Key, Content-Length, Lines), trailing white space at line
// ends, trailing empty lines at the end of the body, a leading mbox "From "
// separator line, and mbox ">From " quoting of body lines. Field order is
// otherwise kept and body bytes are otherwise exact.
//
// The header ends at the first line that is empty once trailing white space
// is removed. One pass over msg, streaming into the hash.
func ContentFP(msg []byte) (fp FP) {
	defer func() {
		if recover() != nil {
			fp = FP(sha256Trunc(msg))
		}
	}()
	var stack [16 << 10]byte
	var fieldBuf [512]byte
	h := contentHasher{w: fpWriter{h: sha256.New(), buf: stack[:0]}, field: fieldBuf[:0]}
	pos := 0
	for pos < len(msg) {
		end, next := len(msg), len(msg)
		if nl := bytes.IndexByte(msg[pos:], '\n'); nl >= 0 {
			end, next = pos+nl, pos+nl+1
		}
		h.line(msg[pos:end])
		pos = next
	}
	return h.sum()
}

// ContentHasher computes ContentFP of a message written to it in pieces,
// holding one line at a time (verify -content streams server bodies
// through it). The zero value is not usable: use NewContentHasher.
type ContentHasher struct {
	h       contentHasher
	partial []byte // the current line, not yet ended by '\n'
}

// NewContentHasher returns a hasher for one message.
func NewContentHasher() *ContentHasher {
	return &ContentHasher{h: contentHasher{w: fpWriter{h: sha256.New(), buf: make([]byte, 0, 16<<10)}}}
}

// Write adds message bytes; it never fails.
func (c *ContentHasher) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		nl := bytes.IndexByte(p, '\n')
		if nl < 0 {
			c.partial = append(c.partial, p...)
			break
		}
		if len(c.partial) > 0 {
			c.partial = append(c.partial, p[:nl]...)
			c.h.line(c.partial)
			c.partial = c.partial[:0]
		} else {
			c.h.line(p[:nl])
		}
		p = p[nl+1:]
	}
	return n, nil
}

// Sum returns the fingerprint of everything written.
func (c *ContentHasher) Sum() FP {
	if len(c.partial) > 0 {
		c.h.line(c.partial)
		c.partial = nil
	}
	return c.h.sum()
}

// contentHasher is ContentFP's line-by-line state.
type contentHasher struct {
	w         fpWriter
	lines     int    // lines seen
	inBody    bool   // past the header
	field     []byte // current header field, normalised: "name:value"
	haveField bool
	skipField bool
	valStart  int // index in field where the value starts
	empty     int // empty body lines not yet written (dropped at the end)
}

func (h *contentHasher) flush() {
	if h.haveField && !h.skipField {
		h.w.write(h.field)
		h.w.writeByte('\n')
	}
	h.haveField = false
	h.skipField = false
	h.field = h.field[:0]
}

// line takes one line without its '\n'.
func (h *contentHasher) line(raw []byte) {
	h.lines++
	if h.lines == 1 && bytes.HasPrefix(raw, []byte("From ")) {
		// An mbox "From " separator line left in front is framing.
		// (As a line: what follows "From " and blanks is the line end or
		// an address, never a header colon.)
		rest := bytes.TrimLeft(raw[5:], " \t")
		if len(rest) == 0 || rest[0] != ':' {
			return
		}
	}
	line := trimLineEnd(raw)
	if !h.inBody {
		if len(line) == 0 {
			h.flush()
			h.w.writeByte('\n')
			h.inBody = true
			return
		}
		if isWSP(line[0]) && h.haveField {
			if !h.skipField {
				if len(h.field) > h.valStart {
					// The fold is white space between the two pieces.
					h.field = append(h.field, ' ')
				}
				h.field = trimRightWSP(appendCollapsed(h.field, line))
			}
			return
		}
		h.flush()
		h.haveField = true
		colon := bytes.IndexByte(line, ':')
		name := []byte(nil)
		if colon >= 0 {
			name = trimRightWSP(line[:colon])
		}
		if colon < 0 || !validFieldName(name) {
			// Not a field: keep it, normalised, as a line of its own.
			h.valStart = 0
			h.field = appendCollapsed(h.field, line)
			return
		}
		for _, c := range name {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			h.field = append(h.field, c)
		}
		if ignoredFields[string(h.field)] {
			h.skipField = true
			return
		}
		h.field = append(h.field, ':')
		h.valStart = len(h.field)
		h.field = appendCollapsed(h.field, line[colon+1:])
		return
	}
	if len(line) == 0 {
		h.empty++
		return
	}
	for ; h.empty > 0; h.empty-- {
		h.w.writeByte('\n')
	}
	if line[0] == '>' {
		line = unquoteFrom(line)
	}
	h.w.write(line)
	h.w.writeByte('\n')
}

func (h *contentHasher) sum() FP {
	if !h.inBody {
		h.flush()
		h.w.writeByte('\n')
		h.inBody = true
	}
	return h.w.sum()
}

// unquoteFrom undoes mbox quoting: ">From ", ">>From " ... become "From ".
func unquoteFrom(line []byte) []byte {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	if bytes.HasPrefix(line[i:], []byte("From ")) {
		return line[i:]
	}
	return line
}

func sha256Trunc(b []byte) (out [16]byte) {
	s := sha256.Sum256(b)
	copy(out[:], s[:16])
	return out
}

// HeaderFPFields is the list of header fields HeaderFP uses, for upstream
// IMAP servers: the bridge fetches BODY.PEEK[HEADER.FIELDS (<these>)] and
// calls HeaderFP on the result.
var HeaderFPFields = []string{"Message-ID", "Date", "From", "To", "Cc", "Subject", "In-Reply-To"}

// HeaderFP hashes the HeaderFPFields of a header: for each, in list order,
// the lower-case name and the value of its first occurrence, unfolded,
// white-space collapsed and trimmed (empty if absent). It gives the same
// result for a whole message, its header block, or the HEADER.FIELDS subset
// an IMAP server returns (any folding, trailing empty line, LF or CRLF).
func HeaderFP(header []byte) (fp FP) {
	defer func() {
		if recover() != nil {
			fp = FP{}
		}
	}()
	vals := make([][]byte, len(HeaderFPFields))
	found := make([]bool, len(HeaderFPFields))
	forEachField(header, func(name, value []byte) bool {
		if name == nil {
			return true
		}
		for i, f := range HeaderFPFields {
			if !found[i] && equalFoldASCII(name, f) {
				found[i] = true
				vals[i] = value
			}
		}
		return true
	})
	var buf []byte
	for i, f := range HeaderFPFields {
		for j := 0; j < len(f); j++ {
			c := f[j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf = append(buf, c)
		}
		buf = append(buf, ':')
		buf = appendCollapsed(buf, vals[i])
		buf = append(buf, '\n')
	}
	return FP(sha256Trunc(buf))
}
