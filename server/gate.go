package server

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The gate: every command after login is read whole by the front door and
// checked before go-imap's imapserver (v2.0.0-beta.8) sees it, because
// imapserver
//   - drops the connection when a line does not start with "tag SP name"
//     (an empty line, "a UID", a tag with "]"),
//   - answers NO [SERVERBUG] to arguments its parser rejects with a plain
//     error instead of a syntax error: malformed sequence sets
//     ("UID STORE completed ..."), mailbox names and LIST patterns that are
//     not modified UTF-7, dates and date-times, unknown SEARCH keys,
//   - loses step with the client after a syntax error on a line that
//     announces a non-synchronising literal (it discards the line and then
//     reads the literal as commands),
//   - reads a quoted string across the end of a line, and
//   - stores an APPEND and answers nothing when something other than CRLF
//     follows the message.
// What the gate cannot take it answers itself (BAD, with what is wrong);
// the rest is handed over unchanged except that literals, already read,
// are made non-synchronising. Any [SERVERBUG] answer imapserver still gives
// for a command's syntax becomes BAD (authConn.Write).

// gateMaxLiteral is the largest literal in a command argument: imapserver
// refuses larger ones (except APPEND's message, which is streamed).
const gateMaxLiteral = 4096

// innerCommands are the commands imapserver implements.
var innerCommands = map[string]bool{
	"NOOP": true, "CHECK": true, "LOGOUT": true, "STARTTLS": true, "UNAUTHENTICATE": true,
	"ENABLE": true, "CREATE": true, "DELETE": true, "RENAME": true, "SUBSCRIBE": true,
	"UNSUBSCRIBE": true, "STATUS": true, "LIST": true, "LSUB": true, "NAMESPACE": true,
	"IDLE": true, "SELECT": true, "EXAMINE": true, "CLOSE": true, "UNSELECT": true,
	"APPEND": true, "FETCH": true, "EXPUNGE": true, "STORE": true, "COPY": true,
	"MOVE": true, "SEARCH": true,
	"UID FETCH": true, "UID EXPUNGE": true, "UID STORE": true, "UID COPY": true,
	"UID MOVE": true, "UID SEARCH": true,
}

// gateResult is what the gate does with a command: answer it, or hand
// forward to the inner server.
type gateResult struct {
	answer     string // complete answer ("tag BAD ...\r\n"), or ""
	tag, name  string
	forward    [][]byte // lines and literals
	utf8Append bool     // APPEND with the UTF8 data extension
	saveOnly   bool     // SEARCH RETURN (SAVE): no ESEARCH answer (RFC 5182)
}

func (a *authConn) gate(rc *rawCommand) gateResult {
	line := rc.segs[0].line
	if rc.refused != "" {
		return gateResult{answer: tagOrStar(firstTag(line)) + " BAD " + rc.refused + "\r\n"}
	}
	if text := checkFirstLine(line); text != "" {
		return gateResult{answer: tagOrStar(firstTag(line)) + " BAD " + text + "\r\n"}
	}
	tag, name, _ := commandName(line)
	bad := func(text string) gateResult { return gateResult{answer: tag + " BAD " + text + "\r\n"} }
	switch name {
	case "ID", "CAPABILITY", "LOGIN", "AUTHENTICATE":
		return gateResult{answer: a.interceptAnswer(rc)}
	}
	for _, seg := range rc.segs {
		if bytes.IndexByte(seg.line, '\r') >= 0 {
			// imapserver would skip an erroneous line only up to the CR.
			return bad("Syntax error: CR in the middle of a line")
		}
	}
	toks, err := gateTokens(rc)
	if err != nil {
		return bad("Syntax error: " + err.Error())
	}
	skip := 2
	if strings.HasPrefix(name, "UID ") {
		skip = 3
	}
	if len(toks) < skip {
		return bad("Syntax error")
	}
	args := toks[skip:]
	if text := checkArgs(name, args); text != "" {
		return bad(text)
	}
	g := gateResult{tag: tag, name: name}
	switch name {
	case "APPEND":
		g.utf8Append = appendUTF8(args)
	case "SEARCH", "UID SEARCH":
		g.saveOnly = searchSaveOnly(args)
	}
	if name == "ENABLE" {
		a.c.out.mu.Lock()
		caps := a.caps
		a.c.out.mu.Unlock()
		g.forward = enableLine(tag, args, caps)
		return g
	}
	g.forward = encodeForward(rc)
	return g
}

