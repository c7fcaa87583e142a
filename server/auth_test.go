package server

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
	"golang.org/x/crypto/bcrypt"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestLoginWithClient(t *testing.T) {
	env := newTestEnv(t, nil)
	c := dialClient(t, env.addr, nil)
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	caps := c.Caps()
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIdle, imap.CapMove, imap.CapNamespace, imap.CapUIDPlus, imap.CapID} {
		if !caps.Has(want) {
			t.Errorf("capabilities after login lack %s: %v", want, caps)
		}
	}
	for _, unwanted := range []imap.Cap{imap.CapLoginDisabled, imap.CapStartTLS, "AUTH=PLAIN"} {
		if caps.Has(unwanted) {
			t.Errorf("capabilities after login include %s", unwanted)
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestLoginAnswerIsTheInnerCapabilities(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	caps := c.login("a")
	// No PREAUTH greeting between the login answer and the next command.
	c.send("b NOOP")
	c.expect("b OK NOOP completed")
	c.send("c CAPABILITY")
	c.expect("* CAPABILITY "+caps, "c OK CAPABILITY completed")
	const want = "IMAP4rev1 SASL-IR LITERAL- UNSELECT ENABLE IDLE UTF8=ACCEPT NAMESPACE UIDPLUS MOVE LITERAL+ ID"
	if caps != want {
		t.Errorf("login capabilities\n%q, want\n%q", caps, want)
	}
	if strings.Contains(env.trace.String(), "PREAUTH") {
		t.Errorf("PREAUTH greeting reached the client:\n%s", env.trace.String())
	}
	// LOGIN and AUTHENTICATE after login never reach the inner server.
	c.send("d LOGIN " + testUser + " " + testPass)
	c.expect("d BAD Already authenticated")
	c.send("e AUTHENTICATE PLAIN " + b64("\x00"+testUser+"\x00"+testPass))
	c.expect("e BAD Already authenticated")
	c.send("f STARTTLS")
	c.expect("f NO STARTTLS not supported")
}

func TestWrongPassword(t *testing.T) {
	const delay = 150 * time.Millisecond
	env := newTestEnv(t, func(o *Options) { o.AuthFailDelay = delay })
	for _, user := range []string{testUser, "mallory"} {
		c := dialClient(t, env.addr, nil)
		start := time.Now()
		err := c.Login(user, "wrong").Wait()
		elapsed := time.Since(start)
		var imapErr *imap.Error
		if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
			t.Fatalf("login as %s with a wrong password: %v, want NO [AUTHENTICATIONFAILED]", user, err)
		}
		if elapsed < delay {
			t.Errorf("failed login as %s answered after %v, want at least %v", user, elapsed, delay)
		}
		// The connection stays usable: the right password works.
		if user == testUser {
			if err := c.Login(testUser, testPass).Wait(); err != nil {
				t.Fatalf("login after a failure: %v", err)
			}
		}
	}
	log := env.log.String()
	if !strings.Contains(log, `msg="imap authentication failed"`) || !strings.Contains(log, "user=mallory") {
		t.Errorf("failed logins not logged:\n%s", log)
	}
}

func TestTooManyFailedLogins(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.AuthFailDelay = time.Millisecond })
	c, _ := dialRaw(t, env.addr)
	for i := 1; i < maxAuthFailures; i++ {
		c.send("a LOGIN alice nope")
		c.expect("a NO [AUTHENTICATIONFAILED] Invalid credentials")
	}
	c.send("a LOGIN alice nope")
	c.expect("a NO [AUTHENTICATIONFAILED] Invalid credentials", "* BYE Too many failed logins")
	c.expectEOF()
}

func TestLoginWithLiterals(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	c.send("a LOGIN {5}")
	c.expect("+ Ready for literal data")
	c.conn.Write([]byte(testUser + " {15+}\r\n" + testPass + "\r\n"))
	c.expectPrefix("a OK [CAPABILITY IMAP4rev1 ")
	c.send("b NOOP")
	c.expect("b OK NOOP completed")
}

