package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		n    int
		base time.Duration // before jitter
	}{
		{-3, time.Second},
		{0, time.Second},
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{6, 32 * time.Second},
		{9, 256 * time.Second},
		{10, 5 * time.Minute}, // 512 s, capped
		{20, 5 * time.Minute},
		{63, 5 * time.Minute},
		{1 << 30, 5 * time.Minute},
	}
	for _, tt := range tests {
		lo := time.Duration(float64(tt.base) * 0.8)
		hi := min(time.Duration(float64(tt.base)*1.2), 5*time.Minute)
		seen := map[time.Duration]bool{}
		for range 500 {
			d := Backoff(tt.n)
			if d < lo || d > hi {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", tt.n, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(%d): only %d distinct values in 500 calls: no jitter?", tt.n, len(seen))
		}
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST", true},
		{"localhost.", true},
		{"imap.localhost", true},
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"imap.example.com", false},
		{"localhost.example.com", false},
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"128.0.0.1", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.host); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	pw := password("x")
	tok := func(context.Context, bool) (string, error) { return "t", nil }
	tests := []struct {
		name string
		opts Options
		want string // substring of the error; "" = valid
	}{
		{"defaults", Options{Host: "imap.example.com", Username: "me", Password: pw}, ""},
		{"none on loopback", Options{Host: "127.0.0.1", TLS: TLSNone, Username: "me", Password: pw}, ""},
		{"none on [::1]", Options{Host: "[::1]", TLS: TLSNone, Username: "me", Password: pw}, ""},
		{"none on a remote host", Options{Host: "imap.example.com", TLS: TLSNone, Username: "me", Password: pw},
			`tls = "none" sends the password in plaintext and is only allowed for a loopback host`},
		{"none on a LAN address", Options{Host: "192.168.1.5", TLS: TLSNone, Username: "me", Password: pw}, `not "192.168.1.5"`},
		{"unknown tls", Options{Host: "h", TLS: "ssl", Username: "me", Password: pw}, `unknown tls mode "ssl"`},
		{"unknown auth", Options{Host: "h", Auth: "cram-md5", Username: "me", Password: pw}, `unknown auth mechanism "cram-md5"`},
		{"no host", Options{Username: "me", Password: pw}, "host is empty"},
		{"no user", Options{Host: "h", Password: pw}, "user name is empty"},
		{"no password", Options{Host: "h", Username: "me"}, "needs a password"},
		{"no token command", Options{Host: "h", Username: "me", Auth: AuthXOAuth2, Password: pw}, "needs oauth2_token_command"},
		{"token", Options{Host: "h", Username: "me", Auth: AuthOAuthBearer, Token: tok}, ""},
		{"bad port", Options{Host: "h", Port: 70000, Username: "me", Password: pw}, "port 70000 out of range"},
		{"negative max", Options{Host: "h", MaxConnections: -1, Username: "me", Password: pw}, "max_connections -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				p.Close()
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want error containing %q", tt.want)
			}
			mustContain(t, err.Error(), tt.want)
		})
	}
}