// checkFirstLine checks a command's tag and name; it is called as soon as
// the first line is read, so that no literal of a command that will be
// refused is asked for. It returns the text of a BAD answer, or "".
func checkFirstLine(line []byte) string {
	tag, name, problem := commandName(line)
	switch {
	case tag == "":
		return "Syntax error: missing or invalid tag"
	case strings.IndexByte(tag, ']') >= 0:
		return "Tags containing \"]\" are not supported"
	case problem != "":
		return problem
	}
	switch name {
	case "ID", "CAPABILITY":
		return ""
	case "LOGIN", "AUTHENTICATE":
		return "Already authenticated" // and no literal of it is asked for
	}
	if !innerCommands[name] {
		if strings.HasPrefix(name, "UID ") {
			return "Unknown UID command"
		}
		return "Unknown command"
	}
	return ""
}

// commandName splits "tag SP name" (and "UID SP name") off a command
// line. tag is "" when the line has no valid tag; problem says what is
// wrong with the name.
func commandName(line []byte) (tag, name, problem string) {
	tag = firstTag(line)
	if tag == "" {
		return "", "", ""
	}
	if len(line) == len(tag) {
		return tag, "", "Syntax error: missing command name"
	}
	rest := line[len(tag)+1:]
	word := func() (string, bool) {
		i := 0
		for i < len(rest) && (rest[i] >= 'A' && rest[i] <= 'Z' || rest[i] >= 'a' && rest[i] <= 'z') {
			i++
		}
		w := strings.ToUpper(string(rest[:i]))
		ok := i < len(rest) && (rest[i] == ' ' || rest[i] == '(') || i == len(rest)
		rest = rest[i:]
		return w, ok && w != ""
	}
	name, ok := word()
	if !ok {
		if name == "" {
			return tag, "", "Syntax error: missing command name"
		}
		return tag, name, "Unknown command"
	}
	if name != "UID" {
		return tag, name, ""
	}
	if len(rest) == 0 || rest[0] != ' ' {
		return tag, name, "UID needs a command: FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE"
	}
	rest = rest[1:]
	sub, ok := word()
	if !ok {
		return tag, name, "UID needs a command: FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE"
	}
	return tag, "UID " + sub, ""
}

// streamAppendMessage is cmdReader.stream after login: APPEND's message
// literal is the first literal after at least one argument (the mailbox).
func streamAppendMessage(rc *rawCommand, before []byte) bool {
	// rc.segs ends with the current line, whose literal starts after before.
	if _, name, _ := commandName(rc.segs[0].line); name != "APPEND" {
		return false
	}
	n := 0
	last := len(rc.segs) - 1
	for _, seg := range rc.segs[:last] {
		toks, _ := lexGate(seg.line[:seg.litAt], nil)
		n += len(toks) + 1 // and the literal
	}
	toks, _ := lexGate(before, nil)
	return n+len(toks) > 2 // tag, APPEND, mailbox
}

// encodeForward renders a command for the inner server: the client's
// lines, with every literal already read sent as non-synchronising.
func encodeForward(rc *rawCommand) [][]byte {
	var out [][]byte
	for i, seg := range rc.segs {
		if seg.litAt < 0 || (i == len(rc.segs)-1 && rc.stream != nil) {
			out = append(out, append(seg.line[:len(seg.line):len(seg.line)], '\r', '\n'))
			continue
		}
		line := append([]byte(nil), seg.line[:seg.litAt]...)
		line = fmt.Appendf(line, "{%d+}\r\n", len(seg.lit))
		out = append(out, line, seg.lit)
	}
	return out
}

// enableLine forwards ENABLE without capabilities that are not offered:
// imapserver would turn on IMAP4rev2 for anyone asking.
func enableLine(tag string, args []gtok, caps string) [][]byte {
	var b strings.Builder
	b.WriteString(tag + " ENABLE")
	for _, t := range args {
		if t.kind != tokAtom {
			return [][]byte{[]byte(tag + " ENABLE \"\"\r\n")} // imapserver answers BAD
		}
		if strings.EqualFold(t.val, "IMAP4rev2") && !hasCap(caps, "IMAP4rev2") {
			continue
		}
		b.WriteString(" " + t.val)
	}
	b.WriteString("\r\n")
	return [][]byte{[]byte(b.String())}
}

