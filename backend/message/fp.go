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
	w := &fpWriter{h: sha256.New(), buf: stack[:0]}
	var field []byte // current header field, normalised: "name:value"
	var fieldBuf [512]byte
	field = fieldBuf[:0]
	haveField := false
	skipField := false
	valStart := 0 // index in field where the value starts
	flush := func() {
		if haveField && !skipField {
			w.write(field)
			w.writeByte('\n')
		}
		haveField = false
		skipField = false
		field = field[:0]
	}

	pos := 0
	// An mbox "From " separator line left in front is framing, not content.
	if bytes.HasPrefix(msg, []byte("From ")) {
		rest := bytes.TrimLeft(msg[5:], " \t")
		if len(rest) > 0 && rest[0] != ':' {
			pos = len(msg)
			if nl := bytes.IndexByte(msg, '\n'); nl >= 0 {
				pos = nl + 1
			}
		}
	}
	// Header.
	for pos < len(msg) {
		end, next := len(msg), len(msg)
		if nl := bytes.IndexByte(msg[pos:], '\n'); nl >= 0 {
			end, next = pos+nl, pos+nl+1
		}
		line := trimLineEnd(msg[pos:end])
		pos = next
		if len(line) == 0 {
			break
		}
		if isWSP(line[0]) && haveField {
			if !skipField {
				if len(field) > valStart {
					// The fold is white space between the two pieces.
					field = append(field, ' ')
				}
				field = trimRightWSP(appendCollapsed(field, line))
			}
			continue
		}
		flush()
		haveField = true
		colon := bytes.IndexByte(line, ':')
		name := []byte(nil)
		if colon >= 0 {
			name = trimRightWSP(line[:colon])
		}
		if colon < 0 || !validFieldName(name) {
			// Not a field: keep it, normalised, as a line of its own.
			valStart = 0
			field = appendCollapsed(field, line)
			continue
		}
		for _, c := range name {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			field = append(field, c)
		}
		if ignoredFields[string(field)] {
			skipField = true
			continue
		}
		field = append(field, ':')
		valStart = len(field)
		field = appendCollapsed(field, line[colon+1:])
	}
	flush()
	w.writeByte('\n')

	// Body.
	empty := 0
	for pos < len(msg) {
		end, next := len(msg), len(msg)
		if nl := bytes.IndexByte(msg[pos:], '\n'); nl >= 0 {
			end, next = pos+nl, pos+nl+1
		}
		line := trimLineEnd(msg[pos:end])
		pos = next
		if len(line) == 0 {
			empty++
			continue
		}
		for ; empty > 0; empty-- {
			w.writeByte('\n')
		}
		if line[0] == '>' {
			line = unquoteFrom(line)
		}
		w.write(line)
		w.writeByte('\n')
	}
	return w.sum()
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
