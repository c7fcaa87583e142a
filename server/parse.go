package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits of the front door's own parser (pre-auth, and the few commands
// intercepted after login). RFC 2683 section 3.2.1.5 asks for 8 KiB lines.
const (
	maxLine    = 8 * 1024  // one command line, without CRLF
	maxLiteral = 8 * 1024  // one literal
	maxCommand = 16 * 1024 // all lines and literals of one command
)

var (
	errLineTooLong     = errors.New("command line too long")
	errLiteralTooLarge = errors.New("non-synchronising literal too large")
)

// segment is one line of a command and the literal announced at its end.
type segment struct {
	line  []byte // without CRLF
	litAt int    // index in line where "{n}" starts; -1 if none
	lit   []byte // literal bytes (nil if none or refused)
}

// rawCommand is a command as read from the wire.
type rawCommand struct {
	segs []segment
	// refused is set when a synchronising literal was refused (it was not
	// read; the client waits for our answer).
	refused string
}

// cmdReader reads commands, answering synchronising literals with a
// continuation request.
type cmdReader struct {
	br  *bufio.Reader
	out *connWriter
	tr  *tracer
}

// readLine reads one line of at most max bytes (CRLF or lone LF stripped).
// A longer line fails with errLineTooLong without buffering it.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > max+2 {
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > max {
		return nil, errLineTooLong
	}
	return line, nil
}

// literalSpec reports whether line ends with a literal announcement
// "{n}" or "{n+}" starting at index at.
func literalSpec(line []byte) (n int64, nonSync bool, at int, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, -1, false
	}
	at = bytes.LastIndexByte(line, '{')
	if at < 0 {
		return 0, false, -1, false
	}
	digits := line[at+1 : len(line)-1]
	if len(digits) > 0 && digits[len(digits)-1] == '+' {
		nonSync = true
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		return 0, false, -1, false
	}
	for _, ch := range digits {
		if ch < '0' || ch > '9' {
			return 0, false, -1, false
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		n = 1<<63 - 1 // too many digits: certainly too large
	}
	return n, nonSync, at, true
}

// secretCommand reports whether a command line carries credentials, in
// which case only its tag and name are traced. It errs on the side of
// redacting.
func secretCommand(line []byte) (tag, name string, secret bool) {
	f := bytes.Fields(line)
	for i := 0; i < len(f) && i < 2; i++ {
		w := strings.ToUpper(string(f[i]))
		for _, n := range []string{"LOGIN", "AUTH"} {
			if strings.HasPrefix(w, n) {
				name = "LOGIN"
				if n == "AUTH" {
					name = "AUTHENTICATE"
				}
				if i == 1 && validTag(string(f[0])) {
					tag = string(f[0])
				}
				return tag, name, true
			}
		}
	}
	return "", "", false
}

// readCommand reads one command: its lines and literals. Errors other than
// a refused synchronising literal end the connection.
func (r *cmdReader) readCommand() (*rawCommand, error) {
	rc := &rawCommand{}
	total := 0
	redact := false
	for i := 0; ; i++ {
		line, err := readLine(r.br, maxLine)
		if err != nil {
			return rc, err
		}
		if i == 0 {
			var tag, name string
			if tag, name, redact = secretCommand(line); redact {
				r.tr.redacted(tag, name)
			}
		}
		if !redact {
			r.tr.client(append(line[:len(line):len(line)], '\r', '\n'))
		}
		total += len(line) + 2
		seg := segment{line: line, litAt: -1}
		n, nonSync, at, ok := literalSpec(line)
		if !ok {
			rc.segs = append(rc.segs, seg)
			return rc, nil
		}
		seg.litAt = at
		if n > maxLiteral || int64(total)+n > maxCommand {
			rc.segs = append(rc.segs, seg)
			if nonSync {
				return rc, errLiteralTooLarge
			}
			rc.refused = "Literal too large"
			return rc, nil
		}
		if !nonSync {
			if err := r.out.write([]byte("+ Ready for literal data\r\n")); err != nil {
				return rc, err
			}
		}
		seg.lit = make([]byte, n)
		if _, err := io.ReadFull(r.br, seg.lit); err != nil {
			return rc, err
		}
		if !redact {
			r.tr.client(seg.lit)
		}
		total += int(n)
		rc.segs = append(rc.segs, seg)
	}
}