// gtok is a token of a command as the gate sees it. Brackets are not
// tokens (FETCH's BODY[...] is only looked at for its sequence set).
type gtok struct {
	kind tokKind // tokAtom, tokString (quoted), tokLParen, tokRParen, tokLiteral
	val  string
}

const tokLiteral tokKind = 100

var errUnterminated = errors.New("unterminated quoted string")

// lexGate splits a line (or the part before its literal) into tokens. It
// is liberal: it only fails on a quoted string that the line ends in,
// which imapserver would read on into the next line.
func lexGate(b []byte, toks []gtok) ([]gtok, error) {
	for i := 0; i < len(b); {
		switch ch := b[i]; ch {
		case ' ':
			i++
		case '(':
			toks = append(toks, gtok{kind: tokLParen})
			i++
		case ')':
			toks = append(toks, gtok{kind: tokRParen})
			i++
		case '"':
			var v []byte
			j := i + 1
			for {
				if j >= len(b) {
					return toks, errUnterminated
				}
				c := b[j]
				if c == '"' {
					break
				}
				if c == '\\' {
					if j+1 >= len(b) {
						return toks, errUnterminated
					}
					c = b[j+1]
					j++
				}
				v = append(v, c)
				j++
			}
			toks = append(toks, gtok{kind: tokString, val: string(v)})
			i = j + 1
		default:
			j := i
			for j < len(b) && b[j] != ' ' && b[j] != '(' && b[j] != ')' && b[j] != '"' {
				j++
			}
			toks = append(toks, gtok{kind: tokAtom, val: string(b[i:j])})
			i = j
		}
	}
	return toks, nil
}

// gateTokens tokenises a whole command; a streamed literal (APPEND's
// message) is a tokLiteral without value.
func gateTokens(rc *rawCommand) ([]gtok, error) {
	var toks []gtok
	for _, seg := range rc.segs {
		l := seg.line
		if seg.litAt >= 0 {
			l = l[:seg.litAt]
		}
		var err error
		if toks, err = lexGate(l, toks); err != nil {
			return toks, err
		}
		if seg.litAt >= 0 {
			toks = append(toks, gtok{kind: tokLiteral, val: string(seg.lit)})
		}
	}
	return toks, nil
}

// checkArgs looks at the arguments imapserver's parser would choke on and
// returns the text of a BAD answer, or "".
func checkArgs(name string, args []gtok) string {
	arg := func(i int) *gtok {
		if i < len(args) {
			return &args[i]
		}
		return nil
	}
	switch name {
	case "SELECT", "EXAMINE", "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "STATUS":
		return checkMailbox(arg(0))
	case "RENAME":
		if p := checkMailbox(arg(0)); p != "" {
			return p
		}
		return checkMailbox(arg(1))
	case "APPEND":
		return checkAppend(args)
	case "LSUB":
		if p := checkMailbox(arg(0)); p != "" {
			return p
		}
		return checkPattern(arg(1))
	case "LIST":
		return checkList(args)
	case "FETCH", "STORE", "UID FETCH", "UID STORE", "UID EXPUNGE":
		return checkNumSet(arg(0))
	case "COPY", "MOVE", "UID COPY", "UID MOVE":
		if p := checkNumSet(arg(0)); p != "" {
			return p
		}
		return checkMailbox(arg(1))
	case "SEARCH", "UID SEARCH":
		return checkSearch(args)
	}
	return ""
}

