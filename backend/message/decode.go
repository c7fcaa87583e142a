package message

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf8"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// decodeBase64 decodes leniently: characters outside the alphabet are
// skipped, padding is optional, a trailing partial group is decoded as far
// as it goes.
func decodeBase64(src []byte) []byte {
	out := make([]byte, 0, len(src)*3/4)
	var acc uint32
	n := 0
	for _, c := range src {
		var v byte
		switch {
		case 'A' <= c && c <= 'Z':
			v = c - 'A'
		case 'a' <= c && c <= 'z':
			v = c - 'a' + 26
		case '0' <= c && c <= '9':
			v = c - '0' + 52
		case c == '+' || c == '-':
			v = 62
		case c == '/' || c == '_':
			v = 63
		default:
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		if n == 4 {
			out = append(out, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	switch n {
	case 2:
		out = append(out, byte(acc>>4))
	case 3:
		out = append(out, byte(acc>>10), byte(acc>>2))
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeQP decodes quoted-printable leniently: soft line breaks (with
// trailing white space) are removed, "=XX" becomes a byte, anything else is
// kept literally. underscore makes "_" a space (RFC 2047 Q encoding).
func decodeQP(src []byte, underscore bool) []byte {
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '_' && underscore:
			out = append(out, ' ')
		case c == '=':
			if i+2 < len(src) {
				if h, ok := unhex(src[i+1]); ok {
					if l, ok := unhex(src[i+2]); ok {
						out = append(out, h<<4|l)
						i += 2
						continue
					}
				}
			}
			// Soft line break: "=" then optional white space then line end.
			j := i + 1
			for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
				j++
			}
			if j < len(src) && src[j] == '\r' {
				j++
			}
			if j < len(src) && src[j] == '\n' {
				i = j
				continue
			}
			if j == len(src) {
				i = j
				continue
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return out
}

// decodeTransfer undoes a Content-Transfer-Encoding.
func decodeTransfer(cte string, body []byte) []byte {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return decodeBase64(body)
	case "quoted-printable":
		return decodeQP(body, false)
	}
	return body
}

// hasISO2022JP reports escape sequences of ISO-2022-JP (JIS X 0208).
func hasISO2022JP(b []byte) bool {
	return bytes.Contains(b, []byte("\x1b$B")) || bytes.Contains(b, []byte("\x1b$@")) || bytes.Contains(b, []byte("\x1b(J"))
}

// toUTF8 converts text in charset cs (possibly empty or wrong) to UTF-8 as
// well as it can: a declared charset is used if known; unlabelled or ASCII-
// labelled ISO-2022-JP is recognised by its escapes; invalid UTF-8 falls
// back to fallbackCS; failing all, the raw bytes.
func toUTF8(b []byte, cs, fallbackCS string) string {
	if hasISO2022JP(b) && (isUTF8Name(cs) || strings.HasPrefix(strings.ToLower(cs), "iso-2022-jp")) {
		if s, ok := convertCharset("iso-2022-jp", b); ok {
			return s
		}
	}
	if !isUTF8Name(cs) {
		if s, ok := convertCharset(cs, b); ok {
			return s
		}
	}
	if !utf8.Valid(b) && fallbackCS != "" && !isUTF8Name(fallbackCS) {
		if s, ok := convertCharset(fallbackCS, b); ok {
			return s
		}
	}
	return string(b)
}

// decodeHeaderText decodes RFC 2047 encoded words in a header value.
// Adjacent encoded words in the same charset are joined before charset
// conversion, so a multi-byte character split across two words survives;
// white space between encoded words is dropped (RFC 2047 6.2). Text outside
// encoded words is converted as toUTF8 does, with fallbackCS for raw 8-bit.
func decodeHeaderText(v string, fallbackCS string) string {
	if !strings.Contains(v, "=?") {
		return toUTF8([]byte(v), "", fallbackCS)
	}
	var out strings.Builder
	var (
		runCS  string
		runBuf []byte
	)
	flushRun := func() {
		if runBuf == nil {
			return
		}
		if s, ok := convertCharset(runCS, runBuf); ok {
			out.WriteString(s)
		} else {
			out.Write(runBuf)
		}
		runBuf = nil
	}
	pending := "" // white space after an encoded word
	i := 0
	for i < len(v) {
		cs, data, n := encodedWordAt(v, i)
		if n > 0 {
			if runBuf != nil && !strings.EqualFold(cs, runCS) {
				flushRun()
			}
			if runBuf == nil {
				runCS = cs
				runBuf = []byte{}
			}
			runBuf = append(runBuf, data...)
			pending = ""
			i += n
			continue
		}
		// Literal text up to the next possible encoded word.
		j := strings.Index(v[i+1:], "=?")
		if j < 0 {
			j = len(v)
		} else {
			j += i + 1
		}
		lit := v[i:j]
		if runBuf != nil && strings.TrimLeft(lit, " \t\r\n") == "" && j < len(v) {
			// Possibly white space between two encoded words.
			if _, _, m := encodedWordAt(v, j); m > 0 {
				pending = lit
				i = j
				continue
			}
		}
		flushRun()
		out.WriteString(pending)
		pending = ""
		out.WriteString(toUTF8([]byte(lit), "", fallbackCS))
		i = j
	}
	flushRun()
	return out.String()
}

// encodedWordAt parses "=?charset?X?text?=" at v[i:], returning the charset,
// the decoded bytes and the length consumed (0 if none).
func encodedWordAt(v string, i int) (cs string, data []byte, n int) {
	if !strings.HasPrefix(v[i:], "=?") {
		return "", nil, 0
	}
	rest := v[i+2:]
	q1 := strings.IndexByte(rest, '?')
	if q1 <= 0 || q1+2 >= len(rest) || rest[q1+2] != '?' {
		return "", nil, 0
	}
	cs = rest[:q1]
	if strings.ContainsAny(cs, " \t\r\n") {
		return "", nil, 0
	}
	enc := rest[q1+1]
	text := rest[q1+3:]
	end := strings.Index(text, "?=")
	if end < 0 {
		return "", nil, 0
	}
	text = text[:end]
	if strings.ContainsAny(text, " \t\r\n") {
		return "", nil, 0
	}
	switch enc {
	case 'B', 'b':
		data = decodeBase64([]byte(text))
	case 'Q', 'q':
		data = decodeQP([]byte(text), true)
	default:
		return "", nil, 0
	}
	if star := strings.IndexByte(cs, '*'); star >= 0 {
		cs = cs[:star]
	}
	return cs, data, 2 + q1 + 3 + end + 2
}
