package server

import (
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
		session:   guardSession(sess, c.log),
		done:      make(chan struct{}),
		loginTag:  tag,
		loginText: "Logged in",
	}
	a.rd = &cmdReader{br: c.br, out: c.out, tr: c.tr, lenient: true, maxLit: gateMaxLiteral,
		stream: streamAppendMessage, check: checkFirstLine}
	// The inner server re-arms the read deadline for every command.
	c.nc.SetReadDeadline(time.Time{})
	if err := c.s.innerLn.push(a); err != nil {
		sess.Close()
		c.no(tag, "[UNAVAILABLE] Server is shutting down")
		return
	}
	<-a.done
}

// readState is where the client stream is, seen from the gate.
type readState int

const (
	rsBoundary   readState = iota // before a command: the gate reads the next one
	rsForward                     // handing the current command (a.fwd) to the inner server
	rsMsgPending                  // APPEND's synchronising literal announced: the inner server decides
	rsMsgLiteral                  // streaming APPEND's message literal
	rsMsgTail                     // the end of the APPEND line after the literal
	rsIdle                        // IDLE forwarded: the next line is its DONE
)

// authConn is the net.Conn the inner imapserver serves. Between the client
// and the inner server it is the gate every command passes (see gate.go):
//   - it turns the inner PREAUTH greeting into the tagged answer of LOGIN,
//   - it reads each command whole (lines and literals, except APPEND's
//     message, which is streamed), answers ID, CAPABILITY, LOGIN and
//     AUTHENTICATE itself, refuses what the inner server would answer with
//     [SERVERBUG] or a dropped connection, and hands the rest over with
//     its literals made non-synchronising,
//   - it notices when the inner server answered a command before reading
//     all of it and skips what is left, so both stay in step,
//   - it traces the session, and
//   - it tells the front door when the inner server is done (Close).
type authConn struct {
	c       *conn
	session imapserver.Session
	done    chan struct{}
	once    sync.Once

	// Write side, guarded by c.out.mu.
	greeted     bool
	greetBuf    []byte
	loginTag    string
	loginText   string
	caps        string // authenticated capabilities, from the inner greeting, plus ID
	curTag      string // the command being handed over or executed
	curName     string
	answered    bool // the inner server wrote curTag's tagged answer
	dropESearch bool // drop curTag's ESEARCH answer (SEARCH RETURN (SAVE))
	dropping    bool // inside a dropped response

	// Read side: used only by the inner server's reading goroutine.
	rd        *cmdReader
	rs        readState
	fwd       [][]byte  // rest of the current command for the inner server: lines and literals
	after     readState // state once fwd is handed over
	litLeft   int64     // APPEND's message literal: bytes not yet handed over
	litSync   bool      // APPEND's message literal is synchronising
	tailClose bool      // APPEND UTF8 (~{n}): ")" follows the literal
	rdTimeout atomic.Int64
}

var _ net.Conn = (*authConn)(nil)

func (a *authConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		switch a.rs {
		case rsBoundary:
			if err := a.nextCommand(); err != nil {
				return 0, err
			}
		case rsForward:
			if a.isAnswered() {
				if err := a.abandon(); err != nil {
					return 0, err
				}
				continue
			}
			for len(a.fwd) > 0 && len(a.fwd[0]) == 0 {
				a.fwd = a.fwd[1:]
			}
			if len(a.fwd) == 0 {
				a.rs = a.after
				continue
			}
			// One line or literal at a time: what imapserver has buffered
			// it reads, so a command it gives up on part way leaves the
			// rest here, to be skipped.
			n := copy(p, a.fwd[0])
			a.fwd[0] = a.fwd[0][n:]
			return n, nil
		case rsMsgPending:
			// The inner server either asked for the literal with "+" or
			// refused the command.
			if a.isAnswered() {
				a.rs = rsBoundary
			} else {
				a.rs = rsMsgLiteral
			}
		case rsMsgLiteral:
			if a.isAnswered() {
				if err := a.abandon(); err != nil {
					return 0, err
				}
				continue
			}
			if a.litLeft == 0 {
				a.rs = rsMsgTail
				continue
			}
			return a.passLiteral(p)
		case rsMsgTail:
			if err := a.appendTail(); err != nil {
				return 0, err
			}
		case rsIdle:
			if a.isAnswered() {
				a.rs = rsBoundary // IDLE refused: no DONE follows
				continue
			}
			if err := a.idleDone(); err != nil {
				return 0, err
			}
		}
	}
}

