package server

import (
	"log/slog"
	"strings"
)

// ID (RFC 2971). Clients' parameters are logged at debug level, nothing
// more; the server answers with its name and version.

const (
	maxIDPairs    = 30   // RFC 2971 section 3.3
	maxIDValueLog = 1024 // RFC 2971 section 3.3
)

// idResponse answers an ID command, or returns the text of a BAD answer.
func (c *conn) idResponse(cmd command) (resp, badText string) {
	attrs, bad := parseIDParams(cmd.args)
	if bad != "" {
		return "", bad
	}
	c.log.Debug("imap client id", slog.Group("id", attrs...))
	var b strings.Builder
	b.WriteString(`* ID ("name" "popbridge"`)
	if c.s.opts.Version != "" {
		b.WriteString(` "version" `)
		b.WriteString(quote(c.s.opts.Version))
	}
	b.WriteString(")\r\n")
	b.WriteString(cmd.tag)
	b.WriteString(" OK ID completed\r\n")
	return b.String(), ""
}

// parseIDParams accepts NIL or a parenthesised list of field/value pairs
// (values may be NIL) and returns them as log attributes.
func parseIDParams(args []token) (attrs []any, badText string) {
	const syntax = "ID expects NIL or a list of field/value pairs"
	if len(args) == 1 && args[0].isNIL() {
		return nil, ""
	}
	if len(args) < 2 || args[0].kind != tokLParen || args[len(args)-1].kind != tokRParen {
		return nil, syntax
	}
	inner := args[1 : len(args)-1]
	if len(inner)%2 != 0 {
		return nil, syntax
	}
	for i := 0; i < len(inner); i += 2 {
		k, v := inner[i], inner[i+1]
		key, ok := k.astring()
		if !ok || k.isNIL() {
			return nil, syntax
		}
		val, ok := v.astring()
		if !ok {
			return nil, syntax
		}
		if v.isNIL() {
			val = ""
		}
		if len(attrs) < maxIDPairs {
			attrs = append(attrs, slog.String(strings.ToLower(truncate(key, 30)), truncate(val, maxIDValueLog)))
		}
	}
	return attrs, ""
}

// quote returns s as an IMAP quoted string, dropping bytes a quoted
// string cannot carry.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '"' || ch == '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		case ch < ' ' || ch >= 0x7f:
			// not representable in a quoted string without UTF8=ACCEPT
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
	return b.String()
}
