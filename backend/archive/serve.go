package archive

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
)

// ServeMbox converts one raw mbox entry (its "From " line included) into the
// bytes served to IMAP clients: the "From " line is removed; a line matching
// ^>+From␠ loses one '>' (mboxrd unquoting); Thunderbird's bookkeeping header
// fields X-Mozilla-Status, X-Mozilla-Status2 and X-Mozilla-Keys (with their
// folded continuation lines) are removed from the header block; every line
// ending becomes CRLF (LF and CRLF are both accepted, a lone CR is left
// alone); the one trailing empty line that separates mbox messages is
// removed. Everything else is kept byte for byte; a last line without a line
// ending (a truncated file) stays without one. If there is no empty line
// ending the header block, the whole message is treated as header.
//
// The result is never longer than 2*len(raw). It takes one allocation for
// typical mail (a second one only if most lines are shorter than 16 bytes);
// AppendServedMbox into a reused buffer takes none.
func ServeMbox(raw []byte) []byte { return AppendServedMbox(nil, raw) }

// ServeFile is ServeMbox for a Maildir or .eml file: no "From " line, no
// unquoting, no trailing separator line; Thunderbird headers are removed and
// line endings become CRLF.
func ServeFile(raw []byte) []byte { return AppendServedFile(nil, raw) }

// AppendServedMbox appends ServeMbox(raw) to dst and returns the result.
func AppendServedMbox(dst, raw []byte) []byte {
	if len(raw) >= 5 && string(raw[:5]) == "From " {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return dst
		}
		raw = raw[i+1:]
	}
	raw = trimSeparatorLine(raw)
	return appendServed(dst, raw, true)
}

// AppendServedFile appends ServeFile(raw) to dst and returns the result.
func AppendServedFile(dst, raw []byte) []byte {
	return appendServed(dst, raw, false)
}

// trimSeparatorLine removes one trailing empty line ("\n" or "\r\n" that
// starts a line) from raw.
func trimSeparatorLine(raw []byte) []byte {
	n := len(raw)
	if n == 0 || raw[n-1] != '\n' {
		return raw
	}
	p := n - 1
	if p > 0 && raw[p-1] == '\r' {
		p--
	}
	if p == 0 || raw[p-1] == '\n' {
		return raw[:p]
	}
	return raw
}

// appendServed does the single pass shared by the Serve functions: header
// lines one by one (dropping Thunderbird fields), then the body in bulk
// copies interrupted only where a CR has to be inserted or a '>' dropped.
func appendServed(dst, raw []byte, unquote bool) []byte {
	// One allocation for typical mail (lines of 16 bytes or more); the body
	// copy grows dst if lines are shorter.
	dst = slices.Grow(dst, len(raw)+len(raw)/16+16)

	pos := 0
	// Header block.
	skipping := false // inside a removed field's continuation lines
	for pos < len(raw) {
		e := bytes.IndexByte(raw[pos:], '\n')
		if e < 0 {
			// Unterminated last line: the message is all header.
			line := raw[pos:]
			if skipping && (line[0] == ' ' || line[0] == '\t') || isMozillaField(line) {
				return dst
			}
			if unquote && line[0] == '>' && isQuotedFrom(line) {
				line = line[1:]
			}
			return append(dst, line...)
		}
		end := pos + e // index of '\n'
		line := raw[pos:end]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			// End of the header block.
			dst = append(dst, '\r', '\n')
			pos = end + 1
			break
		}
		if skipping && (line[0] == ' ' || line[0] == '\t') {
			pos = end + 1
			continue
		}
		skipping = false
		if isMozillaField(line) {
			skipping = true
			pos = end + 1
			continue
		}
		if unquote && line[0] == '>' && isQuotedFrom(line) {
			line = line[1:]
		}
		dst = append(dst, line...)
		dst = append(dst, '\r', '\n')
		pos = end + 1
	}

	return appendBody(dst, raw, pos, unquote)
}

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
	swarLF   = '\n' * swarOnes
)

// appendBody copies raw[pos:] (pos at a line start) to dst, inserting a CR
// before every LF that lacks one and, if unquote, dropping one '>' from lines
// matching ^>+From␠. It moves 8 bytes at a time, finding the LF in a word
// with SWAR bit tricks. dst must have room for len(raw)-pos plus one byte per
// LF.
func appendBody(dst, raw []byte, pos int, unquote bool) []byte {
	n := len(raw)
	w := len(dst)
	out := dst[:cap(dst)]
	i := pos
	if unquote && i < n && raw[i] == '>' && isQuotedFrom(raw[i:]) {
		i++
	}
	for {
		for i+8 <= n && w+9 <= len(out) {
			x := binary.LittleEndian.Uint64(raw[i:])
			binary.LittleEndian.PutUint64(out[w:], x)
			y := x ^ swarLF
			m := (y - swarOnes) &^ y & swarHigh
			if m == 0 {
				w += 8
				i += 8
				continue
			}
			// The lowest flagged byte is the first LF (borrows only flag
			// bytes above a real match).
			k := bits.TrailingZeros64(m) >> 3
			w += k
			i += k
			if i == 0 || raw[i-1] != '\r' {
				out[w] = '\r'
				w++
			}
			out[w] = '\n'
			w++
			i++
			if unquote && i < n && raw[i] == '>' && isQuotedFrom(raw[i:]) {
				i++
			}
		}
		if i+8 > n {
			break
		}
		out = growBody(out, w, n-i)
	}
	for i < n {
		if w+2 > len(out) {
			out = growBody(out, w, n-i)
		}
		c := raw[i]
		i++
		if c == '\n' {
			if i == 1 || raw[i-2] != '\r' {
				out[w] = '\r'
				w++
			}
			out[w] = '\n'
			w++
			if unquote && i < n && raw[i] == '>' && isQuotedFrom(raw[i:]) {
				i++
			}
			continue
		}
		out[w] = c
		w++
	}
	return out[:w]
}

// growBody returns out (of which w bytes are used) with room for the worst
// case of the rest: left more bytes, each possibly an LF needing a CR.
func growBody(out []byte, w, left int) []byte {
	out = slices.Grow(out[:w], 2*left+9)
	return out[:cap(out)]
}

var nl = []byte{'\n'}

// isQuotedFrom reports whether b starts with ^>+From␠.
func isQuotedFrom(b []byte) bool {
	i := 0
	for i < len(b) && b[i] == '>' {
		i++
	}
	return i > 0 && len(b)-i >= 5 && string(b[i:i+5]) == "From "
}

// isMozillaField reports whether line starts a header field named
// X-Mozilla-Status, X-Mozilla-Status2 or X-Mozilla-Keys (case-insensitive,
// optional white space before the colon).
func isMozillaField(line []byte) bool {
	const prefix = "x-mozilla-"
	if len(line) < len(prefix)+5 || line[0]|0x20 != 'x' {
		return false
	}
	for i := 1; i < len(prefix); i++ {
		c := line[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	name, ok := fieldName(line)
	if !ok {
		return false
	}
	rest := name[len(prefix):]
	return bytes.EqualFold(rest, []byte("status")) || bytes.EqualFold(rest, []byte("status2")) || bytes.EqualFold(rest, []byte("keys"))
}

// fieldName returns the header field name at the start of line if line
// looks like "Name:" or "Name :" (RFC 5322 ftext, obsolete white space
// before the colon allowed).
func fieldName(line []byte) ([]byte, bool) {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return nil, false
	}
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if j >= len(line) || line[j] != ':' {
		return nil, false
	}
	return line[:i], true
}
