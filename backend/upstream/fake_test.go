package upstream

// Tests against go-imap's own server (for SASL mechanisms and TLS policies
// Dovecot is not configured for here) and against scripted servers that
// misbehave on purpose.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

// tokenServer is the server side of XOAUTH2 and OAUTHBEARER: it checks the
// client's exact bytes (prefix + token + suffix), accepts only good, and
// rejects anything else the RFC 7628 way: a JSON error challenge, then the
// client's dummy response, then NO.
type tokenServer struct {
	prefix, suffix string
	dummy          []byte
	good           string
	seen           func(token string)
	ok             func()
	failed         bool
	badAfterError  bool // answer the client's reply to the error challenge with BAD, like a server that wants an empty line, not "="
}

func (s *tokenServer) Next(resp []byte) ([]byte, bool, error) {
	if s.failed {
		if s.badAfterError {
			return nil, true, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Invalid SASL argument"}
		}
		if string(resp) != string(s.dummy) {
			return nil, true, &imap.Error{Type: imap.StatusResponseTypeBad, Text: fmt.Sprintf("expected %q after the error challenge, got %q", s.dummy, resp)}
		}
		return nil, true, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials (Failure)"}
	}
	if resp == nil {
		return []byte{}, false, nil // no SASL-IR: ask for the initial response
	}
	r := string(resp)
	if !strings.HasPrefix(r, s.prefix) || !strings.HasSuffix(r, s.suffix) || len(r) < len(s.prefix)+len(s.suffix) {
		return nil, true, &imap.Error{Type: imap.StatusResponseTypeBad, Text: fmt.Sprintf("malformed initial response %q, want %q+token+%q", r, s.prefix, s.suffix)}
	}
	tok := r[len(s.prefix) : len(r)-len(s.suffix)]
	s.seen(tok)
	if tok == s.good {
		s.ok()
		return nil, true, nil
	}
	s.failed = true
	return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
}

// saslSession is an imapmemserver session that also speaks XOAUTH2 and
// OAUTHBEARER for one user.
type saslSession struct {
	*imapmemserver.UserSession // nil until logged in
	fx                         *fakeServer
}

func (s *saslSession) Login(username, password string) error {
	if err := s.fx.user.Login(username, password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(s.fx.user)
	return nil
}

func (s *saslSession) Close() error {
	if s.UserSession != nil {
		return s.UserSession.Close()
	}
	return nil
}

func (s *saslSession) AuthenticateMechanisms() []string {
	return []string{XOAUTH2, sasl.OAuthBearer}
}

func (s *saslSession) Authenticate(mech string) (sasl.Server, error) {
	ts := &tokenServer{
		good: s.fx.goodToken,
		seen: func(tok string) {
			s.fx.mu.Lock()
			s.fx.tokens = append(s.fx.tokens, mech+":"+tok)
			s.fx.mu.Unlock()
		},
		ok:            func() { s.UserSession = imapmemserver.NewUserSession(s.fx.user) },
		badAfterError: s.fx.badAfterError.Load(),
	}
	switch mech {
	case XOAUTH2:
		ts.prefix, ts.suffix, ts.dummy = "user="+s.fx.userName+"\x01auth=Bearer ", "\x01\x01", []byte{}
	case sasl.OAuthBearer:
		ts.prefix = fmt.Sprintf("n,a=%s,\x01host=127.0.0.1\x01port=%d\x01auth=Bearer ", s.fx.userName, s.fx.port)
		ts.suffix, ts.dummy = "\x01\x01", []byte{0x01}
	default:
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "unsupported mechanism " + mech}
	}
	return ts, nil
}

type fakeServer struct {
	port      int
	userName  string
	user      *imapmemserver.User
	goodToken string

	badAfterError atomic.Bool

	mu     sync.Mutex
	tokens []string // "MECH:token" in the order the server saw them
}

