package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	gopop3 "github.com/knadh/go-pop3"
)

// A session is one POP3 connection: dialed, upgraded and greeted here,
// then driven through go-pop3's Conn.
//
// go-pop3 takes its connection from Opt.Dialer and reads the greeting
// itself, so the connection handed to it is ours: lowConn under any TLS
// (per-read and per-write deadlines, so every command has a timeout; the
// first bytes, to tell a TLS port from a plain one) and highConn over it
// (the greeting replayed after we read it ourselves, which is what makes
// STLS possible; a byte budget per command, so a server that sends
// endlessly cannot fill memory; the first transport error, to tell a
// broken connection from a -ERR answer).
type session struct {
	acct    *Account
	ctx     context.Context
	addr    string
	mode    string
	timeout time.Duration

	raw  net.Conn
	low  *lowConn
	high *highConn
	c    *gopop3.Conn
	stop func() bool // stops the context watcher
}

// errTooLong is a server sending more than a command may take.
var errTooLong = errors.New("the server sent more data than the message size it announced allows")

// lowConn sets a deadline on every read and write of the raw connection.
type lowConn struct {
	net.Conn
	timeout  time.Duration
	nRead    int64
	first    []byte // up to 16 first bytes read
	timedOut bool
}

func (c *lowConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Read(p)
	if len(c.first) < 16 && n > 0 {
		c.first = append(c.first, p[:min(n, 16-len(c.first))]...)
	}
	c.nRead += int64(n)
	if err != nil && isTimeout(err) {
		c.timedOut = true
	}
	return n, err
}

func (c *lowConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	n, err := c.Conn.Write(p)
	if err != nil && isTimeout(err) {
		c.timedOut = true
	}
	return n, err
}

// highConn is what go-pop3 reads and writes: plaintext, after TLS.
type highConn struct {
	net.Conn
	pre   []byte // replayed before reading from Conn (the greeting)
	limit int64  // bytes the current command may still read; <0: no limit
	err   error  // first transport error
}

func (c *highConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.limit == 0 {
		c.err = errTooLong
		return 0, c.err
	}
	if c.limit > 0 && int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.Conn.Read(p)
	if c.limit > 0 {
		c.limit -= int64(n)
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *highConn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// fixedDialer hands go-pop3 the connection we prepared.
type fixedDialer struct{ c net.Conn }

func (d fixedDialer) Dial(string, string) (net.Conn, error) { return d.c, nil }

// dial connects, does TLS as configured, reads the greeting and returns a
// session ready for login. ctx cancels everything (the connection is
// closed).
func dial(ctx context.Context, a *Account) (*session, error) {
	s := &session{
		acct:    a,
		ctx:     ctx,
		addr:    net.JoinHostPort(a.Host, strconv.Itoa(a.Port)),
		mode:    a.TLS,
		timeout: a.Timeout,
	}
	d := net.Dialer{Timeout: s.timeout}
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.connectErr(err)
	}
	s.raw = raw
	s.stop = context.AfterFunc(ctx, func() { raw.Close() })
	s.low = &lowConn{Conn: raw, timeout: s.timeout}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()

	var conn net.Conn = s.low
	if s.mode == TLSImplicit {
		tc := tls.Client(s.low, s.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, s.ctxOr(s.tlsErr(err))
		}
		conn = tc
	}
	greeting, err := readLine(conn)
	if err != nil || !strings.HasPrefix(greeting, "+OK") {
		return nil, s.ctxOr(s.greetingErr(err, greeting))
	}
	if s.mode == TLSStartTLS {
		if _, err := conn.Write([]byte("STLS\r\n")); err != nil {
			return nil, s.ctxOr(s.lostErr("STLS", err))
		}
		line, err := readLine(conn)
		if err != nil || !strings.HasPrefix(line, "+OK") {
			return nil, s.ctxOr(s.stlsErr(err, line))
		}
		tc := tls.Client(s.low, s.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, s.ctxOr(s.tlsErr(err))
		}
		conn = tc
	}
	s.high = &highConn{Conn: conn, pre: []byte(greeting + "\r\n"), limit: -1}
	c, err := gopop3.New(gopop3.Opt{Host: a.Host, Port: a.Port, Dialer: fixedDialer{s.high}}).NewConn()
	if err != nil {
		return nil, s.ctxOr(s.greetingErr(err, ""))
	}
	s.c = c
	ok = true
	return s, nil
}

// ctxOr returns ctx's error if it ended (the failure is its consequence),
// else err.
func (s *session) ctxOr(err error) error {
	if s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	return err
}

func (s *session) tlsConfig() *tls.Config {
	var cfg *tls.Config
	if s.acct.TLSConfig != nil {
		cfg = s.acct.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.acct.Host
	}
	return cfg
}

// readLine reads one CRLF- or LF-terminated line byte by byte, so that
// nothing after it is consumed (after STLS the TLS handshake follows).
func readLine(c net.Conn) (string, error) {
	var line []byte
	var b [1]byte
	for len(line) < 1024 {
		n, err := c.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				return strings.TrimRight(string(line), "\r"), nil
			}
			line = append(line, b[0])
		}
		if err != nil {
			return string(line), err
		}
	}
	return string(line), errors.New("line longer than 1024 bytes")
}

