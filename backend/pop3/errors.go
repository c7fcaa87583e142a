package pop3

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// ErrAuth matches (errors.Is) an *Error of KindAuth: the server rejected
// the username or password, or an earlier rejection of the same password
// is still in force.
var ErrAuth = errors.New("POP3 login rejected")

// ErrorKind says which class of failure an *Error is.
type ErrorKind int

const (
	// KindAuth: the server rejected the username or password.
	KindAuth ErrorKind = iota + 1
	// KindTLS: handshake failure, untrusted certificate, the port speaks
	// the other TLS mode, or STLS is not offered.
	KindTLS
	// KindConnect: connection refused, host unreachable, DNS failure.
	KindConnect
	// KindTimeout: the server did not answer within the command timeout.
	KindTimeout
	// KindProtocol: the server said or did something unexpected (a bad
	// greeting, -ERR to a command that must work, mailbox locked).
	KindProtocol
	// KindDisconnected: the connection broke during a command.
	KindDisconnected
	// KindCredentials: the password callback (password_file,
	// password_command) failed; nothing was sent.
	KindCredentials
)

func (k ErrorKind) String() string {
	switch k {
	case KindAuth:
		return "auth"
	case KindTLS:
		return "tls"
	case KindConnect:
		return "connect"
	case KindTimeout:
		return "timeout"
	case KindProtocol:
		return "protocol"
	case KindDisconnected:
		return "disconnected"
	case KindCredentials:
		return "credentials"
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// Error is a POP3 failure worded for the user: it names the account and
// host:port, says what went wrong and, where there is one, what to change.
type Error struct {
	Kind    ErrorKind
	Account string
	Addr    string // host:port
	Detail  string // what went wrong, in words
	Hint    string // what to change; may be empty
	Err     error  // underlying error; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pop3 account %q (%s): %s", e.Account, e.Addr, e.Detail)
	if e.Hint != "" {
		b.WriteString("; " + e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAuth) true for KindAuth.
func (e *Error) Is(target error) bool { return target == ErrAuth && e.Kind == KindAuth }

const hintTLSPorts = `POP3 with TLS from the first byte is usually port 995 (tls = "implicit"); port 110 is plain POP3, upgraded with tls = "starttls"`

// reasonOf returns the innermost useful text of err.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	return err.Error()
}

// connectErr classifies a failed dial.
func (s *session) connectErr(err error) *Error {
	e := s.newErr(KindConnect, err)
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Detail = "connection refused: nothing listens on that port (is the server down, or the port wrong?)"
	case errors.As(err, &dnsErr):
		e.Detail = "cannot resolve host name: " + reasonOf(err)
		e.Hint = "check host"
	case isTimeout(err):
		e.Kind = KindTimeout
		e.Detail = fmt.Sprintf("no connection within %s: %s", s.timeout, reasonOf(err))
	default:
		e.Detail = "cannot connect: " + reasonOf(err)
	}
	return e
}

// tlsErr classifies a failed TLS handshake.
func (s *session) tlsErr(err error) *Error {
	e := s.newErr(KindTLS, err)
	var rec tls.RecordHeaderError
	var unk x509.UnknownAuthorityError
	var host x509.HostnameError
	var inv x509.CertificateInvalidError
	switch {
	case s.low.timedOut:
		e.Kind = KindTimeout
		e.Detail = fmt.Sprintf("no TLS handshake within %s", s.timeout)
		e.Hint = hintTLSPorts
	case errors.As(err, &rec) && looksLikePOP3(s.low.first):
		e.Detail = "the server answered in plain text, not TLS: this is a plain POP3 port"
		e.Hint = `use tls = "starttls" on this port, or the TLS port (usually 995) with tls = "implicit"`
	case errors.As(err, &rec):
		e.Detail = "the server does not speak TLS on this port"
		e.Hint = hintTLSPorts
	case errors.As(err, &unk):
		e.Detail = "the server's TLS certificate is not signed by a trusted authority: " + reasonOf(err)
	case errors.As(err, &host):
		e.Detail = "the server's TLS certificate is for another name: " + reasonOf(err)
		e.Hint = "use the host name the certificate names"
	case errors.As(err, &inv):
		e.Detail = "the server's TLS certificate is invalid: " + reasonOf(err)
	case s.low.nRead == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		e.Detail = "the server closed the connection during the TLS handshake"
		e.Hint = hintTLSPorts
	default:
		e.Detail = "TLS handshake failed: " + reasonOf(err)
	}
	return e
}

// greetingErr classifies a missing or bad greeting.
func (s *session) greetingErr(err error, line string) *Error {
	switch {
	case err == nil:
		e := s.newErr(KindProtocol, nil)
		e.Detail = "the server refused the connection: " + strconv.Quote(line)
		if !strings.HasPrefix(line, "-ERR") {
			e.Detail = "not a POP3 server (greeting " + strconv.Quote(truncate(line, 80)) + ")"
			e.Hint = "check host and port"
		}
		return e
	case s.mode != TLSImplicit && looksLikeTLS(s.low.first):
		e := s.newErr(KindTLS, err)
		e.Detail = "the server expects TLS from the first byte"
		e.Hint = `use tls = "implicit" for this port`
		return e
	case s.low.timedOut:
		e := s.newErr(KindTimeout, err)
		e.Detail = fmt.Sprintf("no POP3 greeting within %s", s.timeout)
		if s.mode != TLSImplicit {
			e.Hint = `if this port expects TLS from the first byte (usually 995), use tls = "implicit"`
		}
		return e
	case s.low.nRead == 0:
		e := s.newErr(KindProtocol, err)
		e.Detail = "the server closed the connection without a POP3 greeting"
		if s.mode != TLSImplicit {
			e.Hint = `it may expect TLS from the first byte: try tls = "implicit"`
		}
		return e
	}
	e := s.newErr(KindProtocol, err)
	e.Detail = "no valid POP3 greeting: " + reasonOf(err)
	return e
}

// stlsErr classifies a failed STLS command.
func (s *session) stlsErr(err error, line string) *Error {
	if err != nil {
		return s.lostErr("STLS", err)
	}
	e := s.newErr(KindTLS, nil)
	e.Detail = "the server does not offer STLS (it answered " + strconv.Quote(truncate(line, 80)) + ")"
	e.Hint = `use the TLS port (usually 995) with tls = "implicit"`
	return e
}

// lostErr classifies a transport failure during command op.
func (s *session) lostErr(op string, err error) *Error {
	if s.low.timedOut {
		e := s.newErr(KindTimeout, err)
		e.Detail = fmt.Sprintf("no answer to %s within %s", op, s.timeout)
		return e
	}
	if errors.Is(err, errTooLong) {
		e := s.newErr(KindProtocol, err)
		e.Detail = fmt.Sprintf("%s: %v", op, err)
		return e
	}
	if s.ctx.Err() != nil {
		e := s.newErr(KindDisconnected, s.ctx.Err())
		e.Detail = fmt.Sprintf("%s interrupted: %v", op, s.ctx.Err())
		return e
	}
	e := s.newErr(KindDisconnected, err)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		e.Detail = fmt.Sprintf("the server closed the connection during %s", op)
	} else {
		e.Detail = fmt.Sprintf("the connection broke during %s: %s", op, reasonOf(err))
	}
	return e
}

// respErr is a -ERR answer to a command that must succeed.
func (s *session) respErr(op string, err error) *Error {
	e := s.newErr(KindProtocol, err)
	e.Detail = fmt.Sprintf("the server refused %s: %s", op, strconv.Quote(err.Error()))
	return e
}

func (s *session) newErr(k ErrorKind, err error) *Error {
	return &Error{Kind: k, Account: s.acct.Name, Addr: s.addr, Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// looksLikeTLS reports whether b starts like a TLS record (handshake or
// alert), i.e. the server speaks TLS from the first byte.
func looksLikeTLS(b []byte) bool {
	return len(b) >= 3 && (b[0] == 0x16 || b[0] == 0x15) && b[1] == 0x03 && b[2] <= 0x04
}

func looksLikePOP3(b []byte) bool {
	return strings.HasPrefix(string(b), "+OK") || strings.HasPrefix(string(b), "-ERR")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