func (fx *fakeServer) seenTokens() []string {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return append([]string(nil), fx.tokens...)
}

// startFakeServer runs go-imap's imapserver on loopback with a user
// "alice" / "pw" (INBOX exists) that can also log in with goodToken.
func startFakeServer(t *testing.T, insecureAuth, sasl bool) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fx := &fakeServer{
		port:      ln.Addr().(*net.TCPAddr).Port,
		userName:  "alice",
		user:      imapmemserver.NewUser("alice", "pw"),
		goodToken: "fresh-token",
	}
	if err := fx.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem := imapmemserver.New()
	mem.AddUser(fx.user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if sasl {
				return &saslSession{fx: fx}, nil, nil
			}
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: insecureAuth,
		Logger:       log.New(io.Discard, "", 0),
	})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fx
}

// tokenFunc hands out tokens in order and records the refresh flags.
type tokenFunc struct {
	mu       sync.Mutex
	tokens   []string
	refresh  []bool
	failWith error
}

func (f *tokenFunc) get(_ context.Context, refresh bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refresh = append(f.refresh, refresh)
	if f.failWith != nil {
		return "", f.failWith
	}
	tok := f.tokens[0]
	if len(f.tokens) > 1 {
		f.tokens = f.tokens[1:]
	}
	return tok, nil
}

func (f *tokenFunc) calls() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.refresh...)
}

func TestOAuth2(t *testing.T) {
	for _, mech := range []AuthMech{AuthXOAuth2, AuthOAuthBearer} {
		wire := XOAUTH2
		if mech == AuthOAuthBearer {
			wire = sasl.OAuthBearer
		}
		t.Run(string(mech)+" refreshes an expired token", func(t *testing.T) {
			fx := startFakeServer(t, true, true)
			tf := &tokenFunc{tokens: []string{"expired-token", "fresh-token"}}
			p, dials := newTestPool(t, Options{Host: "127.0.0.1", Port: fx.port, TLS: TLSNone, Username: "alice", Auth: mech, Token: tf.get})
			if err := p.Check(context.Background()); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got, want := fmt.Sprint(fx.seenTokens()), fmt.Sprint([]string{wire + ":expired-token", wire + ":fresh-token"}); got != want {
				t.Errorf("server saw %s, want %s", got, want)
			}
			if got := fmt.Sprint(tf.calls()); got != "[false true]" {
				t.Errorf("Token calls (refresh flags) = %s, want [false true]", got)
			}
			if idle := peekIdle(p); len(idle) != 1 || idle[0].authVia != "AUTHENTICATE "+wire {
				t.Errorf("logged in via %q, want AUTHENTICATE %s", idle[0].authVia, wire)
			}
			// The connection (one dial: the retry used the same one) works.
			err := p.Do(context.Background(), func(c *imapclient.Client) error {
				_, err := c.Select("INBOX", nil).Wait()
				return err
			})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if n, _, _ := dials.counts(); n != 1 {
				t.Errorf("dials = %d, want 1", n)
			}
		})
		t.Run(string(mech)+" rejected after one refresh", func(t *testing.T) {
			fx := startFakeServer(t, true, true)
			tf := &tokenFunc{tokens: []string{"bad-1", "bad-2", "bad-3"}}
			p, dials := newTestPool(t, Options{Host: "127.0.0.1", Port: fx.port, TLS: TLSNone, Username: "alice", Auth: mech, Token: tf.get})
			err := p.Check(context.Background())
			asError(t, err, KindAuth)
			mustContain(t, err.Error(), `rejected the login for "alice"`, "AUTHENTICATIONFAILED", "refreshed once", "token status 401")
			if strings.Contains(err.Error(), "bad-") {
				t.Errorf("message leaks a token: %q", err)
			}
			if got := fmt.Sprint(tf.calls()); got != "[false true]" {
				t.Errorf("Token calls = %s, want [false true]", got)
			}
			// Back-off: no new attempt, no new token.
			if err2 := p.Check(context.Background()); !IsAuth(err2) {
				t.Errorf("second Check = %v, want the auth error", err2)
			}
			if n, _, _ := dials.counts(); n != 1 || len(tf.calls()) != 2 || len(fx.seenTokens()) != 2 {
				t.Errorf("dials %d, token calls %d, tokens seen %d; want 1, 2, 2", n, len(tf.calls()), len(fx.seenTokens()))
			}
		})
	}
	t.Run("xoauth2 server answers BAD after the error challenge", func(t *testing.T) {
		fx := startFakeServer(t, true, true)
		fx.badAfterError.Store(true)
		tf := &tokenFunc{tokens: []string{"expired-token", "fresh-token"}}
		p, _ := newTestPool(t, Options{Host: "127.0.0.1", Port: fx.port, TLS: TLSNone, Username: "alice", Auth: AuthXOAuth2, Token: tf.get})
		if err := p.Check(context.Background()); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if got := fmt.Sprint(tf.calls()); got != "[false true]" {
			t.Errorf("Token calls = %s, want [false true]", got)
		}
	})
	t.Run("token command fails", func(t *testing.T) {
		fx := startFakeServer(t, true, true)
		tf := &tokenFunc{failWith: errors.New(`oauth2_token_command "get-token": exit status 1`)}
		p, _ := newTestPool(t, Options{Host: "127.0.0.1", Port: fx.port, TLS: TLSNone, Username: "alice", Auth: AuthXOAuth2, Token: tf.get})
		err := p.Check(context.Background())
		asError(t, err, KindCredentials)
		mustContain(t, err.Error(), "get-token", "exit status 1", "oauth2_token_command")
		if len(fx.seenTokens()) != 0 {
			t.Errorf("server saw tokens %v", fx.seenTokens())
		}
	})
}

