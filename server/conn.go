package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

const (
	maxBadCommands  = 10 // BAD answers in a row before BYE
	maxAuthFailures = 5  // failed logins on one connection before BYE

	lingerTimeout = 2 * time.Second
)

// connWriter is the single write path to a client. Its mutex serialises
// the front door's writes with the inner server's after login.
type connWriter struct {
	mu sync.Mutex
	nc net.Conn // current connection (TCP or TLS)
	tr *tracer
}

func (w *connWriter) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(b)
}

func (w *connWriter) writeLocked(b []byte) error {
	w.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, err := w.nc.Write(b)
	w.nc.SetWriteDeadline(time.Time{})
	w.tr.server(b[:n])
	return err
}

// conn is one client connection in the NOT-AUTHENTICATED state.
type conn struct {
	s       *Server
	log     *slog.Logger
	tcp     net.Conn // the accepted connection
	nc      net.Conn // tcp, or the TLS connection on top of it
	br      *bufio.Reader
	out     *connWriter
	rd      *cmdReader
	tr      *tracer
	isTLS   bool
	trusted bool

	badRun    int // BAD answers in a row
	authFails int
}

// serveConn runs one connection until it ends. It never panics.
func (s *Server) serveConn(tcp net.Conn, implicitTLS bool) {
	defer s.untrack(tcp)
	defer lingerClose(tcp)
	id := s.nextID.Add(1)
	log := s.log.With("conn", id, "remote", tcp.RemoteAddr().String())
	defer func() {
		if v := recover(); v != nil {
			log.Error("panic in imap connection", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()

	c := &conn{
		s:       s,
		log:     log,
		tcp:     tcp,
		nc:      tcp,
		tr:      s.newTracer(id),
		trusted: s.trustedAddr(tcp.RemoteAddr()),
	}
	if implicitTLS {
		tc := tls.Server(tcp, s.opts.TLSConfig)
		tcp.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := tc.Handshake(); err != nil {
			log.Debug("imaps handshake failed", "err", err)
			return
		}
		tcp.SetDeadline(time.Time{})
		c.nc = tc
		c.isTLS = true
	}
	c.br = bufio.NewReader(c.nc)
	c.out = &connWriter{nc: c.nc, tr: c.tr}
	c.rd = &cmdReader{br: c.br, out: c.out, tr: c.tr}
	c.run()
}

// lingerClose half-closes tcp and reads what the client still sends for a
// moment before closing, so that a final BYE is not lost to a TCP reset
// caused by unread input.
func lingerClose(tcp net.Conn) {
	if tc, ok := tcp.(*net.TCPConn); ok && tc.CloseWrite() == nil {
		tc.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.CopyN(io.Discard, tc, 64*1024)
	}
	tcp.Close()
}

func (c *conn) authAllowed() bool { return c.isTLS || c.trusted }

// capabilities is the pre-auth capability list.
func (c *conn) capabilities() string {
	caps := append([]string(nil), c.s.preCaps...)
	if !c.isTLS && c.s.opts.TLSConfig != nil {
		caps = append(caps, "STARTTLS")
	}
	if c.authAllowed() {
		caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN")
	} else {
		caps = append(caps, "LOGINDISABLED")
	}
	return strings.Join(caps, " ")
}

func (c *conn) run() {
	if c.out.write([]byte("* OK [CAPABILITY "+c.capabilities()+"] popbridge ready\r\n")) != nil {
		return
	}
	for first := true; ; first = false {
		c.nc.SetReadDeadline(time.Now().Add(preAuthReadTimeout))
		if first && !c.isTLS {
			// A TLS ClientHello on the cleartext port: the client is set
			// to use SSL/TLS on port 143. Nothing we write can be read.
			if b, err := c.br.Peek(1); err == nil && b[0] == 0x16 {
				c.log.Info("tls handshake on the cleartext imap port; configure the client for STARTTLS here or use the IMAPS port")
				return
			}
		}
		rc, err := c.rd.readCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		if foreignProtocol(rc.segs[0].line) {
			c.log.Info("non-imap client (http/smtp) on the imap port; closing")
			c.out.write([]byte("* BYE This is an IMAP server\r\n"))
			return
		}
		if !c.handle(rc) {
			return
		}
	}
}

// readFailed ends a connection after a failed read, telling the client
// why when it can still listen.
func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errLineTooLong):
		c.out.write([]byte("* BYE Command line too long\r\n"))
	case errors.Is(err, errLiteralTooLarge):
		c.out.write([]byte("* BYE Literal too large\r\n"))
	case errors.As(err, &ne) && ne.Timeout():
		c.out.write([]byte("* BYE Autologout; idle for too long\r\n"))
	default:
		c.log.Debug("imap connection read ended", "err", err)
	}
}

// foreignProtocol reports whether a first line is HTTP or SMTP speaking to
// us (cross-protocol attacks: a browser made to POST to the IMAP port).
func foreignProtocol(line []byte) bool {
	f := bytes.Fields(line)
	if len(f) == 0 {
		return false
	}
	switch strings.ToUpper(string(f[0])) {
	case "HELO", "EHLO", "LHLO":
		return true
	}
	switch string(f[0]) {
	case "GET", "POST", "PUT", "HEAD", "OPTIONS", "CONNECT", "DELETE", "PATCH", "TRACE":
		return len(f) >= 2
	}
	return bytes.Contains(line, []byte(" HTTP/1.")) || bytes.Contains(line, []byte(" HTTP/2"))
}

