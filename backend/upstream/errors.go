package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
)

// ErrClosed is returned by Do, Check and Watch's connection attempts once
// the pool has been closed.
var ErrClosed = errors.New("upstream connection pool closed")

// ErrorKind says which class of upstream failure an *Error is, so callers
// can pick a reply (and users a fix) without parsing text.
type ErrorKind int

const (
	// KindAuth: the server rejected the credentials.
	KindAuth ErrorKind = iota + 1
	// KindTLS: the TLS handshake failed, the certificate is not trusted,
	// the port speaks the other TLS mode, or STARTTLS is not offered.
	KindTLS
	// KindConnect: connection refused, host unreachable, DNS failure.
	KindConnect
	// KindTimeout: the server did not answer in time (dial, greeting,
	// login or a command while borrowed).
	KindTimeout
	// KindLoginDisabled: the server advertises LOGINDISABLED (no plaintext
	// login on this connection).
	KindLoginDisabled
	// KindPrivacyRequired: the server answered NO [PRIVACYREQUIRED].
	KindPrivacyRequired
	// KindProtocol: anything else the server said or did that is not IMAP
	// as expected (bad greeting, BYE, temporary refusal, BAD to a login).
	KindProtocol
	// KindDisconnected: an established connection was lost while in use
	// (server restart, network drop). The next Do reconnects.
	KindDisconnected
	// KindCredentials: the Password or Token callback failed (the password
	// file, password command or OAuth2 token command), so nothing was sent.
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
	case KindLoginDisabled:
		return "login-disabled"
	case KindPrivacyRequired:
		return "privacy-required"
	case KindProtocol:
		return "protocol"
	case KindDisconnected:
		return "disconnected"
	case KindCredentials:
		return "credentials"
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// Error is an upstream failure worded for a non-expert: Error() names
// host:port, what went wrong and what to change.
type Error struct {
	Kind ErrorKind
	Host string
	Port int
	// User is the login name, for KindAuth messages (never a secret).
	User string
	Err  error

	detail  string        // replaces the reason taken from Err, when set
	hint    string        // replaces the kind's default hint, when set
	timeout time.Duration // KindTimeout: the limit that passed
	op      string        // KindTimeout: what was being waited for
}

const (
	hintTLSPorts      = `port 993 is tls = "implicit", port 143 is tls = "starttls"`
	hintAppPass       = `Gmail and Microsoft 365 need an app password or OAuth2: auth = "xoauth2" with oauth2_token_command`
	hintToken         = `the token was refreshed once and still rejected: check oauth2_token_command, the user name and that IMAP access is enabled for the account`
	hintConnect       = `is the host and port right? is the server up?`
	hintNeedTLS       = `use tls = "implicit" (port 993) or tls = "starttls" (port 143)`
	hintCertUntrusted = `certificate verification is on: the server's certificate must be valid for the host name and signed by an authority this system trusts`
)

func (e *Error) addr() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.Port)) }

func (e *Error) reason() string {
	if e.detail != "" {
		return e.detail
	}
	return reasonOf(e.Err)
}

func (e *Error) Error() string {
	addr := e.addr()
	hint := func(def string) string {
		if e.hint != "" {
			return e.hint
		}
		return def
	}
	switch e.Kind {
	case KindAuth:
		return fmt.Sprintf("upstream %s rejected the login for %q: %s (%s)", addr, e.User, e.reason(), hint(hintAppPass))
	case KindTLS:
		return fmt.Sprintf("TLS with %s failed: %s (%s)", addr, e.reason(), hint(hintTLSPorts))
	case KindConnect:
		return fmt.Sprintf("cannot connect to %s: %s (%s)", addr, e.reason(), hint(hintConnect))
	case KindTimeout:
		op := e.op
		if op == "" {
			op = "an answer"
		}
		return fmt.Sprintf("upstream %s: no %s within %v (%s)", addr, op, e.timeout,
			hint("is the host and port right? a firewall may be dropping the connection, or the server is overloaded"))
	case KindLoginDisabled:
		return fmt.Sprintf("upstream %s refuses logins without TLS (it says LOGINDISABLED): %s", addr, hint(hintNeedTLS))
	case KindPrivacyRequired:
		return fmt.Sprintf("upstream %s refuses logins without TLS (it says PRIVACYREQUIRED: %s): %s", addr, e.reason(), hint(hintNeedTLS))
	case KindDisconnected:
		return fmt.Sprintf("upstream %s closed the connection: %s (%s)", addr, e.reason(),
			hint("the next request reconnects"))
	case KindCredentials:
		return fmt.Sprintf("cannot get the secret to log in to upstream %s as %q: %s (%s)", addr, e.User, e.reason(),
			hint("check password, password_file or password_command, or oauth2_token_command"))
	default:
		s := fmt.Sprintf("upstream %s: %s", addr, e.reason())
		if e.hint != "" {
			s += " (" + e.hint + ")"
		}
		return s
	}
}

func (e *Error) Unwrap() error { return e.Err }

// IsAuth reports whether err is (or wraps) an *Error of KindAuth.
func IsAuth(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindAuth
}

// reasonOf renders err briefly: an IMAP status reply as its code and text
// (without go-imap's "imap: NO" prefix), a refused connection as
// "connection refused", anything else as is.
func reasonOf(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		text := strings.TrimSpace(ie.Text)
		if text == "" {
			text = string(ie.Type)
		}
		if ie.Code != "" {
			return "[" + string(ie.Code) + "] " + text
		}
		return text
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("host name %q not found", dnsErr.Name)
		}
		return fmt.Sprintf("looking up host name %q failed: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server"
	}
	return err.Error()
}

// tlsDetail explains a TLS handshake error in plain words, and picks the
// hint: certificate problems are not fixed by changing the port.
func tlsDetail(err error) (detail, hint string) {
	var rec tls.RecordHeaderError
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var inv x509.CertificateInvalidError
	switch {
	case errors.As(err, &rec):
		return "the server answered in plaintext where TLS was expected", ""
	case errors.As(err, &host):
		return "the server's certificate is for a different host name: " + host.Error(), hintCertUntrusted
	case errors.As(err, &unknown):
		return "the server's certificate is not trusted (self-signed or unknown authority): " + unknown.Error(), hintCertUntrusted
	case errors.As(err, &inv):
		return "the server's certificate is invalid: " + inv.Error(), hintCertUntrusted
	case errors.As(err, &verr):
		return "the server's certificate is not trusted: " + verr.Err.Error(), hintCertUntrusted
	}
	return reasonOf(err), ""
}

// authFailure classifies a NO/BAD to LOGIN or AUTHENTICATE. Only KindAuth
// counts as a rejected password or token (and starts the back-off).
func authFailure(ie *imap.Error) ErrorKind {
	switch ie.Code {
	case imap.ResponseCodePrivacyRequired:
		return KindPrivacyRequired
	case imap.ResponseCodeUnavailable, imap.ResponseCodeServerBug, imap.ResponseCodeLimit, imap.ResponseCodeInUse:
		return KindProtocol
	}
	if strings.Contains(strings.ToLower(ie.Text), "too many") {
		// Gmail: "NO [ALERT] Too many simultaneous connections." is a
		// connection limit, not a wrong password.
		return KindProtocol
	}
	if ie.Type == imap.StatusResponseTypeBad {
		return KindProtocol
	}
	return KindAuth
}
