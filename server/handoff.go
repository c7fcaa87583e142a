package server

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
)

// handoff gives an authenticated connection to the inner imapserver and
// waits until that is done with it.
func (c *conn) handoff(tag string, sess imapserver.Session) {
	a := &authConn{
		c:         c,
		session:   sess,
		done:      make(chan struct{}),
		loginTag:  tag,
		loginText: "Logged in",
	}
	// The inner server re-arms the read deadline for every command.
	c.nc.SetReadDeadline(time.Time{})
	if err := c.s.innerLn.push(a); err != nil {
		sess.Close()
		c.no(tag, "[UNAVAILABLE] Server is shutting down")
		return
	}
	<-a.done
}

// readState is where the client stream is, seen from the front door.
type readState int

const (
	rsBoundary   readState = iota // at the start of a command (or IDLE's DONE line)
	rsLine                        // inside a command line
	rsLiteral                     // inside a literal
	rsLitPending                  // a synchronising literal was announced; the server decides
)

type litDecision int

const (
	litUndecided litDecision = iota
	litAccepted
	litRejected
)

// maxPeek bounds how far ahead the tag and command name are looked for.
const maxPeek = 128

// authConn is the net.Conn the inner imapserver serves. It
//   - turns the inner PREAUTH greeting into the tagged answer of LOGIN,
//   - follows command boundaries in what the client sends and answers ID,
//     CAPABILITY, LOGIN and AUTHENTICATE itself,
//   - traces the session, and
//   - tells the front door when the inner server is done (Close).
type authConn struct {
	c       *conn
	session imapserver.Session
	done    chan struct{}
	once    sync.Once

	// Write side, guarded by c.out.mu.
	greeted   bool
	greetBuf  []byte
	loginTag  string
	loginText string
	caps      string // authenticated capabilities, from the inner greeting, plus ID

	// Read side: used only by the inner server's reading goroutine.
	rs        readState
	litLeft   int64
	tail      []byte // end of the current line, to spot "{n}"
	idleAfter bool   // the current line is "tag IDLE"
	idleNext  bool   // the next line is IDLE's DONE: pass it through
	rdTimeout atomic.Int64

	litMu       sync.Mutex
	litPending  bool
	litDecision litDecision
}

var _ net.Conn = (*authConn)(nil)

func (a *authConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	br := a.c.br
	for {
		switch a.rs {
		case rsBoundary:
			if a.idleNext {
				a.idleNext = false
				a.startLine(false)
				continue
			}
			name, term, err := peekCommand(br)
			if err != nil {
				if br.Buffered() == 0 {
					return 0, err
				}
				a.startLine(false) // hand over what there is; the error comes next
				continue
			}
			switch name {
			case "ID", "CAPABILITY", "LOGIN", "AUTHENTICATE":
				if err := a.intercept(); err != nil {
					return 0, err
				}
				continue
			}
			a.startLine(name == "IDLE" && term != '(')
		case rsLine:
			return a.passLine(p)
		case rsLiteral:
			if a.litLeft == 0 {
				a.startLine(a.idleAfter)
				continue
			}
			return a.passLiteral(p)
		case rsLitPending:
			a.litMu.Lock()
			d := a.litDecision
			a.litPending = false
			a.litMu.Unlock()
			if d == litRejected {
				a.rs = rsBoundary
			} else {
				// Accepted, or the client sent the literal without waiting.
				a.rs = rsLiteral
			}
		}
	}
}

func (a *authConn) startLine(idle bool) {
	a.rs = rsLine
	a.tail = a.tail[:0]
	a.idleAfter = idle
}

// passLine hands the inner server bytes up to the end of the current line.
func (a *authConn) passLine(p []byte) (int, error) {
	br := a.c.br
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return 0, err
		}
	}
	b, _ := br.Peek(min(br.Buffered(), len(p)))
	eol := false
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
		eol = true
	}
	n := copy(p, b)
	br.Discard(n)
	a.tail = append(a.tail, p[:n]...)
	if len(a.tail) > 64 {
		a.tail = append(a.tail[:0], a.tail[len(a.tail)-64:]...)
	}
	a.c.tr.client(p[:n])
	if eol {
		a.endLine()
	}
	return n, nil
}

// endLine decides what follows a complete line.
func (a *authConn) endLine() {
	line := bytes.TrimSuffix(bytes.TrimSuffix(a.tail, []byte("\n")), []byte("\r"))
	n, nonSync, _, ok := literalSpec(line)
	switch {
	case ok && nonSync:
		a.rs, a.litLeft = rsLiteral, n
	case ok:
		a.litMu.Lock()
		a.litPending, a.litDecision = true, litUndecided
		a.litMu.Unlock()
		a.rs, a.litLeft = rsLitPending, n
	default:
		a.rs = rsBoundary
		a.idleNext = a.idleAfter
		a.idleAfter = false
	}
}

func (a *authConn) passLiteral(p []byte) (int, error) {
	br := a.c.br
	n := int(min(int64(len(p)), a.litLeft))
	if br.Buffered() > 0 {
		n = min(n, br.Buffered())
	}
	m, err := br.Read(p[:n])
	a.litLeft -= int64(m)
	a.c.tr.client(p[:m])
	if a.litLeft == 0 {
		// The command line goes on after the literal.
		a.startLine(a.idleAfter)
	}
	return m, err
}