func TestNewDefaults(t *testing.T) {
	p, err := New(Options{Host: "imap.example.com", Username: "me", Password: password("x")})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	o := p.opts
	if o.Port != 993 || o.TLS != TLSImplicit || o.Auth != AuthPlain || o.MaxConnections != 4 ||
		o.DialTimeout != 15*time.Second || o.CommandTimeout != 2*time.Minute {
		t.Errorf("defaults: %+v", o)
	}
	if p.tls.ServerName != "imap.example.com" || p.tls.MinVersion != tls.VersionTLS12 || p.tls.InsecureSkipVerify {
		t.Errorf("TLS config: ServerName %q, MinVersion %x, InsecureSkipVerify %v", p.tls.ServerName, p.tls.MinVersion, p.tls.InsecureSkipVerify)
	}
	p2, err := New(Options{Host: "imap.example.com", TLS: TLSStartTLS, Username: "me", Password: password("x"),
		TLSConfig: &tls.Config{ServerName: "other.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if p2.opts.Port != 143 || p2.tls.ServerName != "other.example.com" || p2.tls.MinVersion != tls.VersionTLS12 {
		t.Errorf("starttls: port %d, ServerName %q, MinVersion %x", p2.opts.Port, p2.tls.ServerName, p2.tls.MinVersion)
	}
}

func TestErrorMessages(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	notFound := &net.DNSError{Err: "no such host", Name: "imap.exmaple.com", IsNotFound: true}
	authNo := &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials (Failure)"}
	base := func(kind ErrorKind, err error) *Error {
		return &Error{Kind: kind, Host: "imap.example.com", Port: 993, User: "me@example.com", Err: err}
	}
	timeout := base(KindTimeout, os.ErrDeadlineExceeded)
	timeout.op, timeout.timeout = "TCP connection", 15*time.Second
	tests := []struct {
		err  *Error
		want string
	}{
		{base(KindAuth, authNo), `upstream imap.example.com:993 rejected the login for "me@example.com": [AUTHENTICATIONFAILED] Invalid credentials (Failure) (Gmail and Microsoft 365 need an app password or OAuth2: auth = "xoauth2" with oauth2_token_command)`},
		{base(KindConnect, refused), `cannot connect to imap.example.com:993: connection refused (is the host and port right? is the server up?)`},
		{base(KindConnect, notFound), `cannot connect to imap.example.com:993: host name "imap.exmaple.com" not found (is the host and port right? is the server up?)`},
		{timeout, `upstream imap.example.com:993: no TCP connection within 15s (is the host and port right? a firewall may be dropping the connection, or the server is overloaded)`},
		{base(KindLoginDisabled, errors.New("x")), `upstream imap.example.com:993 refuses logins without TLS (it says LOGINDISABLED): use tls = "implicit" (port 993) or tls = "starttls" (port 143)`},
		{base(KindPrivacyRequired, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "TLS is required"}),
			`upstream imap.example.com:993 refuses logins without TLS (it says PRIVACYREQUIRED: [PRIVACYREQUIRED] TLS is required): use tls = "implicit" (port 993) or tls = "starttls" (port 143)`},
		{base(KindTLS, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), `TLS with imap.example.com:993 failed: tls: first record does not look like a TLS handshake (port 993 is tls = "implicit", port 143 is tls = "starttls")`},
		{base(KindProtocol, errors.New("in response: cannot read tag")), `upstream imap.example.com:993: in response: cannot read tag`},
		{base(KindDisconnected, errors.New("unexpected EOF")), `upstream imap.example.com:993 closed the connection: unexpected EOF (the next request reconnects)`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%v error:\n got %s\nwant %s", tt.err.Kind, got, tt.want)
		}
		if !errors.Is(tt.err, tt.err.Err) {
			t.Errorf("%v: Unwrap does not reach Err", tt.err.Kind)
		}
	}
	wrapped := fmt.Errorf("copy: %w", base(KindAuth, authNo))
	if !IsAuth(wrapped) || IsAuth(base(KindTLS, nil)) || IsAuth(errors.New("x")) || IsAuth(nil) {
		t.Error("IsAuth misclassifies")
	}
}

func TestAuthFailureKinds(t *testing.T) {
	tests := []struct {
		err  imap.Error
		want ErrorKind
	}{
		{imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Authentication failed."}, KindAuth},
		{imap.Error{Type: imap.StatusResponseTypeNo, Text: "[ALERT] Application-specific password required"}, KindAuth},
		{imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeExpired, Text: "Password expired"}, KindAuth},
		{imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "TLS first"}, KindPrivacyRequired},
		{imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Temporary authentication failure"}, KindProtocol},
		{imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlert, Text: "Too many simultaneous connections. (Failure)"}, KindProtocol},
		{imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"}, KindProtocol},
	}
	for _, tt := range tests {
		if got := authFailure(&tt.err); got != tt.want {
			t.Errorf("authFailure(%v) = %v, want %v", &tt.err, got, tt.want)
		}
	}
}

func TestLooksLikeTLS(t *testing.T) {
	for _, tt := range []struct {
		b    string
		want bool
	}{
		{"\x15\x03\x03\x00\x02", true}, // alert
		{"\x16\x03\x01\x00\xa5", true}, // handshake
		{"* OK", false},
		{"\x15", false},
		{"", false},
	} {
		if got := looksLikeTLS([]byte(tt.b)); got != tt.want {
			t.Errorf("looksLikeTLS(%q) = %v", tt.b, got)
		}
	}
}
