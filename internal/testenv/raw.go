package testenv

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Raw is a line-level IMAP client for asserting a server's exact answers,
// which go-imap's client parses (and sometimes refuses). Every method fails
// the test on a network error, printing the transcript.
type Raw struct {
	t        testing.TB
	c        net.Conn
	r        *bufio.Reader
	n        int
	log      []string
	Greeting string // the server's first line
}

// DialRaw connects to addr and reads the greeting; the connection is
// closed at cleanup.
func DialRaw(t testing.TB, addr string) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &Raw{t: t, c: c, r: bufio.NewReader(c)}
	r.Greeting = r.line()
	return r
}

// Transcript is every line so far, prefixed "C: " or "S: ".
func (r *Raw) Transcript() string { return strings.Join(r.log, "\n") }

func (r *Raw) line() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read from IMAP server: %v (transcript:\n%s)", err, r.Transcript())
	}
	l = strings.TrimRight(l, "\r\n")
	r.log = append(r.log, "S: "+l)
	return l
}

// Cmd sends one command (a tag is added) and returns the untagged lines
// and the tagged status (without the tag). A literal in an answer is
// read whole and joined to its line without the CRLF that announced it.
func (r *Raw) Cmd(format string, args ...any) (untagged []string, status string) {
	r.t.Helper()
	return r.CmdLit(fmt.Sprintf(format, args...), nil)
}

// CmdLit sends line; if lit is not nil, line is followed by the
// synchronising literal {len(lit)}, sent after the server's "+". If the
// server refuses the literal, its tagged status is returned.
func (r *Raw) CmdLit(line string, lit []byte) (untagged []string, status string) {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("r%d", r.n)
	if lit != nil {
		line += fmt.Sprintf(" {%d}", len(lit))
	}
	r.log = append(r.log, "C: "+tag+" "+line)
	if _, err := fmt.Fprintf(r.c, "%s %s\r\n", tag, line); err != nil {
		r.t.Fatal(err)
	}
	if lit != nil {
		l := r.line()
		if !strings.HasPrefix(l, "+") {
			rest, _ := strings.CutPrefix(l, tag+" ")
			return nil, rest
		}
		r.log = append(r.log, fmt.Sprintf("C: <%d bytes>", len(lit)))
		if _, err := r.c.Write(append(lit, '\r', '\n')); err != nil {
			r.t.Fatal(err)
		}
	}
	return r.Responses(tag)
}

// Responses reads until the status line of tag.
func (r *Raw) Responses(tag string) (untagged []string, status string) {
	r.t.Helper()
	for {
		l := r.line()
		for {
			i := strings.LastIndexByte(l, '{')
			if i < 0 || !strings.HasSuffix(l, "}") {
				break
			}
			var n int
			if _, err := fmt.Sscanf(l[i:], "{%d}", &n); err != nil {
				break
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r.r, buf); err != nil {
				r.t.Fatal(err)
			}
			l += string(buf) + r.line()
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// Send writes a raw line (CRLF added) without waiting for anything.
func (r *Raw) Send(line string) {
	r.t.Helper()
	r.log = append(r.log, "C: "+line)
	if _, err := fmt.Fprintf(r.c, "%s\r\n", line); err != nil {
		r.t.Fatal(err)
	}
}

// ReadLine reads one line of the server's answer.
func (r *Raw) ReadLine() string {
	r.t.Helper()
	return r.line()
}

// OK runs Cmd and fails the test unless the status is OK.
func (r *Raw) OK(format string, args ...any) []string {
	r.t.Helper()
	u, st := r.Cmd(format, args...)
	if !strings.HasPrefix(st, "OK") {
		r.t.Fatalf("%s: %s (transcript:\n%s)", fmt.Sprintf(format, args...), st, r.Transcript())
	}
	return u
}

// Login sends LOGIN with quoted arguments and fails the test unless OK.
func (r *Raw) Login(user, pass string) {
	r.t.Helper()
	r.OK("LOGIN %s %s", Quote(user), Quote(pass))
}

// Quote makes an IMAP quoted string.
func Quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
