package server

import (
	"strings"
	"testing"
	"time"
)

const wantPreCaps = "IMAP4rev1 SASL-IR LITERAL- ID STARTTLS AUTH=PLAIN AUTH=LOGIN"

func TestGreetingAndCapability(t *testing.T) {
	env := newTestEnv(t, nil)
	c, greeting := dialRaw(t, env.addr)
	if want := "* OK [CAPABILITY " + wantPreCaps + "] popbridge ready"; greeting != want {
		t.Fatalf("greeting %q, want %q", greeting, want)
	}
	c.send("a CAPABILITY")
	c.expect("* CAPABILITY "+wantPreCaps, "a OK CAPABILITY completed")
	c.send("b NOOP")
	c.expect("b OK NOOP completed")
	c.send("c LOGOUT")
	c.expect("* BYE Logging out", "c OK LOGOUT completed")
	c.expectEOF()
}

func TestIDBeforeAndAfterLogin(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	const idResp = `* ID ("name" "popbridge" "version" "1.2.3")`

	// macOS Mail's pre-login ID.
	c.send(`a ID ("name" "Mac OS X Mail" "version" "16.0 (3826.300.87)" "os" "Mac OS X")`)
	c.expect(idResp, "a OK ID completed")
	c.send("b ID NIL")
	c.expect(idResp, "b OK ID completed")
	c.send(`b2 ID ("name" NIL)`)
	c.expect(idResp, "b2 OK ID completed")
	c.send("b3 ID (\"name\")")
	c.expect(`b3 BAD ID expects NIL or a list of field/value pairs`)

	c.login("c")
	c.send(`d ID ("name" "Thunderbird" "version" "128.0")`)
	c.expect(idResp, "d OK ID completed")
	// A literal inside ID after login: the front door sends the
	// continuation request itself.
	c.send(`e ID ("name" {4}`)
	c.expect("+ Ready for literal data")
	c.send(`Mail)`)
	c.expect(idResp, "e OK ID completed")
	// The session goes on normally.
	c.send("f SELECT INBOX")
	for {
		l := c.line()
		if strings.HasPrefix(l, "f ") {
			if !strings.HasPrefix(l, "f OK [READ-WRITE]") {
				t.Fatalf("SELECT answer %q", l)
			}
			break
		}
	}
	c.send("g ID NIL")
	c.expect(idResp, "g OK ID completed")
	c.send("h LOGOUT")
	c.expectPrefix("* BYE")
	c.expect("h OK LOGOUT completed")

	log := env.log.String()
	for _, want := range []string{`id.name="Mac OS X Mail"`, `id.name=Thunderbird`, `id.version=128.0`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

func TestIDWithoutVersion(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.Version = "" })
	c, _ := dialRaw(t, env.addr)
	c.send("a ID NIL")
	c.expect(`* ID ("name" "popbridge")`, "a OK ID completed")
}

func TestCommandsNotAllowedBeforeAuth(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	cmds := []struct{ cmd, want string }{
		{"SELECT INBOX", "BAD Command not allowed before authentication"},
		{"EXAMINE INBOX", "BAD Command not allowed before authentication"},
		{`LIST "" "*"`, "BAD Command not allowed before authentication"},
		{"STATUS INBOX (MESSAGES)", "BAD Command not allowed before authentication"},
		{"FETCH 1 BODY[]", "BAD Command not allowed before authentication"},
		{"UID FETCH 1:* FLAGS", "BAD Command not allowed before authentication"},
		{"ENABLE UTF8=ACCEPT", "BAD Command not allowed before authentication"},
		{"IDLE", "BAD Command not allowed before authentication"},
		{"UNAUTHENTICATE", "BAD Command not allowed before authentication"},
		{"XYZZY", "BAD Unknown command"},
	}
	for i, tc := range cmds {
		tag := "t" + string(rune('a'+i))
		c.send(tag + " " + tc.cmd)
		c.expect(tag + " " + tc.want)
		if i == 4 {
			// BAD answers in a row are counted; a good command resets.
			c.send("n NOOP")
			c.expect("n OK NOOP completed")
		}
	}
	// APPEND with a literal: the literal is read (and discarded).
	c.send("ap APPEND INBOX {5}")
	c.expect("+ Ready for literal data")
	c.send("hello")
	c.expect("ap BAD Command not allowed before authentication")
	// Still connected, and the login works.
	c.login("z")
	c.send("y NOOP")
	c.expect("y OK NOOP completed")
}

func TestTooManyBadCommands(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	for i := 1; i < maxBadCommands; i++ {
		c.send("x FOO")
		c.expect("x BAD Unknown command")
	}
	c.send("x FOO")
	c.expect("x BAD Unknown command", "* BYE Too many invalid commands")
	c.expectEOF()
}

func TestCrossProtocol(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, first := range []string{
		"GET / HTTP/1.1",
		"POST /form HTTP/1.1",
		"EHLO mail.example.com",
		"helo example.com",
	} {
		t.Run(first, func(t *testing.T) {
			c, _ := dialRaw(t, env.addr)
			c.send(first)
			c.expect("* BYE This is an IMAP server")
			c.expectEOF()
		})
	}
}

func TestTLSOnCleartextPort(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	// The start of a TLS ClientHello.
	c.conn.Write([]byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01})
	c.expectEOF()
}

func TestHostileInput(t *testing.T) {
	env := newTestEnv(t, nil)
	tests := []struct {
		name  string
		input string
		want  []string
		eof   bool
	}{
		{"nul in line", "a NO\x00OP", []string{`a BAD Syntax error: unexpected byte 0x00`}, false},
		{"binary", "\xff\xfe\x01garbage", []string{`* BAD Syntax error: unexpected byte 0xff`}, false},
		{"no tag", " NOOP", []string{`* BAD Syntax error: missing or invalid tag`}, false},
		{"tag only", "abc", []string{`abc BAD Syntax error: missing command name`}, false},
		{"empty line", "", []string{`* BAD Syntax error: missing or invalid tag`}, false},
		{"bad quote", `a LOGIN "alice`, []string{`a BAD Syntax error: unterminated quoted string`}, false},
		{"bad escape", `a LOGIN "al\ice" x`, []string{`a BAD Syntax error: invalid escape in quoted string (only \" and \\ are allowed)`}, false},
		{"huge sync literal", "a LOGIN {99999999}", []string{"a BAD Literal too large"}, false},
		{"overflowing literal", "a LOGIN {99999999999999999999999}", []string{"a BAD Literal too large"}, false},
		{"huge non-sync literal", "a LOGIN {99999999+}", []string{"* BYE Literal too large"}, true},
		{"long line", "a NOOP " + strings.Repeat("x", maxLine+10), []string{"* BYE Command line too long"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := dialRaw(t, env.addr)
			c.send(tc.input)
			c.expect(tc.want...)
			if tc.eof {
				c.expectEOF()
				return
			}
			c.send("z NOOP")
			c.expect("z OK NOOP completed")
		})
	}
	if n := env.logErrors.Load(); n != 0 {
		t.Errorf("%d error records logged:\n%s", n, env.log.String())
	}
}

func TestPreAuthTimeoutIsSet(t *testing.T) {
	// The 60 s timeout itself is not waited for; an unterminated line
	// followed by a close must end the connection without a leak.
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	c.conn.Write([]byte("a LOGIN {5}\r\nab"))
	c.expect("+ Ready for literal data")
	c.conn.Close()
	done := make(chan struct{})
	go func() { env.s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a half-read literal pending")
	}
}