// imapCommands are commands of the later states, answered with "not
// allowed before authentication" instead of "unknown command".
var imapCommands = map[string]bool{
	"SELECT": true, "EXAMINE": true, "CREATE": true, "DELETE": true, "RENAME": true,
	"SUBSCRIBE": true, "UNSUBSCRIBE": true, "LIST": true, "LSUB": true, "STATUS": true,
	"APPEND": true, "CHECK": true, "CLOSE": true, "EXPUNGE": true, "SEARCH": true,
	"FETCH": true, "STORE": true, "COPY": true, "MOVE": true, "UID": true, "IDLE": true,
	"NAMESPACE": true, "ENABLE": true, "UNSELECT": true, "UNAUTHENTICATE": true,
	"GETQUOTA": true, "GETQUOTAROOT": true, "SETQUOTA": true, "GETACL": true,
	"MYRIGHTS": true, "LISTRIGHTS": true, "GETMETADATA": true, "SETMETADATA": true,
	"XLIST": true, "COMPRESS": true, "SORT": true, "THREAD": true, "ESEARCH": true,
}

// handle answers one pre-auth command; false ends the connection.
func (c *conn) handle(rc *rawCommand) bool {
	if rc.refused != "" {
		return c.bad(firstTag(rc.segs[0].line), rc.refused)
	}
	cmd, err := parseCommand(rc)
	if err != nil {
		return c.bad(cmd.tag, "Syntax error: "+err.Error())
	}
	switch cmd.name {
	case "CAPABILITY":
		if len(cmd.args) > 0 {
			return c.bad(cmd.tag, "CAPABILITY takes no arguments")
		}
		return c.ok("* CAPABILITY " + c.capabilities() + "\r\n" + cmd.tag + " OK CAPABILITY completed\r\n")
	case "NOOP":
		if len(cmd.args) > 0 {
			return c.bad(cmd.tag, "NOOP takes no arguments")
		}
		return c.ok(cmd.tag + " OK NOOP completed\r\n")
	case "LOGOUT":
		c.out.write([]byte("* BYE Logging out\r\n" + cmd.tag + " OK LOGOUT completed\r\n"))
		return false
	case "ID":
		resp, badText := c.idResponse(cmd)
		if badText != "" {
			return c.bad(cmd.tag, badText)
		}
		return c.ok(resp)
	case "STARTTLS":
		return c.startTLS(cmd)
	case "LOGIN":
		return c.handleLogin(cmd)
	case "AUTHENTICATE":
		return c.handleAuthenticate(cmd)
	}
	if imapCommands[cmd.name] {
		return c.bad(cmd.tag, "Command not allowed before authentication")
	}
	c.log.Debug("unknown imap command before login", "command", truncate(cmd.name, 32))
	return c.bad(cmd.tag, "Unknown command")
}

// ok writes a successful answer and resets the BAD counter.
func (c *conn) ok(resp string) bool {
	c.badRun = 0
	return c.out.write([]byte(resp)) == nil
}

// no writes a tagged NO; it neither counts nor resets the BAD run.
func (c *conn) no(tag, text string) bool {
	return c.out.write([]byte(tagOrStar(tag)+" NO "+text+"\r\n")) == nil
}

// bad writes a tagged BAD; after maxBadCommands in a row it says BYE.
func (c *conn) bad(tag, text string) bool {
	c.badRun++
	resp := tagOrStar(tag) + " BAD " + text + "\r\n"
	if c.badRun >= maxBadCommands {
		c.log.Info("too many bad imap commands; closing")
		c.out.write([]byte(resp + "* BYE Too many invalid commands\r\n"))
		return false
	}
	return c.out.write([]byte(resp)) == nil
}

func tagOrStar(tag string) string {
	if tag == "" {
		return "*"
	}
	return tag
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (c *conn) startTLS(cmd command) bool {
	if len(cmd.args) > 0 {
		return c.bad(cmd.tag, "STARTTLS takes no arguments")
	}
	if c.isTLS {
		return c.bad(cmd.tag, "TLS is already active")
	}
	if c.s.opts.TLSConfig == nil {
		return c.no(cmd.tag, "STARTTLS is not available")
	}
	if !c.ok(cmd.tag + " OK Begin TLS negotiation now\r\n") {
		return false
	}
	if c.br.Buffered() > 0 {
		// Bytes sent after STARTTLS but before the handshake would be
		// injected into the TLS session (CVE-2011-0411 class).
		c.log.Warn("client sent data after STARTTLS before the TLS handshake; closing")
		return false
	}
	tc := tls.Server(c.tcp, c.s.opts.TLSConfig)
	c.tcp.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		c.log.Debug("starttls handshake failed", "err", err)
		return false
	}
	c.tcp.SetDeadline(time.Time{})
	c.nc = tc
	c.isTLS = true
	c.br.Reset(tc)
	c.out.mu.Lock()
	c.out.nc = tc
	c.out.mu.Unlock()
	return true
}
