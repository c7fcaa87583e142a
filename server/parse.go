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

// Limits of the front door's own parser (pre-auth, and the gate every
// command passes after login). RFC 2683 section 3.2.1.5 asks for 8 KiB
// lines at least; an ID command at RFC 2971's limits (30 pairs, values of
// 1,024 octets) is about 32 KiB on one line. imapserver accepts 50 KiB of
// command text.
const (
	maxLine    = 48 * 1024 // one command line, without CRLF
	maxLiteral = 8 * 1024  // one literal before login
	maxCommand = 64 * 1024 // all lines and literals of one command
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
	// refused is set when the command cannot be taken: a synchronising
	// literal was refused (it was not read; the client waits for our
	// answer), or, after login, a line or literal was too large and was
	// skipped. Its text is the BAD answer.
	refused string
	// stream is set when the command's last line announced a literal that
	// cmdReader.stream chose to leave unread (APPEND's message).
	stream *streamLit
}

// streamLit is a literal announced but not read.
type streamLit struct {
	size    int64
	nonSync bool
}

// cmdReader reads commands, answering synchronising literals with a
// continuation request.
type cmdReader struct {
	br  *bufio.Reader
	out *connWriter
	tr  *tracer

	// lenient (after login) skips over-long lines and too large
	// non-synchronising literals and refuses the command, where the
	// pre-auth reader ends the connection.
	lenient bool
	// maxLit is the largest literal read into memory; 0 means maxLiteral.
	maxLit int64
	// stream, if set, is asked about every literal: true leaves it (and
	// the rest of the command) unread; rc holds the lines so far and
	// before the current line up to the literal.
	stream func(rc *rawCommand, before []byte) bool
	// check, if set, looks at the first line; a text refuses the command.
	check func(first []byte) string
}

// readLine reads one line of at most max bytes (CRLF or lone LF stripped).
// A longer line fails with errLineTooLong without buffering it.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	line, clipped, err := readLineClip(br, max)
	if err == nil && clipped {
		err = errLineTooLong
	}
	return line, err
}

// clipKeep is how much of each end of an over-long line readLineClip keeps.
const clipKeep = 128

// readLineClip reads one line (CRLF or lone LF stripped). A line longer
// than limit is read to its end but only its first and last clipKeep bytes
// are kept, joined by a space, and clipped is true.
func readLineClip(br *bufio.Reader, limit int) (line []byte, clipped bool, err error) {
	var tail []byte // when clipped: the last bytes read
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case clipped:
			tail = append(tail, chunk...)
		case len(line)+len(chunk) > limit+2:
			clipped = true
			all := append(line, chunk...)
			keep := min(clipKeep, len(all))
			line = append([]byte(nil), all[:keep]...)
			tail = append([]byte(nil), all[keep:]...)
		default:
			line = append(line, chunk...)
		}
		if len(tail) > 4*clipKeep {
			tail = append(tail[:0], tail[len(tail)-clipKeep-2:]...)
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF && (len(line) > 0 || clipped) {
				err = io.ErrUnexpectedEOF
			}
			return nil, false, err
		}
	}
	if clipped && len(tail) > 0 {
		tail = tail[max(0, len(tail)-clipKeep-2):]
		line = append(append(line, ' '), tail...)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > limit {
		clipped = true
	}
	return line, clipped, nil
}

// literalSpec reports whether line ends with a literal announcement
// "{n}" or "{n+}" starting at index at. One space may follow the "}":
// imapserver takes "{n} " CRLF for a literal too.
func literalSpec(line []byte) (n int64, nonSync bool, at int, ok bool) {
	line = bytes.TrimSuffix(line, []byte(" "))
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

// readCommand reads one command: its lines and literals. Errors end the
// connection; a command that cannot be taken has rc.refused set.
func (r *cmdReader) readCommand() (*rawCommand, error) {
	rc := &rawCommand{}
	total := 0     // bytes of lines and literals
	lineTotal := 0 // bytes of lines (imapserver stops at 50 KiB)
	redact := false
	maxLit := r.maxLit
	if maxLit == 0 {
		maxLit = maxLiteral
	}
	refuse := func(text string) {
		if rc.refused == "" {
			rc.refused = text
		}
	}
	for i := 0; ; i++ {
		line, clipped, err := readLineClip(r.br, maxLine)
		if err != nil {
			return rc, err
		}
		if clipped && !r.lenient {
			return rc, errLineTooLong
		}
		if i == 0 {
			var tag, name string
			if tag, name, redact = secretCommand(line); redact {
				r.tr.redacted(tag, name)
			}
			if r.check != nil {
				if text := r.check(line); text != "" {
					refuse(text)
				}
			}
		}
		if !redact {
			r.tr.client(append(line[:len(line):len(line)], '\r', '\n'))
		}
		total += len(line) + 2
		lineTotal += len(line) + 2
		if clipped || total > maxCommand || lineTotal > maxLine {
			refuse("Command line too long")
		}
		seg := segment{line: line, litAt: -1}
		n, nonSync, at, ok := literalSpec(line)
		if rc.refused == "" || len(rc.segs) == 0 {
			rc.segs = append(rc.segs, seg)
		}
		if !ok {
			return rc, nil
		}
		if rc.refused == "" {
			rc.segs[len(rc.segs)-1].litAt = at
			if r.stream != nil && r.stream(rc, line[:at]) {
				rc.stream = &streamLit{size: n, nonSync: nonSync}
				return rc, nil
			}
			if n > maxLit || int64(total)+n > maxCommand {
				refuse("Literal too large")
			}
		}
		if rc.refused != "" {
			if !nonSync {
				// Not sent until we say so: the command ends here.
				return rc, nil
			}
			if !r.lenient {
				return rc, errLiteralTooLarge
			}
			if err := r.skip(n); err != nil {
				return rc, err
			}
			continue
		}
		if !nonSync {
			if err := r.out.write([]byte("+ Ready for literal data\r\n")); err != nil {
				return rc, err
			}
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(r.br, lit); err != nil {
			return rc, err
		}
		if !redact {
			r.tr.client(lit)
		}
		total += int(n)
		rc.segs[len(rc.segs)-1].lit = lit
	}
}

// skip discards a literal the client sends without waiting.
func (r *cmdReader) skip(n int64) error {
	r.tr.client([]byte(fmt.Sprintf("[%d bytes of literal skipped]\r\n", n)))
	m, err := io.CopyN(io.Discard, r.br, n)
	if err == io.EOF && m < n {
		err = io.ErrUnexpectedEOF
	}
	return err
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