// isWireAtomChar is imapwire.IsAtomChar: what imapserver reads as an atom.
func isWireAtomChar(ch byte) bool {
	switch ch {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return !unicode.IsControl(rune(ch))
}

func allChars(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isAStringChar(ch byte) bool { return ch == ']' || isWireAtomChar(ch) }
func isListChar(ch byte) bool    { return ch == '%' || ch == '*' || ch == ']' || isWireAtomChar(ch) }
func isNumSetChar(ch byte) bool  { return ch == '*' || isWireAtomChar(ch) }

// checkMailbox checks a mailbox argument (RFC 3501 section 5.1.3).
func checkMailbox(t *gtok) string {
	if t == nil || t.kind == tokLParen || t.kind == tokRParen {
		return "" // imapserver says what is missing
	}
	if t.kind == tokAtom && !allChars(t.val, isAStringChar) {
		return fmt.Sprintf("Invalid character in mailbox name %s; quote it", quoteForAnswer(t.val))
	}
	if strings.EqualFold(t.val, "INBOX") {
		return ""
	}
	if why := mutf7Problem(t.val); why != "" {
		return fmt.Sprintf("Mailbox name %s is not valid modified UTF-7 (RFC 3501 section 5.1.3): %s", quoteForAnswer(t.val), why)
	}
	return ""
}

// checkPattern checks a LIST/LSUB pattern.
func checkPattern(t *gtok) string {
	if t == nil || t.kind == tokLParen || t.kind == tokRParen {
		return ""
	}
	if t.kind == tokAtom && !allChars(t.val, isListChar) {
		return fmt.Sprintf("Invalid character in LIST pattern %s; quote it", quoteForAnswer(t.val))
	}
	if why := mutf7Problem(t.val); why != "" {
		return fmt.Sprintf("LIST pattern %s is not valid modified UTF-7 (RFC 3501 section 5.1.3): %s", quoteForAnswer(t.val), why)
	}
	return ""
}

// checkList: LIST [(select-opts)] ref (pattern | (patterns)) [RETURN (...)].
func checkList(args []gtok) string {
	i := 0
	if i < len(args) && args[i].kind == tokLParen {
		i = skipGroup(args, i)
	}
	if i >= len(args) {
		return ""
	}
	if p := checkMailbox(&args[i]); p != "" {
		return p
	}
	i++
	if i >= len(args) {
		return ""
	}
	if args[i].kind != tokLParen {
		return checkPattern(&args[i])
	}
	for i++; i < len(args) && args[i].kind != tokRParen; i++ {
		if p := checkPattern(&args[i]); p != "" {
			return p
		}
	}
	return ""
}

// skipGroup returns the index after the group opened at args[i].
func skipGroup(args []gtok, i int) int {
	depth := 0
	for ; i < len(args); i++ {
		switch args[i].kind {
		case tokLParen:
			depth++
		case tokRParen:
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return i
}

// checkAppend: APPEND mailbox [(flags)] ["date-time"] [UTF8 (] literal.
func checkAppend(args []gtok) string {
	if len(args) == 0 {
		return ""
	}
	if p := checkMailbox(&args[0]); p != "" {
		return p
	}
	i := 1
	if i < len(args) && args[i].kind == tokLParen {
		i = skipGroup(args, i)
	}
	if i < len(args) && args[i].kind == tokString {
		if _, err := time.Parse(dateTimeLayout, args[i].val); err != nil {
			return fmt.Sprintf("Invalid date-time %s; the form is \"02-Jan-2006 15:04:05 -0700\"", quoteForAnswer(args[i].val))
		}
	}
	return ""
}

// appendUTF8 reports whether an APPEND uses the UTF8 data extension
// (RFC 6855), after which imapserver expects ")" following the literal.
func appendUTF8(args []gtok) bool {
	n := len(args)
	// ... UTF8 ( ~ <literal>
	return n >= 4 && args[n-1].kind == tokLiteral && args[n-2].kind == tokAtom && args[n-2].val == "~" &&
		args[n-3].kind == tokLParen && args[n-4].kind == tokAtom && strings.EqualFold(args[n-4].val, "UTF8")
}

// Layouts of imapserver (go-imap's internal package).
const (
	dateTimeLayout = "_2-Jan-2006 15:04:05 -0700"
	dateLayout     = "2-Jan-2006"
)

// checkNumSet checks a sequence or UID set (RFC 3501 "sequence-set", or
// "$" of SEARCHRES).
func checkNumSet(t *gtok) string {
	if t == nil || t.kind != tokAtom || strings.HasPrefix(t.val, "$") {
		return ""
	}
	if !allChars(t.val, isNumSetChar) || !validNumSet(t.val) {
		return fmt.Sprintf("Invalid sequence set %s: use numbers, \"*\", ranges \"n:m\" and commas", quoteForAnswer(t.val))
	}
	return ""
}

// validNumSet mirrors go-imap's imapnum.ParseSet.
func validNumSet(s string) bool {
	num := func(v string) bool {
		if v == "*" {
			return true
		}
		n, err := strconv.ParseUint(v, 10, 32)
		return err == nil && v[0] != '0' && n > 0
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		if !num(lo) || isRange && !num(hi) {
			return false
		}
	}
	return true
}

// checkSearch walks SEARCH's keys as imapserver's readSearchKey does.
func checkSearch(args []gtok) string {
	i := 0
	if i < len(args) && args[i].kind == tokAtom && strings.EqualFold(args[i].val, "RETURN") {
		if i+1 >= len(args) || args[i+1].kind != tokLParen {
			return ""
		}
		i = skipGroup(args, i+1)
	}
	if i < len(args) && args[i].kind == tokAtom && strings.EqualFold(args[i].val, "CHARSET") {
		i += 2
	}
	for i < len(args) {
		next, bad := checkSearchKey(args, i)
		if bad != "" || next < 0 {
			return bad
		}
		i = next
	}
	return ""
}

// searchSaveOnly reports SEARCH RETURN (SAVE): imapserver answers it with
// ESEARCH ALL, RFC 5182 section 2.1 with nothing but the tagged OK.
func searchSaveOnly(args []gtok) bool {
	return len(args) >= 4 && args[0].kind == tokAtom && strings.EqualFold(args[0].val, "RETURN") &&
		args[1].kind == tokLParen && args[2].kind == tokAtom && strings.EqualFold(args[2].val, "SAVE") &&
		args[3].kind == tokRParen
}

// checkSearchKey checks the key at args[i] and returns the index after
// it; -1 when imapserver is left to report what is wrong.
func checkSearchKey(args []gtok, i int) (next int, bad string) {
	if i >= len(args) {
		return -1, ""
	}
	t := args[i]
	switch t.kind {
	case tokLParen:
		for i++; i < len(args) && args[i].kind != tokRParen; {
			if i, bad = checkSearchKey(args, i); i < 0 || bad != "" {
				return i, bad
			}
		}
		return i + 1, ""
	case tokAtom:
	default:
		return -1, ""
	}
	if !allChars(t.val, isNumSetChar) {
		return -1, fmt.Sprintf("Invalid search key %s", quoteForAnswer(t.val))
	}
	switch key := strings.ToUpper(t.val); key {
	case "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "RECENT", "SEEN",
		"UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN", "NEW", "OLD", "$":
		return i + 1, ""
	case "UID":
		if i+1 >= len(args) {
			return -1, ""
		}
		if bad := checkNumSet(&args[i+1]); bad != "" {
			return -1, bad
		}
		return i + 2, ""
	case "KEYWORD", "UNKEYWORD", "BCC", "CC", "FROM", "SUBJECT", "TO", "BODY", "TEXT", "LARGER", "SMALLER":
		return i + 2, ""
	case "HEADER":
		return i + 3, ""
	case "SINCE", "BEFORE", "ON", "SENTSINCE", "SENTBEFORE", "SENTON":
		if i+1 >= len(args) {
			return -1, ""
		}
		d := args[i+1]
		if d.kind == tokAtom || d.kind == tokString || d.kind == tokLiteral {
			if _, err := time.Parse(dateLayout, d.val); err != nil {
				return -1, fmt.Sprintf("Invalid date %s after %s; the form is 2-Jan-2006", quoteForAnswer(d.val), key)
			}
		}
		return i + 2, ""
	case "NOT":
		return checkSearchKey(args, i+1)
	case "OR":
		j, bad := checkSearchKey(args, i+1)
		if j < 0 || bad != "" {
			return j, bad
		}
		return checkSearchKey(args, j)
	default:
		if !validNumSet(t.val) {
			return -1, fmt.Sprintf("Unknown search key %s", quoteForAnswer(t.val))
		}
		return i + 1, ""
	}
}

// quoteForAnswer shows client input in an answer: quoted, shortened,
// printable ASCII only.
func quoteForAnswer(s string) string {
	const maxShown = 60
	cut := len(s) > maxShown
	if cut {
		s = s[:maxShown]
	}
	q := quote(s)
	if cut {
		q += "..."
	}
	return q
}