func TestLoginQuoted(t *testing.T) {
	const pw = `pa"ss\word`
	env := newTestEnv(t, func(o *Options) {
		o.Users = []User{{Name: "bob smith", PasswordHash: mustHash(t, pw)}}
	})
	c, _ := dialRaw(t, env.addr)
	c.send(`a LOGIN "bob smith" "pa\"ss\\word"`)
	c.expectPrefix("a OK [CAPABILITY ")
}

func TestAuthenticatePlain(t *testing.T) {
	env := newTestEnv(t, nil)
	plain := b64("\x00" + testUser + "\x00" + testPass)

	t.Run("SASL-IR", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE PLAIN " + plain)
		c.expectPrefix("a OK [CAPABILITY IMAP4rev1 ")
		c.send("b NOOP")
		c.expect("b OK NOOP completed")
	})
	t.Run("continuation", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE plain")
		c.expect("+ ")
		c.send(plain)
		c.expectPrefix("a OK [CAPABILITY IMAP4rev1 ")
	})
	t.Run("empty initial response", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE PLAIN =")
		c.expect("+ ")
		c.send(plain)
		c.expectPrefix("a OK [CAPABILITY IMAP4rev1 ")
	})
	t.Run("authzid", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE PLAIN " + b64(testUser+"\x00"+testUser+"\x00"+testPass))
		c.expectPrefix("a OK [CAPABILITY IMAP4rev1 ")
	})
	t.Run("other authzid", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE PLAIN " + b64("root\x00"+testUser+"\x00"+testPass))
		c.expect("a NO [AUTHORIZATIONFAILED] Acting as another user is not supported")
	})
	t.Run("wrong password", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE PLAIN " + b64("\x00"+testUser+"\x00nope"))
		c.expect("a NO [AUTHENTICATIONFAILED] Invalid credentials")
	})
	t.Run("cancel", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE PLAIN")
		c.expect("+ ")
		c.send("*")
		c.expect("a BAD AUTHENTICATE cancelled")
		c.send("b NOOP")
		c.expect("b OK NOOP completed")
	})
	t.Run("bad base64", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE PLAIN !!!")
		c.expect("a BAD Invalid base64 in SASL initial response")
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		c, _ := dialRaw(t, env.addr)
		c.send("a AUTHENTICATE CRAM-MD5")
		c.expect("a NO Unsupported authentication mechanism")
	})
	t.Run("imapclient", func(t *testing.T) {
		c := dialClient(t, env.addr, nil)
		if err := c.Authenticate(sasl.NewPlainClient("", testUser, testPass)); err != nil {
			t.Fatal(err)
		}
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		if !c.Caps().Has(imap.CapIdle) {
			t.Errorf("capabilities after AUTHENTICATE: %v", c.Caps())
		}
	})
}

func TestAuthenticateLogin(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	c.send("a AUTHENTICATE LOGIN")
	c.expect("+ VXNlcm5hbWU6") // "Username:"
	c.send(b64(testUser))
	c.expect("+ UGFzc3dvcmQ6") // "Password:"
	c.send(b64(testPass))
	c.expectPrefix("a OK [CAPABILITY IMAP4rev1 ")

	c2, _ := dialRaw(t, env.addr)
	c2.send("a AUTHENTICATE LOGIN " + b64(testUser))
	c2.expect("+ UGFzc3dvcmQ6")
	c2.send(b64(testPass))
	c2.expectPrefix("a OK [CAPABILITY IMAP4rev1 ")
}

