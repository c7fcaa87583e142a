package message

import (
	"bytes"
	"io"
	"mime"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// maxDepth bounds MIME nesting (multipart and message/rfc822 together);
// deeper entities are leaves.
const maxDepth = 50

// part is one MIME entity: slices of the served bytes, never copies.
type part struct {
	header, body []byte
	typ, sub     string            // lower case; text/plain by default
	params       map[string]string // lower-case keys
	defaulted    bool              // no usable Content-Type
	children     []*part           // multipart/*
	inner        *part             // message/rfc822, message/global
}

func (p *part) mediaType() string { return p.typ + "/" + p.sub }

// parseMessage parses a whole message into its MIME tree.
func parseMessage(msg []byte) *part {
	h, b := SplitHeader(msg)
	return parsePart(h, b, "", 0)
}

func parsePart(header, body []byte, parentSub string, depth int) *part {
	p := &part{header: header, body: body}
	ct, _ := rawField(header, "Content-Type")
	typ, params := parseParams(unfold(ct))
	if slash := strings.IndexByte(typ, '/'); slash > 0 && slash < len(typ)-1 && isToken(typ) {
		p.typ, p.sub, p.params = typ[:slash], typ[slash+1:], params
	} else if parentSub == "digest" {
		p.typ, p.sub, p.defaulted = "message", "rfc822", true
	} else {
		p.typ, p.sub, p.defaulted = "text", "plain", true
		p.params = map[string]string{"charset": "us-ascii"}
		if cs := params["charset"]; cs != "" {
			p.params["charset"] = cs
		}
	}
	switch {
	case p.typ == "multipart":
		boundary := p.params["boundary"]
		var parts [][]byte
		if boundary != "" && depth < maxDepth {
			parts = splitMultipart(body, boundary)
		}
		if len(parts) == 0 {
			// No usable boundary: the body is one plain text leaf.
			p.typ, p.sub = "text", "plain"
			params := map[string]string{}
			for k, v := range p.params {
				if k != "boundary" {
					params[k] = v
				}
			}
			if len(params) == 0 {
				params = nil
			}
			p.params = params
			return p
		}
		for _, raw := range parts {
			h, b := splitPart(raw)
			p.children = append(p.children, parsePart(h, b, p.sub, depth+1))
		}
	case p.typ == "message" && (p.sub == "rfc822" || p.sub == "global") && depth < maxDepth:
		switch strings.ToLower(HeaderValue(header, "Content-Transfer-Encoding")) {
		case "base64", "quoted-printable":
			// Encoded message parts are not legal; leave them opaque.
			return p
		}
		h, b := SplitHeader(body)
		p.inner = parsePart(h, b, "", depth+1)
	}
	return p
}

// splitPart splits a body part into header and body. A part whose first
// line is neither a header field nor empty has no header at all.
func splitPart(raw []byte) (header, body []byte) {
	line := raw
	if nl := bytes.IndexByte(raw, '\n'); nl >= 0 {
		line = raw[:nl]
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > 0 && !isWSP(line[0]) {
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || !validFieldName(trimRightWSP(line[:colon])) {
			return raw[:0], raw
		}
	}
	return SplitHeader(raw)
}

// splitMultipart returns the body parts of a multipart body: the content
// between delimiter lines, without the line break that precedes each
// delimiter (RFC 2046 5.1.1). The preamble and epilogue are dropped. A
// missing close delimiter ends the last part at the end of body. No
// delimiter at all gives nil.
func splitMultipart(body []byte, boundary string) [][]byte {
	delim := "--" + boundary
	var parts [][]byte
	start := -1 // start of the current part, -1 before the first delimiter
	pos := 0
	for pos <= len(body) {
		end, next := len(body), len(body)+1
		if nl := bytes.IndexByte(body[pos:], '\n'); nl >= 0 {
			end, next = pos+nl, pos+nl+1
		}
		line := body[pos:end]
		if bytes.HasPrefix(line, []byte(delim)) {
			rest := line[len(delim):]
			closing := bytes.HasPrefix(rest, []byte("--"))
			if closing {
				rest = rest[2:]
			}
			if len(trimLineEnd(rest)) == 0 {
				if start >= 0 {
					stop := pos
					if stop > start && body[stop-1] == '\n' {
						stop--
						if stop > start && body[stop-1] == '\r' {
							stop--
						}
					}
					parts = append(parts, body[start:stop])
				}
				if closing {
					return parts
				}
				start = min(next, len(body))
			}
		}
		if next > len(body) {
			break
		}
		pos = next
	}
	if start >= 0 {
		parts = append(parts, body[start:])
	}
	return parts
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"[]?=`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// parseParams parses "value; k=v; k2="v2"" leniently: the value is lower
// cased; keys are lower cased; the first of duplicate keys wins; values keep
// their raw bytes (RFC 2047 words are not decoded); RFC 2231 continuations
// and charsets are decoded to UTF-8, and a value that is then not ASCII is
// returned as one RFC 2047 word so that it travels as ASCII.
func parseParams(s string) (value string, params map[string]string) {
	i := 0
	for i < len(s) && s[i] != ';' {
		i++
	}
	value = strings.ToLower(strings.TrimSpace(stripComments(s[:i])))
	type ext struct {
		idx     int
		encoded bool
		val     string
	}
	var exts map[string][]ext
	for i < len(s) {
		// s[i] == ';' or a stray separator
		i++
		for i < len(s) && (isWSP(s[i]) || s[i] == ';' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
		ks := i
		for i < len(s) && s[i] != '=' && s[i] != ';' {
			i++
		}
		key := strings.ToLower(strings.TrimSpace(s[ks:i]))
		if i >= len(s) || s[i] == ';' {
			continue
		}
		i++ // '='
		for i < len(s) && isWSP(s[i]) {
			i++
		}
		var val string
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
				i++
			}
			if i < len(s) {
				i++
			}
			val = b.String()
			for i < len(s) && s[i] != ';' {
				i++
			}
		} else {
			vs := i
			for i < len(s) && s[i] != ';' {
				i++
			}
			val = strings.TrimSpace(s[vs:i])
		}
		if key == "" {
			continue
		}
		if star := strings.IndexByte(key, '*'); star > 0 {
			base, rest := key[:star], key[star+1:]
			e := ext{}
			if strings.HasSuffix(rest, "*") {
				e.encoded = true
				rest = rest[:len(rest)-1]
			} else if rest == "" {
				e.encoded = true
			}
			if rest != "" {
				n, err := strconv.Atoi(rest)
				if err != nil || n < 0 || n > 1000 {
					continue
				}
				e.idx = n
			}
			e.val = val
			if exts == nil {
				exts = make(map[string][]ext)
			}
			exts[base] = append(exts[base], e)
			continue
		}
		if params == nil {
			params = make(map[string]string)
		}
		if _, dup := params[key]; !dup {
			params[key] = val
		}
	}
	for base, segs := range exts {
		sort.SliceStable(segs, func(a, b int) bool { return segs[a].idx < segs[b].idx })
		var raw []byte
		cs := ""
		for n, seg := range segs {
			v := seg.val
			if seg.encoded {
				if n == 0 {
					// charset'language'value
					if q := strings.IndexByte(v, '\''); q >= 0 {
						if q2 := strings.IndexByte(v[q+1:], '\''); q2 >= 0 {
							cs = v[:q]
							v = v[q+1+q2+1:]
						}
					}
				}
				if u, err := url.PathUnescape(v); err == nil {
					v = u
				}
			}
			raw = append(raw, v...)
		}
		if params == nil {
			params = make(map[string]string)
		}
		params[base] = asciiParam(raw, cs)
	}
	return value, params
}

// asciiParam turns an RFC 2231 value in charset cs into text suitable for a
// BODYSTRUCTURE parameter: ASCII as is, anything else as an RFC 2047 word.
func asciiParam(raw []byte, cs string) string {
	ascii := true
	for _, c := range raw {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii && !bytes.Contains(raw, []byte("\x1b")) {
		return string(raw)
	}
	if cs != "" && !isUTF8Name(cs) {
		if text, ok := convertCharset(cs, raw); ok {
			return mime.BEncoding.Encode("utf-8", text)
		}
		return "=?" + cs + "?B?" + base64Std(raw) + "?="
	}
	if utf8.Valid(raw) {
		return mime.BEncoding.Encode("utf-8", string(raw))
	}
	return string(raw)
}

func isUTF8Name(cs string) bool {
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "utf-8", "utf8", "us-ascii", "ascii", "":
		return true
	}
	return false
}

// convertCharset converts b from charset cs to UTF-8. ok is false for an
// unknown charset or when nothing could be decoded.
func convertCharset(cs string, b []byte) (s string, ok bool) {
	defer func() {
		if recover() != nil {
			s, ok = "", false
		}
	}()
	cs = strings.TrimSpace(cs)
	if i := strings.IndexByte(cs, '*'); i >= 0 { // RFC 2231 language suffix
		cs = cs[:i]
	}
	if isUTF8Name(cs) {
		return string(b), true
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return "", false
	}
	out, err := io.ReadAll(r)
	if err != nil && len(out) == 0 && len(b) != 0 {
		return "", false
	}
	return string(out), true
}