// peekCommand looks at the start of the next command without consuming
// it and returns its upper-case name ("" when it does not look like
// "tag SP name") and the byte after the name.
func peekCommand(br *bufio.Reader) (name string, term byte, err error) {
	inName := false
	nameStart := 0
	for k := 1; k <= maxPeek; k++ {
		b, err := br.Peek(k)
		if err != nil {
			return "", 0, err
		}
		ch := b[k-1]
		if !inName {
			if ch == ' ' && k > 1 {
				inName, nameStart = true, k
				continue
			}
			if !isTagChar(ch) {
				return "", ch, nil
			}
			continue
		}
		if ch == ' ' || ch == '\r' || ch == '\n' || ch == '(' {
			return strings.ToUpper(string(b[nameStart : k-1])), ch, nil
		}
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z') {
			return "", ch, nil
		}
	}
	return "", 0, nil
}

// intercept reads and answers a command the front door handles itself
// after login.
func (a *authConn) intercept() error {
	c := a.c
	rc, err := c.rd.readCommand()
	if err != nil {
		c.readFailed(err)
		return err
	}
	var resp string
	if rc.refused != "" {
		resp = tagOrStar(firstTag(rc.segs[0].line)) + " BAD " + rc.refused + "\r\n"
	} else if cmd, err := parseCommand(rc); err != nil {
		resp = tagOrStar(cmd.tag) + " BAD Syntax error: " + err.Error() + "\r\n"
	} else {
		switch cmd.name {
		case "ID":
			var bad string
			if resp, bad = c.idResponse(cmd); bad != "" {
				resp = cmd.tag + " BAD " + bad + "\r\n"
			}
		case "CAPABILITY":
			if len(cmd.args) > 0 {
				resp = cmd.tag + " BAD CAPABILITY takes no arguments\r\n"
				break
			}
			c.out.mu.Lock()
			caps := a.caps
			c.out.mu.Unlock()
			resp = "* CAPABILITY " + caps + "\r\n" + cmd.tag + " OK CAPABILITY completed\r\n"
		default: // LOGIN, AUTHENTICATE
			resp = cmd.tag + " BAD Already authenticated\r\n"
		}
	}
	if err := c.out.write([]byte(resp)); err != nil {
		return err
	}
	if d := time.Duration(a.rdTimeout.Load()); d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
	return nil
}

func (a *authConn) Write(p []byte) (int, error) {
	out := a.c.out
	out.mu.Lock()
	defer out.mu.Unlock()
	if !a.greeted {
		return a.writeGreetingLocked(p)
	}
	if len(p) > 0 {
		a.litMu.Lock()
		if a.litPending && a.litDecision == litUndecided {
			// The server's first answer to "{n}": a continuation request
			// accepts the literal, anything else refuses it.
			if p[0] == '+' {
				a.litDecision = litAccepted
			} else {
				a.litDecision = litRejected
			}
		}
		a.litMu.Unlock()
	}
	n, err := out.nc.Write(p)
	out.tr.server(p[:n])
	return n, err
}

// writeGreetingLocked swallows the inner server's "* PREAUTH" greeting and
// writes the tagged answer of the LOGIN/AUTHENTICATE command instead, with
// the capabilities the inner server advertised.
func (a *authConn) writeGreetingLocked(p []byte) (int, error) {
	a.greetBuf = append(a.greetBuf, p...)
	i := bytes.Index(a.greetBuf, []byte("\r\n"))
	if i < 0 {
		if len(a.greetBuf) > 64*1024 {
			return 0, errors.New("server: inner greeting too long")
		}
		return len(p), nil
	}
	line, rest := string(a.greetBuf[:i]), a.greetBuf[i+2:]
	a.greeted, a.greetBuf = true, nil
	const prefix = "* PREAUTH [CAPABILITY "
	var resp []byte
	if end := strings.IndexByte(line, ']'); strings.HasPrefix(line, prefix) && end > len(prefix) {
		a.caps = line[len(prefix):end]
		if !hasCap(a.caps, "ID") {
			a.caps += " ID"
		}
		resp = []byte(a.loginTag + " OK [CAPABILITY " + a.caps + "] " + a.loginText + "\r\n")
	} else {
		// Not expected: let the client see it.
		a.c.log.Error("unexpected greeting from the inner imap server", "line", truncate(line, 200))
		resp = []byte(line + "\r\n")
	}
	resp = append(resp, rest...)
	n, err := a.c.out.nc.Write(resp)
	a.c.out.tr.server(resp[:n])
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func hasCap(caps, c string) bool {
	for _, f := range strings.Fields(caps) {
		if strings.EqualFold(f, c) {
			return true
		}
	}
	return false
}

// Close is called by the inner server when it is done with the
// connection, as the very last thing it does.
func (a *authConn) Close() error {
	err := a.c.nc.Close()
	a.once.Do(func() { close(a.done) })
	return err
}

func (a *authConn) LocalAddr() net.Addr  { return a.c.nc.LocalAddr() }
func (a *authConn) RemoteAddr() net.Addr { return a.c.nc.RemoteAddr() }

func (a *authConn) SetDeadline(t time.Time) error {
	a.noteReadDeadline(t)
	return a.c.nc.SetDeadline(t)
}

func (a *authConn) SetReadDeadline(t time.Time) error {
	a.noteReadDeadline(t)
	return a.c.nc.SetReadDeadline(t)
}

func (a *authConn) SetWriteDeadline(t time.Time) error {
	return a.c.nc.SetWriteDeadline(t)
}

// noteReadDeadline remembers the inner server's read timeout, to re-arm it
// after answering an intercepted command.
func (a *authConn) noteReadDeadline(t time.Time) {
	if t.IsZero() {
		a.rdTimeout.Store(0)
		return
	}
	a.rdTimeout.Store(int64(time.Until(t)))
}

// memListener feeds authenticated connections to the inner imapserver.
type memListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMemListener() *memListener {
	return &memListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) push(c net.Conn) error {
	select {
	case l.ch <- c:
		return nil
	case <-l.closed:
		return net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "popbridge-authenticated" }