// close drops the connection without QUIT: the server forgets any DELE.
func (s *session) close() {
	if s.stop != nil {
		s.stop()
	}
	if s.raw != nil {
		s.raw.Close()
	}
}

// do runs one go-pop3 call with the byte budget limit (<0: none),
// returning an *Error for a transport failure and respErr (or nil) for a
// -ERR answer.
func (s *session) do(op string, limit int64, fn func() error) (transport error, resp error) {
	s.high.limit = limit
	err := fn()
	s.high.limit = -1
	if err == nil {
		return nil, nil
	}
	if s.high.err != nil {
		return s.ctxOr(s.lostErr(op, s.high.err)), nil
	}
	return nil, err
}

// login sends USER and PASS.
func (s *session) login(user, pass string) error {
	for _, step := range []struct {
		op  string
		arg string
		fn  func(string) error
	}{{"USER", user, s.c.User}, {"PASS", pass, s.c.Pass}} {
		terr, resp := s.do(step.op, 64<<10, func() error { return step.fn(step.arg) })
		if terr != nil {
			return terr
		}
		if resp != nil {
			return s.authErr(step.op, resp)
		}
	}
	return nil
}

// loginXOAUTH2 authenticates with an OAuth2 access token (AUTH XOAUTH2,
// RFC 5034 with Google's and Microsoft's mechanism): the command, the
// server's "+" continuation, then the base64 initial response. A rejected
// token may come back as a "+ <base64 JSON>" challenge, answered with an
// empty line, after which the server says -ERR. go-pop3 does not know
// continuations, so this talks to the connection directly, a line at a
// time (nothing is left buffered for go-pop3).
func (s *session) loginXOAUTH2(user, token string) error {
	s.high.limit = 64 << 10
	defer func() { s.high.limit = -1 }()
	send := func(op, line string) error {
		if _, err := s.high.Write([]byte(line + "\r\n")); err != nil {
			return s.ctxOr(s.lostErr(op, err))
		}
		return nil
	}
	read := func(op string) (string, error) {
		line, err := readLine(s.high)
		if err != nil {
			return "", s.ctxOr(s.lostErr(op, err))
		}
		return line, nil
	}
	const op = "AUTH XOAUTH2"
	if err := send(op, op); err != nil {
		return err
	}
	line, err := read(op)
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "-ERR") {
		e := s.newErr(KindAuth, errors.New(line))
		e.Detail = fmt.Sprintf("the server does not accept OAuth2 sign-in (AUTH XOAUTH2 answered %s)", strconv.Quote(line))
		e.Hint = "is POP enabled for this mailbox? (Outlook.com and Microsoft 365: Settings > Mail > Forwarding and IMAP; Gmail: Settings > Forwarding and POP/IMAP)"
		return e
	}
	if !strings.HasPrefix(line, "+") || strings.HasPrefix(line, "+OK") {
		e := s.newErr(KindProtocol, errors.New(line))
		e.Detail = fmt.Sprintf("unexpected answer to AUTH XOAUTH2: %s", strconv.Quote(line))
		return e
	}
	ir := base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
	if err := send(op, ir); err != nil {
		return err
	}
	if line, err = read(op); err != nil {
		return err
	}
	detail := ""
	if strings.HasPrefix(line, "+") && !strings.HasPrefix(line, "+OK") {
		// The error challenge: {"status":"401",…}.
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "+"))); err == nil {
			detail = strings.TrimSpace(string(b))
		}
		if err := send(op, ""); err != nil {
			return err
		}
		if line, err = read(op); err != nil {
			return err
		}
	}
	if strings.HasPrefix(line, "+OK") {
		return nil
	}
	e := s.newErr(KindAuth, errors.New(line))
	e.Detail = fmt.Sprintf("the server rejected the OAuth2 token (%s)", strconv.Quote(line))
	if detail != "" && len(detail) < 300 {
		e.Detail += " " + detail
	}
	e.Hint = "sign in again (popbridge login) if this persists; check that the username is the mailbox's address"
	return e
}

