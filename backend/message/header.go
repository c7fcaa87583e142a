package message

import (
	"bytes"
	"strings"
)

// SplitHeader splits msg at the first empty line (CRLF CRLF or LF LF). The
// header includes its final line ending; the body starts after the empty
// line. Without an empty line, header is the whole of msg and body is nil.
func SplitHeader(msg []byte) (header, body []byte) {
	pos := 0
	for pos < len(msg) {
		nl := bytes.IndexByte(msg[pos:], '\n')
		if nl < 0 {
			break
		}
		if nl == 0 || (nl == 1 && msg[pos] == '\r') {
			return msg[:pos], msg[pos+nl+1:]
		}
		pos += nl + 1
	}
	return msg, nil
}

// forEachField calls fn for each field of the header block h, in order,
// stopping at the first empty line or when fn returns false. name is the
// field name with trailing white space removed; value is everything after
// the colon up to the end of the field's last line, folding line breaks
// included (but not the final line ending). Lines that are not a field and
// not a continuation (no colon, or a name with spaces or controls) are
// reported with a nil name and the line as value.
func forEachField(h []byte, fn func(name, value []byte) bool) {
	var (
		name     []byte
		valStart int
		valEnd   int
		have     bool
	)
	flush := func() bool {
		if !have {
			return true
		}
		have = false
		return fn(name, h[valStart:valEnd])
	}
	pos := 0
	for pos < len(h) {
		end := len(h)
		next := len(h)
		if nl := bytes.IndexByte(h[pos:], '\n'); nl >= 0 {
			end = pos + nl
			next = end + 1
		}
		lineEnd := end
		if lineEnd > pos && h[lineEnd-1] == '\r' {
			lineEnd--
		}
		line := h[pos:lineEnd]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if have {
				valEnd = lineEnd
				pos = next
				continue
			}
			// A continuation without a field: garbage.
			if !fn(nil, line) {
				return
			}
			pos = next
			continue
		}
		if !flush() {
			return
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || !validFieldName(trimRightWSP(line[:colon])) {
			if !fn(nil, line) {
				return
			}
			pos = next
			continue
		}
		name = trimRightWSP(line[:colon])
		valStart = pos + colon + 1
		valEnd = lineEnd
		have = true
		pos = next
	}
	flush()
}

func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

func trimRightWSP(b []byte) []byte {
	for len(b) > 0 && isWSP(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// equalFoldASCII compares a field name with a lower- or mixed-case name.
func equalFoldASCII(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// unfold removes the line breaks of a folded value (keeping the white
// space that follows them) and trims surrounding white space.
func unfold(v []byte) string {
	if bytes.IndexByte(v, '\n') < 0 {
		return strings.TrimSpace(string(v))
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\n' {
			continue
		}
		if c == '\r' && i+1 < len(v) && v[i+1] == '\n' {
			continue
		}
		out = append(out, c)
	}
	return strings.TrimSpace(string(out))
}

// appendCollapsed appends v unfolded, with runs of white space (and line
// breaks) collapsed to one space and surrounding white space trimmed.
func appendCollapsed(dst, v []byte) []byte {
	space := false
	start := len(dst)
	for _, c := range v {
		switch c {
		case ' ', '\t', '\r', '\n':
			space = true
			continue
		}
		if space && len(dst) > start {
			dst = append(dst, ' ')
		}
		space = false
		dst = append(dst, c)
	}
	return dst
}

// rawField returns the raw value of the first field called name, and
// whether it is present.
func rawField(header []byte, name string) ([]byte, bool) {
	var (
		val   []byte
		found bool
	)
	forEachField(header, func(n, v []byte) bool {
		if n != nil && equalFoldASCII(n, name) {
			val, found = v, true
			return false
		}
		return true
	})
	return val, found
}

// HeaderValue returns the unfolded, trimmed raw value of the first field
// called name (case-insensitive), or "" if there is none. header may be a
// whole message: parsing stops at the first empty line.
func HeaderValue(header []byte, name string) (v string) {
	defer func() {
		if recover() != nil {
			v = ""
		}
	}()
	raw, ok := rawField(header, name)
	if !ok {
		return ""
	}
	return unfold(raw)
}

// MessageID returns the Message-ID without angle brackets and surrounding
// white space, or "" if absent or empty.
func MessageID(header []byte) string {
	return msgID(HeaderValue(header, "Message-ID"))
}

// msgID extracts the first <...> of v without the brackets; a value without
// brackets is returned trimmed, up to its first white space.
func msgID(v string) string {
	ids := msgIDList(v)
	if len(ids) > 0 {
		return ids[0]
	}
	v = strings.TrimSpace(stripComments(v))
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		v = v[:i]
	}
	return strings.Trim(v, "<>")
}

// msgIDList returns the contents of every <...> in v, in order, with white
// space inside the brackets removed.
func msgIDList(v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(v[i+1:], '>')
		if j < 0 {
			return ids
		}
		id := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, v[i+1:i+1+j])
		if id != "" {
			ids = append(ids, id)
		}
		v = v[i+1+j+1:]
	}
}

// stripComments removes RFC 5322 comments (nested parentheses), honouring
// quoted strings and backslash escapes.
func stripComments(s string) string {
	if strings.IndexByte(s, '(') < 0 {
		return s
	}
	var b strings.Builder
	depth := 0
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (inQuote || depth > 0) && i+1 < len(s):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case inQuote:
			if c == '"' {
				inQuote = false
			}
		case c == '"' && depth == 0:
			inQuote = true
		case c == '(':
			depth++
			continue
		case c == ')' && depth > 0:
			depth--
			if depth == 0 {
				b.WriteByte(' ')
			}
			continue
		}
		if depth == 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}
