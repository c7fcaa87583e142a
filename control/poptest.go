package control

// The old POP account's "Test connection". backend/pop3 has the fetcher's
// own connection code and wording, but no exported way to only log in;
// until it has one (pop3.Check), this is a short POP3 session of its own
// with the same classes of failure (auth, tls, connect, timeout, protocol,
// credentials, config) and plain words for each.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// popTestTimeout bounds connecting and each answer; popGreetingTimeout
// the greeting (a plain connection to a port that expects TLS from the
// first byte gets none).
const popTestTimeout = 20 * time.Second

var popGreetingTimeout = 10 * time.Second

// TestPOP implements API: it logs in (USER/PASS) and counts the mailbox
// (STAT), changing nothing on the server.
func (s *Service) TestPOP(ctx context.Context, t POPTest) (*POPResult, error) {
	start := time.Now()
	t.Host = strings.TrimSpace(t.Host)
	t.Username = strings.TrimSpace(t.Username)
	if t.TLS == "" {
		t.TLS = "implicit"
	}
	switch t.TLS {
	case "implicit", "starttls", "none":
	default:
		return nil, errorf(CodeBadRequest, "%q is not a security mode", t.TLS)
	}
	if t.Port == 0 {
		t.Port = 110
		if t.TLS == "implicit" {
			t.Port = 995
		}
	}
	if t.Host == "" || t.Username == "" {
		return nil, errorf(CodeBadRequest, "the POP server name and the user name are needed")
	}
	res := &POPResult{Host: t.Host, Port: t.Port}
	defer func() { res.Elapsed = time.Since(start) }()
	if t.TLS == "none" && !isLoopbackName(t.Host) {
		res.Kind, res.Detail = "config", fmt.Sprintf("without SSL/TLS or STARTTLS the password would cross the network in clear text to %s: choose SSL/TLS (usually port 995) or STARTTLS (port 110)", t.Host)
		return res, nil
	}
	pw := t.Password
	if pw == "" {
		if set, err := s.settings(); err == nil {
			for _, p := range set.POP3 {
				if strings.EqualFold(p.Host, t.Host) && p.Username == t.Username && p.PasswordSet {
					if pw, err = s.opts.Host.Secret(ctx, "pop3:"+p.Name); err != nil {
						res.Kind, res.Detail = "credentials", err.Error()
						return res, nil
					}
					break
				}
			}
		}
	}
	if pw == "" {
		res.Kind, res.Detail = "credentials", "no password given: type the password of the old POP account"
		return res, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*popTestTimeout)
	defer cancel()
	n, size, err := popCheck(ctx, t, pw)
	if err != nil {
		var pe *popTestError
		if errors.As(err, &pe) {
			res.Kind, res.Detail = pe.kind, pe.detail
		} else {
			res.Kind, res.Detail = "protocol", err.Error()
		}
		return res, nil
	}
	res.OK, res.Messages, res.Bytes = true, n, size
	return res, nil
}

func isLoopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// popTestError is a classified failure.
type popTestError struct{ kind, detail string }

func (e *popTestError) Error() string { return e.detail }

// popConn is one POP3 connection.
type popConn struct {
	raw   net.Conn
	conn  net.Conn
	r     *bufio.Reader
	first []byte // the first bytes the server sent (what port is this?)
}

func (c *popConn) line() (string, error) {
	return c.lineWithin(popTestTimeout)
}

func (c *popConn) lineWithin(d time.Duration) (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	l, err := c.r.ReadString('\n')
	if len(c.first) == 0 && len(l) > 0 {
		c.first = []byte(l)
	}
	if len(l) > 512 {
		l = l[:512]
	}
	return strings.TrimRight(l, "\r\n"), err
}

func (c *popConn) cmd(line string) (string, error) {
	c.conn.SetWriteDeadline(time.Now().Add(popTestTimeout))
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return "", err
	}
	return c.line()
}