func TestPlainFallsBackToLogin(t *testing.T) {
	// The SASL session offers only XOAUTH2 and OAUTHBEARER, no AUTH=PLAIN.
	fx := startFakeServer(t, true, true)
	p, _ := newTestPool(t, Options{Host: "localhost", Port: fx.port, TLS: TLSNone, Username: "alice", Password: password("pw")})
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if idle := peekIdle(p); len(idle) != 1 || idle[0].authVia != "LOGIN" {
		t.Errorf("logged in via %q, want LOGIN", idle[0].authVia)
	}
}

func TestRefusesLoginWithoutTLS(t *testing.T) {
	tests := []struct {
		name string
		auth AuthMech
		sasl bool
		kind ErrorKind
		word string
	}{
		{"plain sees LOGINDISABLED", AuthPlain, false, KindLoginDisabled, "LOGINDISABLED"},
		{"login sees LOGINDISABLED", AuthLogin, false, KindLoginDisabled, "LOGINDISABLED"},
		{"xoauth2 gets PRIVACYREQUIRED", AuthXOAuth2, true, KindPrivacyRequired, "PRIVACYREQUIRED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := startFakeServer(t, false, tt.sasl)
			tf := &tokenFunc{tokens: []string{"fresh-token"}}
			p, _ := newTestPool(t, Options{Host: "127.0.0.1", Port: fx.port, TLS: TLSNone, Username: "alice",
				Auth: tt.auth, Password: password("pw"), Token: tf.get})
			err := p.Check(context.Background())
			asError(t, err, tt.kind)
			mustContain(t, err.Error(), "refuses logins without TLS", tt.word, `tls = "implicit"`, `tls = "starttls"`)
			// Not a password problem: no back-off.
			if p.authBlocked() != nil {
				t.Error("login blocked after a TLS policy refusal")
			}
		})
	}
}