type tokKind int

const (
	tokAtom tokKind = iota
	tokString
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	val  string
}

// astring returns the value of an atom, quoted string or literal.
func (t token) astring() (string, bool) {
	return t.val, t.kind == tokAtom || t.kind == tokString
}

// isNIL reports whether t is the atom NIL.
func (t token) isNIL() bool {
	return t.kind == tokAtom && strings.EqualFold(t.val, "NIL")
}

// command is a parsed command.
type command struct {
	tag  string // "" when the line had no valid tag
	name string // upper case
	args []token
}

func isAtomChar(ch byte) bool {
	if ch <= ' ' || ch >= 0x7f {
		return false
	}
	switch ch {
	case '(', ')', '{', '"':
		return false
	}
	return true
}

func isTagChar(ch byte) bool {
	return isAtomChar(ch) && ch != '+' && ch != '%' && ch != '*' && ch != '\\'
}

func validTag(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTagChar(s[i]) {
			return false
		}
	}
	return true
}

// lexLine splits a command line (or the part before its literal) into
// tokens. On error it returns the tokens read so far.
func lexLine(b []byte, toks []token) ([]token, error) {
	for i := 0; i < len(b); {
		ch := b[i]
		switch {
		case ch == ' ':
			i++
		case ch == '(':
			toks = append(toks, token{kind: tokLParen})
			i++
		case ch == ')':
			toks = append(toks, token{kind: tokRParen})
			i++
		case ch == '"':
			var sb strings.Builder
			j := i + 1
			for {
				if j >= len(b) {
					return toks, errors.New("unterminated quoted string")
				}
				c := b[j]
				if c == '"' {
					break
				}
				if c == '\\' {
					if j+1 < len(b) && (b[j+1] == '"' || b[j+1] == '\\') {
						sb.WriteByte(b[j+1])
						j += 2
						continue
					}
					return toks, errors.New(`invalid escape in quoted string (only \" and \\ are allowed)`)
				}
				if c < ' ' || c == 0x7f {
					return toks, errors.New("control character in quoted string")
				}
				sb.WriteByte(c)
				j++
			}
			toks = append(toks, token{kind: tokString, val: sb.String()})
			i = j + 1
		case isAtomChar(ch):
			j := i
			for j < len(b) && isAtomChar(b[j]) {
				j++
			}
			toks = append(toks, token{kind: tokAtom, val: string(b[i:j])})
			i = j
		default:
			if ch >= ' ' && ch < 0x7f {
				return toks, fmt.Errorf("unexpected %q", ch)
			}
			return toks, fmt.Errorf("unexpected byte 0x%02x", ch)
		}
	}
	return toks, nil
}

// firstTag returns the tag of a command line if it has a valid one.
func firstTag(line []byte) string {
	i := 0
	for i < len(line) && isTagChar(line[i]) {
		i++
	}
	if i == 0 || (i < len(line) && line[i] != ' ') {
		return ""
	}
	return string(line[:i])
}

// parseCommand tokenises a command read by readCommand.
func parseCommand(rc *rawCommand) (command, error) {
	var cmd command
	if len(rc.segs) > 0 {
		cmd.tag = firstTag(rc.segs[0].line)
	}
	var toks []token
	for _, seg := range rc.segs {
		line := seg.line
		if seg.litAt >= 0 {
			line = line[:seg.litAt]
		}
		var err error
		if toks, err = lexLine(line, toks); err != nil {
			return cmd, err
		}
		if seg.litAt >= 0 {
			toks = append(toks, token{kind: tokString, val: string(seg.lit)})
		}
	}
	if cmd.tag == "" {
		return cmd, errors.New("missing or invalid tag")
	}
	if len(toks) < 2 || toks[1].kind != tokAtom {
		return cmd, errors.New("missing command name")
	}
	cmd.name = strings.ToUpper(toks[1].val)
	if len(toks) > 2 {
		cmd.args = toks[2:]
	}
	return cmd, nil
}