// authErr classifies a -ERR to USER or PASS (RFC 2449 / RFC 3206 codes).
func (s *session) authErr(op string, resp error) *Error {
	text := resp.Error()
	up := strings.ToUpper(text)
	switch {
	case strings.HasPrefix(up, "[IN-USE]"):
		e := s.newErr(KindProtocol, resp)
		e.Detail = "the mailbox is in use by another POP3 session (" + strconv.Quote(text) + ")"
		e.Hint = "is the old mail program still fetching from it? popbridge tries again later"
		return e
	case strings.HasPrefix(up, "[SYS/"):
		e := s.newErr(KindProtocol, resp)
		e.Detail = "the server cannot log in right now (" + strconv.Quote(text) + ")"
		return e
	case strings.HasPrefix(up, "[LOGIN-DELAY]"):
		e := s.newErr(KindProtocol, resp)
		e.Detail = "the server asks to log in less often (" + strconv.Quote(text) + ")"
		e.Hint = "raise interval for this [[pop3]] account"
		return e
	}
	e := s.newErr(KindAuth, resp)
	e.Detail = fmt.Sprintf("the server rejected the username or password (%s answered %s)", op, strconv.Quote(text))
	e.Hint = "check username and the password (password, password_file or password_command)"
	return e
}

// msgInfo is one message of the maildrop in this session.
type msgInfo struct {
	num  int
	size int64
	uidl string
}

// list returns the maildrop (LIST) with UIDLs when the server has UIDL;
// hasUIDL is false when it answers -ERR to UIDL.
func (s *session) list() (msgs []msgInfo, hasUIDL bool, err error) {
	var list []gopop3.MessageID
	terr, resp := s.do("LIST", -1, func() (err error) { list, err = s.c.List(0); return err })
	if terr != nil {
		return nil, false, terr
	}
	if resp != nil {
		return nil, false, s.respErr("LIST", resp)
	}
	var uidls []gopop3.MessageID
	terr, resp = s.do("UIDL", -1, func() (err error) { uidls, err = s.c.Uidl(0); return err })
	if terr != nil {
		return nil, false, terr
	}
	byNum := map[int]string{}
	for _, u := range uidls {
		byNum[u.ID] = u.UID
	}
	hasUIDL = resp == nil
	for _, m := range list {
		mi := msgInfo{num: m.ID, size: int64(m.Size)}
		if hasUIDL {
			mi.uidl = byNum[m.ID]
			if mi.uidl == "" {
				e := s.newErr(KindProtocol, nil)
				e.Detail = fmt.Sprintf("UIDL lists no unique id for message %d", m.ID)
				return nil, false, e
			}
		}
		msgs = append(msgs, mi)
	}
	return msgs, hasUIDL, nil
}