func TestStartTLSNotOffered(t *testing.T) {
	fx := startFakeServer(t, true, false) // no TLSConfig: no STARTTLS
	p, _ := newTestPool(t, Options{Host: "127.0.0.1", Port: fx.port, TLS: TLSStartTLS, Username: "alice", Password: password("pw")})
	err := p.Check(context.Background())
	asError(t, err, KindTLS)
	mustContain(t, err.Error(), "does not offer STARTTLS", `port 993 is tls = "implicit"`)
}

// scriptedServer is a minimal IMAP server: it greets (unless silent),
// answers LOGIN, CAPABILITY and LOGOUT, and never answers NOOP. Each NOOP
// it receives is reported on noops.
type scriptedServer struct {
	port  int
	noops chan struct{}

	mu   sync.Mutex
	cmds []string // command names in the order received
}

func (s *scriptedServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func startScriptedServer(t *testing.T, greet bool) *scriptedServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{port: ln.Addr().(*net.TCPAddr).Port, noops: make(chan struct{}, 10)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s.serve(c, greet)
			}()
		}
	}()
	return s
}

func (s *scriptedServer) serve(c net.Conn, greet bool) {
	if !greet {
		io.Copy(io.Discard, c)
		return
	}
	io.WriteString(c, "* OK [CAPABILITY IMAP4rev1] scripted\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		cmd, _, _ := strings.Cut(rest, " ")
		s.mu.Lock()
		s.cmds = append(s.cmds, strings.ToUpper(cmd))
		s.mu.Unlock()
		switch strings.ToUpper(cmd) {
		case "SELECT":
			io.WriteString(c, "* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n"+tag+" OK [READ-WRITE] selected\r\n")
		case "LOGIN":
			io.WriteString(c, tag+" OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n")
		case "CAPABILITY":
			io.WriteString(c, "* CAPABILITY IMAP4rev1 IDLE\r\n"+tag+" OK done\r\n")
		case "LOGOUT":
			io.WriteString(c, "* BYE bye\r\n"+tag+" OK done\r\n")
			return
		case "NOOP":
			s.noops <- struct{}{}
		default:
			io.WriteString(c, tag+" BAD unknown\r\n")
		}
	}
}

func TestCommandTimeout(t *testing.T) {
	s := startScriptedServer(t, true)
	p, dials := newTestPool(t, Options{Host: "127.0.0.1", Port: s.port, TLS: TLSNone, Username: "alice", Password: password("pw"),
		CommandTimeout: 300 * time.Millisecond})
	start := time.Now()
	err := p.Do(context.Background(), func(c *imapclient.Client) error { return c.Noop().Wait() })
	e := asError(t, err, KindTimeout)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Do took %v", d)
	}
	mustContain(t, e.Error(), "upstream 127.0.0.1:"+strconv.Itoa(s.port), "within 300ms")
	// The stuck connection is gone: the next Do dials a fresh one.
	err = p.Do(context.Background(), func(*imapclient.Client) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n, open, _ := dials.counts(); n != 2 || open != 1 {
		t.Errorf("dials = %d, open = %d; want 2, 1", n, open)
	}
}