// TestPlaintextAuthFromUntrustedAddress dials from 127.0.0.2 to a server
// that trusts only 127.0.0.1.
func TestPlaintextAuthFromUntrustedAddress(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.TrustedNets = prefixes("127.0.0.1/32") })
	local := loopbackAlias(t, env.addr)

	c, greeting := dialRawFrom(t, local, env.addr)
	const untrustedCaps = "IMAP4rev1 SASL-IR LITERAL- ID STARTTLS LOGINDISABLED"
	if want := "* OK [CAPABILITY " + untrustedCaps + "] popbridge ready"; greeting != want {
		t.Fatalf("greeting %q, want %q", greeting, want)
	}
	c.send("a LOGIN " + testUser + " " + testPass)
	c.expect("a NO [PRIVACYREQUIRED] Plaintext authentication is not allowed on this connection; use STARTTLS or the IMAPS port")
	c.send("b AUTHENTICATE PLAIN " + b64("\x00"+testUser+"\x00"+testPass))
	c.expect("b NO [PRIVACYREQUIRED] Plaintext authentication is not allowed on this connection; use STARTTLS or the IMAPS port")
	c.send("c STARTTLS")
	c.expect("c OK Begin TLS negotiation now")
	tc := tls.Client(c.conn, env.clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = &rawClient{t: t, conn: tc, br: newReader(tc)}
	c.send("d CAPABILITY")
	c.expect("* CAPABILITY IMAP4rev1 SASL-IR LITERAL- ID AUTH=PLAIN AUTH=LOGIN", "d OK CAPABILITY completed")
	c.send("e STARTTLS")
	c.expect("e BAD TLS is already active")
	c.login("f")
	c.send("g NOOP")
	c.expect("g OK NOOP completed")

	// The same with imapclient.
	d := net.Dialer{LocalAddr: local}
	conn, err := d.Dial("tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	ic, err := imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: env.clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(testUser, testPass).Wait(); err != nil {
		t.Fatalf("login after STARTTLS: %v", err)
	}
	if _, err := ic.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestSessionInfo(t *testing.T) {
	infos := make(chan SessionInfo, 2)
	env := newTestEnv(t, func(o *Options) {
		inner := o.NewSession
		o.NewSession = func(info SessionInfo) (imapserver.Session, error) {
			infos <- info
			return inner(info)
		}
	})
	c, _ := dialRaw(t, env.addr)
	c.login("a")
	info := <-infos
	if info.User != testUser || info.TLS || info.RemoteAddr.String() != c.conn.LocalAddr().String() {
		t.Errorf("cleartext session info %+v", info)
	}
	ic, err := imapclient.DialTLS(env.tlsAddr, &imapclient.Options{TLSConfig: env.clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	if err := ic.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if info := <-infos; !info.TLS {
		t.Errorf("IMAPS session info %+v, want TLS", info)
	}
}

func TestSTARTTLSPipelinedDataIsNotInjected(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	// One write: the LOGIN arrives in the same buffer as STARTTLS.
	c.conn.Write([]byte("a STARTTLS\r\nb LOGIN " + testUser + " " + testPass + "\r\n"))
	c.expect("a OK Begin TLS negotiation now")
	c.expectEOF()
}

func TestNewSessionFailure(t *testing.T) {
	env := newTestEnv(t, func(o *Options) {
		o.NewSession = func(SessionInfo) (imapserver.Session, error) {
			return nil, errors.New("store is locked")
		}
	})
	c, _ := dialRaw(t, env.addr)
	c.send("a LOGIN " + testUser + " " + testPass)
	c.expect("a NO [UNAVAILABLE] The mail store is not available; see the popbridge log")
	c.send("b NOOP")
	c.expect("b OK NOOP completed")
}

func TestNewRejectsBadOptions(t *testing.T) {
	ok := func(SessionInfo) (imapserver.Session, error) { return nil, nil }
	tests := []struct {
		name string
		opts Options
	}{
		{"no NewSession", Options{}},
		{"bad hash", Options{NewSession: ok, Users: []User{{Name: "a", PasswordHash: "plain"}}}},
		{"empty name", Options{NewSession: ok, Users: []User{{Name: "", PasswordHash: mustHash(t, "x")}}}},
		{"duplicate", Options{NewSession: ok, Users: []User{{Name: "a", PasswordHash: mustHash(t, "x")}, {Name: "a", PasswordHash: mustHash(t, "y")}}}},
		{"no IMAP4rev1", Options{NewSession: ok, Caps: imap.CapSet{imap.CapMove: {}}}},
		{"UNAUTHENTICATE", Options{NewSession: ok, Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUnauthenticate: {}}}},
	}
	for _, tc := range tests {
		if _, err := New(tc.opts); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	s, err := New(Options{NewSession: ok})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ServeTLS(nil); !errors.Is(err, ErrNoTLSConfig) {
		t.Errorf("ServeTLS without TLSConfig: %v", err)
	}
	s.Close()
}

func TestHashPassword(t *testing.T) {
	t.Parallel() // cost 12 takes a while
	h := mustHash(t, "correct horse")
	if !raceEnabled {
		var err error
		if h, err = HashPassword("correct horse"); err != nil {
			t.Fatal(err)
		}
		if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != 12 {
			t.Errorf("cost %d (%v), want 12", cost, err)
		}
	}
	low := mustHash(t, "battery staple")
	long := strings.Repeat("x", 72)
	longHash := mustHash(t, long)
	tests := []struct {
		hash, pw string
		want     bool
	}{
		{h, "correct horse", true},
		{low, "battery staple", true},
		{low, "Battery staple", false},
		{low, "battery staple ", false},
		{low, "", false},
		{longHash, long, true},
		{longHash, long + "y", false}, // bcrypt would truncate: refuse instead
		{"not a hash", "x", false},
	}
	for _, tc := range tests {
		if got := CheckPassword(tc.hash, tc.pw); got != tc.want {
			t.Errorf("CheckPassword(%.10s…, %.12q) = %v, want %v", tc.hash, tc.pw, got, tc.want)
		}
	}
	if _, err := HashPassword(long + "y"); err == nil {
		t.Error("HashPassword accepted a 73-byte password")
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	const secret = "Zq9-very-SECRET-pw"
	env := newTestEnv(t, func(o *Options) {
		o.Users = []User{{Name: testUser, PasswordHash: mustHash(t, secret)}}
		o.AuthFailDelay = time.Millisecond
	})
	plain := b64("\x00" + testUser + "\x00" + secret)

	c, _ := dialRaw(t, env.addr)
	c.send("a LOGIN " + testUser + " " + secret + "x")
	c.expect("a NO [AUTHENTICATIONFAILED] Invalid credentials")
	c.send("b LOGIN " + testUser + ` "` + secret + "x")
	c.expectPrefix("b BAD Syntax error")
	c.send("c AUTHENTICATE PLAIN " + b64("\x00"+testUser+"\x00"+secret+"y"))
	c.expect("c NO [AUTHENTICATIONFAILED] Invalid credentials")
	c.send("d AUTHENTICATE LOGIN")
	c.expect("+ VXNlcm5hbWU6")
	c.send(b64(testUser))
	c.expect("+ UGFzc3dvcmQ6")
	c.send(b64(secret + "z"))
	c.expect("d NO [AUTHENTICATIONFAILED] Invalid credentials")
	c.send("e AUTHENTICATE PLAIN")
	c.expect("+ ")
	c.send(plain)
	c.expectPrefix("e OK [CAPABILITY")
	// After login, LOGIN is refused before its literal is asked for, and
	// one sent without waiting is skipped unread.
	c.send("f LOGIN " + testUser + " {18}")
	c.expect("f BAD Already authenticated")
	c.conn.Write([]byte("f2 LOGIN " + testUser + " {18+}\r\n" + secret + "\r\n"))
	c.expect("f2 BAD Already authenticated")
	c.send("g SELECT INBOX")
	c.expectPrefix("*")

	c2, _ := dialRaw(t, env.addr)
	c2.send("a login {5}")
	c2.expect("+ Ready for literal data")
	c2.conn.Write([]byte(testUser + " {18+}\r\n" + secret + "\r\n"))
	c2.expectPrefix("a OK [CAPABILITY")
	c2.send("b LOGOUT")
	c2.expectPrefix("* BYE")
	c2.expect("b OK LOGOUT completed")

	env.s.Close()
	logs, trace := env.log.String(), env.trace.String()
	for _, leak := range []string{secret, b64(secret), b64("\x00" + testUser + "\x00" + secret), plain[4:20]} {
		if strings.Contains(logs, leak) {
			t.Errorf("log contains %q:\n%s", leak, logs)
		}
		if strings.Contains(trace, leak) {
			t.Errorf("trace contains %q:\n%s", leak, trace)
		}
	}
	for _, want := range []string{"C: g SELECT INBOX", "C: a LOGIN [redacted]", "C: e AUTHENTICATE [redacted]", "C: [redacted]", "S: e OK [CAPABILITY"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
}
