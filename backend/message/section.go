package message

import (
	"bytes"

	"github.com/emersion/go-imap/v2"
)

// BodySection returns FETCH BODY[section]<partial> of a served message
// (RFC 3501 6.4.5), walking the same MIME tree as BodyStructure, so part
// numbers and sizes agree with the BODYSTRUCTURE sent for msg even when the
// MIME is broken. It returns nil for a part that does not exist.
//
// HEADER, HEADER.FIELDS and HEADER.FIELDS.NOT include the empty line that
// ends the header; fields keep their original folding and order. A part
// number on a non-multipart entity: 1 is its body. MIME is the part's own
// header; HEADER and TEXT after a part number need a message/rfc822 part.
func BodySection(msg []byte, item *imap.FetchItemBodySection) (out []byte) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	if item == nil {
		return extractPartial(msg, nil)
	}
	root := parseMessage(msg)
	cur := root
	isMsg := true // cur is a message, not (yet) one of its parts
	for _, n := range item.Part {
		if !isMsg && cur.inner != nil {
			cur, isMsg = cur.inner, true
		}
		switch {
		case cur.children != nil && n >= 1 && n <= len(cur.children):
			cur, isMsg = cur.children[n-1], false
		case cur.children == nil && isMsg && n == 1:
			// Part 1 of a non-multipart message is its body.
			isMsg = false
		default:
			return nil
		}
	}
	msgPart := root
	if len(item.Part) > 0 {
		msgPart = cur.inner
	}

	var b []byte
	switch item.Specifier {
	case imap.PartSpecifierNone:
		if len(item.Part) == 0 {
			b = msg
		} else {
			b = cur.body
		}
	case imap.PartSpecifierMIME:
		if len(item.Part) == 0 {
			return nil
		}
		b = headerBlock(cur.header, nil, nil)
	case imap.PartSpecifierHeader:
		if msgPart == nil {
			return nil
		}
		b = headerBlock(msgPart.header, item.HeaderFields, item.HeaderFieldsNot)
	case imap.PartSpecifierText:
		if msgPart == nil {
			return nil
		}
		b = msgPart.body
	default:
		return nil
	}
	if b == nil {
		b = []byte{}
	}
	return extractPartial(b, item.Partial)
}

// headerBlock returns a header with its ending empty line, keeping only
// the fields named in only (if any) and dropping those named in not.
func headerBlock(h []byte, only, not []string) []byte {
	eol := []byte("\r\n")
	if len(h) > 0 && !bytes.Contains(h, []byte("\r\n")) && bytes.IndexByte(h, '\n') >= 0 {
		eol = []byte("\n")
	}
	if len(only) == 0 && len(not) == 0 {
		out := make([]byte, 0, len(h)+4)
		out = append(out, h...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, eol...)
		}
		return append(out, eol...)
	}
	var out []byte
	forEachRawField(h, func(name, raw []byte) {
		keep := len(only) == 0
		if name != nil {
			for _, f := range only {
				if equalFoldASCII(name, f) {
					keep = true
				}
			}
			for _, f := range not {
				if equalFoldASCII(name, f) {
					keep = false
				}
			}
		} else if len(only) > 0 {
			keep = false
		}
		if keep {
			out = append(out, raw...)
			if raw[len(raw)-1] != '\n' {
				out = append(out, eol...)
			}
		}
	})
	return append(out, eol...)
}

// forEachRawField calls fn with each field's name (nil for a line that is
// not a field) and its raw bytes including continuation lines and line
// ends, up to the end of the header.
func forEachRawField(h []byte, fn func(name, raw []byte)) {
	start := -1
	var name []byte
	pos := 0
	for pos < len(h) {
		next := len(h)
		if nl := bytes.IndexByte(h[pos:], '\n'); nl >= 0 {
			next = pos + nl + 1
		}
		line := bytes.TrimRight(h[pos:next], "\r\n")
		if len(line) == 0 {
			break
		}
		if isWSP(line[0]) && start >= 0 {
			pos = next
			continue
		}
		if start >= 0 {
			fn(name, h[start:pos])
		}
		start, name = pos, nil
		if colon := bytes.IndexByte(line, ':'); colon >= 0 && validFieldName(trimRightWSP(line[:colon])) {
			name = trimRightWSP(line[:colon])
		}
		pos = next
	}
	if start >= 0 {
		fn(name, h[start:pos])
	}
}

func extractPartial(b []byte, partial *imap.SectionPartial) []byte {
	if partial == nil {
		return b
	}
	if partial.Offset < 0 || partial.Offset > int64(len(b)) {
		return []byte{}
	}
	end := int64(len(b))
	if partial.Size >= 0 && partial.Offset+partial.Size < end {
		end = partial.Offset + partial.Size
	}
	return b[partial.Offset:end]
}