func TestCancelDuringCommand(t *testing.T) {
	s := startScriptedServer(t, true)
	p, dials := newTestPool(t, Options{Host: "127.0.0.1", Port: s.port, TLS: TLSNone, Username: "alice", Password: password("pw")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- p.Do(ctx, func(c *imapclient.Client) error { return c.Noop().Wait() })
	}()
	recv(t, s.noops, "the NOOP to reach the server")
	cancel()
	err := recv(t, errc, "Do to return after cancel")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
	if _, open, _ := dials.counts(); open != 0 {
		t.Errorf("open connections = %d, want 0 (the interrupted one is dropped)", open)
	}
}

func TestGreetingTimeout(t *testing.T) {
	s := startScriptedServer(t, false)
	p, _ := newTestPool(t, Options{Host: "127.0.0.1", Port: s.port, TLS: TLSNone, Username: "alice", Password: password("pw"),
		DialTimeout: 200 * time.Millisecond})
	err := p.Check(context.Background())
	asError(t, err, KindTimeout)
	mustContain(t, err.Error(), "127.0.0.1:"+strconv.Itoa(s.port), "no IMAP greeting within 200ms", `tls = "implicit"`)
}

func TestCredentialsFailure(t *testing.T) {
	s := startScriptedServer(t, true)
	p, _ := newTestPool(t, Options{Host: "127.0.0.1", Port: s.port, TLS: TLSNone, Username: "alice",
		Password: func(context.Context) (string, error) {
			return "", errors.New(`read password_file "/nope": no such file`)
		}})
	err := p.Check(context.Background())
	asError(t, err, KindCredentials)
	mustContain(t, err.Error(), `"alice"`, "password_file", "/nope")
}

// Dovecot delays logins from an address that just failed one (its auth
// penalty), so what happens after the back-off is tested here.
func TestAuthBackoffExpires(t *testing.T) {
	fx := startFakeServer(t, true, false)
	var mu sync.Mutex
	pw, calls := "wrong", 0
	p, dials := newTestPool(t, Options{Host: "127.0.0.1", Port: fx.port, TLS: TLSNone, Username: "alice",
		Password: func(context.Context) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			return pw, nil
		}})
	expire := func() {
		p.mu.Lock()
		p.authUntil = time.Now()
		p.mu.Unlock()
	}
	e1 := asError(t, p.Check(context.Background()), KindAuth)
	if err := p.Check(context.Background()); err != error(e1) {
		t.Fatalf("Check during back-off = %v, want the same *Error", err)
	}
	// Still wrong after the back-off: a new attempt, a longer back-off.
	expire()
	start := time.Now()
	e2 := asError(t, p.Check(context.Background()), KindAuth)
	if e2 == e1 {
		t.Error("second failure returned the first *Error: no new attempt")
	}
	p.mu.Lock()
	fails, until := p.authFails, p.authUntil
	p.mu.Unlock()
	if fails != 2 || until.Sub(start) < 1600*time.Millisecond {
		t.Errorf("after 2 failures: authFails %d, blocked for %v; want 2, ≥ 1.6 s", fails, until.Sub(start))
	}
	// Fixed password: the next attempt after the back-off logs in.
	mu.Lock()
	pw = "pw"
	mu.Unlock()
	expire()
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("Check with the right password: %v", err)
	}
	p.mu.Lock()
	if p.authFails != 0 || p.authErr != nil {
		t.Errorf("after a good login: authFails = %d, authErr = %v", p.authFails, p.authErr)
	}
	p.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if n, _, _ := dials.counts(); n != 3 || calls != 3 {
		t.Errorf("dials %d, password calls %d; want 3, 3", n, calls)
	}
}

// Without UNSELECT a connection left with a mailbox selected is closed, not
// sent CLOSE (which would expunge \Deleted messages).
func TestNoUnselectDropsConnection(t *testing.T) {
	s := startScriptedServer(t, true)
	p, dials := newTestPool(t, Options{Host: "127.0.0.1", Port: s.port, TLS: TLSNone, Username: "alice", Password: password("pw")})
	ctx := context.Background()
	err := p.Do(ctx, func(c *imapclient.Client) error {
		_, err := c.Select("INBOX", nil).Wait()
		return err
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if _, open, _ := dials.counts(); open != 0 {
		t.Errorf("open connections = %d, want 0", open)
	}
	err = p.Do(ctx, func(c *imapclient.Client) error {
		if c.State() != imap.ConnStateAuthenticated {
			return fmt.Errorf("state %v", c.State())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := dials.counts(); n != 2 {
		t.Errorf("dials = %d, want 2", n)
	}
	for _, cmd := range s.commands() {
		if cmd == "CLOSE" || cmd == "UNSELECT" {
			t.Errorf("server got %s; commands: %v", cmd, s.commands())
		}
	}
}