// top returns the header block of message num (TOP num 0); ok is false
// when the server refuses TOP.
func (s *session) top(m msgInfo) (hdr []byte, ok bool, err error) {
	var buf *bytes.Buffer
	terr, resp := s.do("TOP", s.budget(m.size), func() (err error) { buf, err = s.c.Cmd("TOP", true, m.num, 0); return err })
	if terr != nil {
		return nil, false, terr
	}
	if resp != nil {
		return nil, false, nil
	}
	return buf.Bytes(), true, nil
}

// retr downloads message m whole, into one buffer sized from its LIST
// size, undoing dot-stuffing and keeping the bytes otherwise as sent.
//
// This one command bypasses go-pop3, whose RETR collects the message line
// by line into a growing bytes.Buffer (several times the message size in
// garbage and capacity: a 16 MB message raised RSS by 160 MB). Sharing
// the connection is sound because POP3 is lock-step and the server sends
// nothing unasked: go-pop3's reader holds no buffered bytes between
// commands, and neither does ours after the terminating "." line (checked).
func (s *session) retr(m msgInfo) ([]byte, error) {
	op := fmt.Sprintf("RETR %d", m.num)
	s.high.limit = s.budget(m.size)
	defer func() { s.high.limit = -1 }()
	if _, err := s.high.Write([]byte(op + "\r\n")); err != nil {
		return nil, s.ctxOr(s.lostErr(op, err))
	}
	br := bufio.NewReaderSize(s.high, 32<<10)
	status, err := br.ReadSlice('\n')
	if err != nil {
		if s.high.err != nil {
			return nil, s.ctxOr(s.lostErr(op, s.high.err))
		}
		e := s.newErr(KindProtocol, err)
		e.Detail = fmt.Sprintf("the answer to %s is not a POP3 status line", op)
		return nil, e
	}
	line := strings.TrimRight(string(status), "\r\n")
	if !strings.HasPrefix(line, "+OK") {
		text := strings.TrimSpace(strings.TrimPrefix(line, "-ERR"))
		return nil, s.respErr(op, errors.New(text))
	}
	msg, err := readDotted(br, m.size)
	if err != nil {
		if s.high.err != nil {
			return nil, s.ctxOr(s.lostErr(op, s.high.err))
		}
		return nil, s.ctxOr(s.lostErr(op, err))
	}
	if br.Buffered() > 0 {
		e := s.newErr(KindProtocol, nil)
		e.Detail = fmt.Sprintf("the server sent %d unexpected bytes after message %d", br.Buffered(), m.num)
		return nil, e
	}
	return msg, nil
}

// maxPrealloc caps the buffer allocated up front from a LIST size.
const maxPrealloc = 256 << 20

// readDotted reads a POP3 multi-line body up to the "." line, removing
// the stuffed leading dot of other lines (RFC 1939 section 3).
func readDotted(br *bufio.Reader, sizeHint int64) ([]byte, error) {
	buf := make([]byte, 0, min(max(sizeHint, 0)+sizeHint/64+64, maxPrealloc))
	lineStart := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if lineStart && len(line) > 0 && line[0] == '.' {
			rest := line[1:]
			if err == nil && (string(rest) == "\r\n" || string(rest) == "\n") {
				return buf, nil
			}
			line = rest
		}
		buf = append(buf, line...)
		lineStart = err == nil
	}
}

// budget is how many bytes a RETR or TOP of a message LIST says is size
// may read: dot-stuffing at most doubles it, plus the status line and some
// slack for servers whose LIST sizes are approximate.
func (s *session) budget(size int64) int64 {
	return 2*size + 1<<20
}

func (s *session) dele(num int) error {
	op := fmt.Sprintf("DELE %d", num)
	terr, resp := s.do(op, 64<<10, func() error { return s.c.Dele(num) })
	if terr != nil {
		return terr
	}
	if resp != nil {
		return s.respErr(op, resp)
	}
	return nil
}

// quit ends the session; only then does the server carry out DELEs.
func (s *session) quit() error {
	terr, resp := s.do("QUIT", 64<<10, s.c.Quit)
	s.close()
	if terr != nil {
		return terr
	}
	if resp != nil {
		return s.respErr("QUIT", resp)
	}
	return nil
}