// isAnswered reports whether the inner server answered the current command.
func (a *authConn) isAnswered() bool {
	a.c.out.mu.Lock()
	defer a.c.out.mu.Unlock()
	return a.answered
}

// abandon skips what the client still sends of a command the inner server
// has already answered.
func (a *authConn) abandon() error {
	rs := a.rs
	if rs == rsForward {
		rs = a.after
	}
	a.fwd = nil
	a.rs = rsBoundary
	switch rs {
	case rsMsgPending:
		if a.litSync {
			return nil // never sent: no "+" came
		}
		fallthrough
	case rsMsgLiteral:
		if err := a.rd.skip(a.litLeft); err != nil {
			return err
		}
		a.litLeft = 0
		fallthrough
	case rsMsgTail:
		line, _, err := readLineClip(a.c.br, maxLine)
		if err != nil {
			return err
		}
		a.c.tr.client(append(line, '\r', '\n'))
		return a.skipRest(line)
	}
	return nil
}

// skipRest skips the rest of a command whose line was just read and
// ignored: the literals it announces without waiting, and their lines.
func (a *authConn) skipRest(line []byte) error {
	for {
		n, nonSync, _, ok := literalSpec(line)
		if !ok || !nonSync {
			return nil
		}
		if err := a.rd.skip(n); err != nil {
			return err
		}
		var err error
		if line, _, err = readLineClip(a.c.br, maxLine); err != nil {
			return err
		}
		a.c.tr.client(append(line, '\r', '\n'))
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
	return m, err
}

// appendTail reads what follows APPEND's message literal: the end of the
// line (or ")" for the UTF8 data extension). Anything else (MULTIAPPEND,
// not offered) is skipped: imapserver would store the message and then
// answer nothing at all.
func (a *authConn) appendTail() error {
	line, _, err := readLineClip(a.c.br, maxLine)
	if err != nil {
		return err
	}
	a.c.tr.client(append(line, '\r', '\n'))
	want := ""
	if a.tailClose {
		want = ")"
	}
	if got := string(line); got != want && got != want+" " {
		a.c.log.Debug("imap APPEND: data after the message literal ignored", "len", len(line))
		if err := a.skipRest(line); err != nil {
			return err
		}
	}
	a.fwd, a.rs, a.after = [][]byte{[]byte(want + "\r\n")}, rsForward, rsBoundary
	return nil
}

// idleDone reads the line that ends IDLE.
func (a *authConn) idleDone() error {
	line, _, err := readLineClip(a.c.br, maxLine)
	if err != nil {
		return err
	}
	a.c.tr.client(append(line, '\r', '\n'))
	if strings.EqualFold(string(line), "DONE") {
		a.fwd = [][]byte{[]byte("DONE\r\n")}
	} else {
		// imapserver answers BAD; the line itself is dropped.
		a.fwd = [][]byte{[]byte("\r\n")}
		if err := a.skipRest(line); err != nil {
			return err
		}
	}
	a.rs, a.after = rsForward, rsBoundary
	return nil
}

// nextCommand reads the next command and answers it or sets it up to be
// handed over.
func (a *authConn) nextCommand() error {
	c := a.c
	rc, err := a.rd.readCommand()
	if err != nil {
		c.readFailed(err)
		return err
	}
	g := a.gate(rc)
	if g.answer != "" {
		// A synchronising message literal refused is never sent; one sent
		// without waiting is skipped, with the rest of its command.
		if rc.stream != nil && rc.stream.nonSync {
			if err := a.rd.skip(rc.stream.size); err != nil {
				return err
			}
			line, _, err := readLineClip(c.br, maxLine)
			if err != nil {
				return err
			}
			c.tr.client(append(line, '\r', '\n'))
			if err := a.skipRest(line); err != nil {
				return err
			}
		}
		if err := c.out.write([]byte(g.answer)); err != nil {
			return err
		}
		if d := time.Duration(a.rdTimeout.Load()); d > 0 {
			c.nc.SetReadDeadline(time.Now().Add(d))
		}
		return nil
	}
	c.out.mu.Lock()
	a.curTag, a.curName, a.answered = g.tag, g.name, false
	a.dropESearch, a.dropping = g.saveOnly, false
	c.out.mu.Unlock()
	a.fwd, a.rs, a.after = g.forward, rsForward, rsBoundary
	switch {
	case rc.stream != nil:
		a.litLeft, a.litSync, a.tailClose = rc.stream.size, !rc.stream.nonSync, g.utf8Append
		a.after = rsMsgLiteral
		if a.litSync {
			a.after = rsMsgPending
		}
	case g.name == "IDLE":
		a.after = rsIdle
	}
	return nil
}

// interceptAnswer answers a command the front door handles itself after
// login.
func (a *authConn) interceptAnswer(rc *rawCommand) string {
	c := a.c
	cmd, err := parseCommand(rc)
	if err != nil {
		return tagOrStar(cmd.tag) + " BAD Syntax error: " + err.Error() + "\r\n"
	}
	switch cmd.name {
	case "ID":
		resp, bad := c.idResponse(cmd)
		if bad != "" {
			return cmd.tag + " BAD " + bad + "\r\n"
		}
		return resp
	case "CAPABILITY":
		if len(cmd.args) > 0 {
			return cmd.tag + " BAD CAPABILITY takes no arguments\r\n"
		}
		c.out.mu.Lock()
		caps := a.caps
		c.out.mu.Unlock()
		return "* CAPABILITY " + caps + "\r\n" + cmd.tag + " OK CAPABILITY completed\r\n"
	}
	// LOGIN, AUTHENTICATE
	return cmd.tag + " BAD Already authenticated\r\n"
}

// serverBugAnswer is what imapserver answers when a handler fails with an
// error that is not an *imap.Error. guardSession turns the session's
// errors into *imap.Error, so this comes from imapserver's parser (a
// malformed argument the gate let through) and is really a syntax error.
const serverBugAnswer = " NO [SERVERBUG] Internal server error\r\n"

func (a *authConn) Write(p []byte) (int, error) {
	out := a.c.out
	out.mu.Lock()
	defer out.mu.Unlock()
	if !a.greeted {
		return a.writeGreetingLocked(p)
	}
	// Every response is flushed on its own (a long one in several
	// writes, the last ending in CRLF), so a response starts a write.
	if a.dropping || a.dropESearch && bytes.HasPrefix(p, []byte(`* ESEARCH (TAG "`+a.curTag+`")`)) {
		a.dropESearch = false
		a.dropping = !bytes.HasSuffix(p, []byte("\r\n"))
		return len(p), nil
	}
	if t := a.curTag; t != "" && !a.answered && len(p) > len(t) && p[len(t)] == ' ' && string(p[:len(t)]) == t {
		a.answered = true
		if string(p[len(t):]) == serverBugAnswer {
			a.c.log.Warn("imap command argument rejected by the inner server's parser", "command", a.curName)
			b := []byte(t + " BAD Syntax error in the arguments of " + a.curName + "\r\n")
			if _, err := out.nc.Write(b); err != nil {
				return 0, err
			}
			out.tr.server(b)
			return len(p), nil
		}
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