// popCheck connects, logs in and reads STAT.
func popCheck(ctx context.Context, t POPTest, pw string) (messages int, size int64, err error) {
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	d := net.Dialer{Timeout: popTestTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, popDialErr(t, err)
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	c := &popConn{raw: raw, conn: raw}
	tlsCfg := &tls.Config{ServerName: t.Host, MinVersion: tls.VersionTLS12}
	handshake := func() error {
		tc := tls.Client(raw, tlsCfg)
		tc.SetDeadline(time.Now().Add(popTestTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			return popTLSErr(t, err, c.first)
		}
		tc.SetDeadline(time.Time{})
		c.conn, c.r = tc, bufio.NewReader(tc)
		return nil
	}
	if t.TLS == "implicit" {
		if err := handshake(); err != nil {
			return 0, 0, err
		}
	} else {
		c.r = bufio.NewReader(raw)
	}
	greeting, err := c.lineWithin(popGreetingTimeout)
	if err != nil {
		var ne net.Error
		switch {
		case t.TLS != "implicit" && len(c.first) >= 3 && (c.first[0] == 0x16 || c.first[0] == 0x15) && c.first[1] == 0x03:
			return 0, 0, &popTestError{"tls", "the server expects SSL/TLS from the first byte on this port: choose SSL/TLS"}
		case t.TLS != "implicit" && errors.As(err, &ne) && ne.Timeout():
			return 0, 0, &popTestError{"timeout", fmt.Sprintf("the server sent no greeting within %s: if this port expects SSL/TLS from the first byte (usually 995), choose SSL/TLS", popGreetingTimeout)}
		}
		return 0, 0, popLostErr("the greeting", err)
	}
	if !strings.HasPrefix(greeting, "+OK") {
		if strings.HasPrefix(greeting, "-ERR") {
			return 0, 0, &popTestError{"protocol", "the server refused the connection: " + strconv.Quote(greeting)}
		}
		return 0, 0, &popTestError{"protocol", "this is not a POP3 server (it said " + strconv.Quote(truncateText(greeting, 80)) + "): check the server name and the port"}
	}
	if t.TLS == "starttls" {
		l, err := c.cmd("STLS")
		if err != nil {
			return 0, 0, popLostErr("STLS", err)
		}
		if !strings.HasPrefix(l, "+OK") {
			return 0, 0, &popTestError{"tls", "the server does not offer STARTTLS (it answered " + strconv.Quote(truncateText(l, 80)) + "): choose SSL/TLS, usually port 995"}
		}
		if err := handshake(); err != nil {
			return 0, 0, err
		}
	}
	for _, step := range []struct{ cmd, show string }{{"USER " + t.Username, "USER"}, {"PASS " + pw, "PASS"}} {
		l, err := c.cmd(step.cmd)
		if err != nil {
			return 0, 0, popLostErr(step.show, err)
		}
		if !strings.HasPrefix(l, "+OK") {
			return 0, 0, &popTestError{"auth", fmt.Sprintf("the server refused the user name or password of %s: %s", t.Username, strconv.Quote(truncateText(l, 160)))}
		}
	}
	l, err := c.cmd("STAT")
	if err != nil {
		return 0, 0, popLostErr("STAT", err)
	}
	f := strings.Fields(l)
	if len(f) < 3 || f[0] != "+OK" {
		return 0, 0, &popTestError{"protocol", "the server answered STAT with " + strconv.Quote(truncateText(l, 80))}
	}
	messages, _ = strconv.Atoi(f[1])
	size, _ = strconv.ParseInt(f[2], 10, 64)
	c.cmd("QUIT")
	return messages, size, nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func popDialErr(t POPTest, err error) error {
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &popTestError{"connect", fmt.Sprintf("%s refused the connection on port %d: nothing listens there (is the port right?)", t.Host, t.Port)}
	case errors.As(err, &dnsErr):
		return &popTestError{"connect", fmt.Sprintf("the server name %s was not found: check it (and that this computer is online)", t.Host)}
	case errors.As(err, &ne) && ne.Timeout():
		return &popTestError{"timeout", fmt.Sprintf("no connection to %s on port %d within %s: check the server name and port; a firewall may be in the way", t.Host, t.Port, popTestTimeout)}
	}
	return &popTestError{"connect", fmt.Sprintf("cannot connect to %s on port %d: %v", t.Host, t.Port, err)}
}

func popTLSErr(t POPTest, err error, first []byte) error {
	var rec tls.RecordHeaderError
	var unk x509.UnknownAuthorityError
	var host x509.HostnameError
	var ne net.Error
	switch {
	case errors.As(err, &rec) && (strings.HasPrefix(string(rec.RecordHeader[:]), "+OK") || strings.HasPrefix(string(first), "+OK")):
		return &popTestError{"tls", "the server answered in plain text on this port: choose STARTTLS here, or SSL/TLS with port 995"}
	case errors.As(err, &rec):
		return &popTestError{"tls", "the server does not speak SSL/TLS on this port: check the security setting and the port"}
	case errors.As(err, &unk):
		return &popTestError{"tls", "the server's certificate is not signed by an authority this computer trusts: " + err.Error()}
	case errors.As(err, &host):
		return &popTestError{"tls", "the server's certificate is for another name: use the server name it names (" + err.Error() + ")"}
	case errors.As(err, &ne) && ne.Timeout():
		return &popTestError{"timeout", "no secure connection within " + popTestTimeout.String() + ": check the security setting and the port"}
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return &popTestError{"tls", "the server closed the connection during the secure handshake: check the security setting and the port"}
	}
	return &popTestError{"tls", "the secure connection failed: " + err.Error()}
}

func popLostErr(op string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &popTestError{"timeout", "the server did not answer " + op + " within " + popTestTimeout.String()}
	}
	if errors.Is(err, io.EOF) {
		return &popTestError{"protocol", "the server closed the connection during " + op}
	}
	return &popTestError{"protocol", "the connection broke during " + op + ": " + err.Error()}
}
