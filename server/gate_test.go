package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// selected logs a raw client in, appends one message to INBOX and selects it.
func selectedClient(t *testing.T, env *testEnv) *rawClient {
	t.Helper()
	c, _ := dialRaw(t, env.addr)
	c.login("l")
	c.conn.Write([]byte(fmt.Sprintf("ap APPEND INBOX {%d+}\r\n%s\r\n", len(testMessage), testMessage)))
	c.expectPrefix("ap OK [APPENDUID ")
	c.send("sel SELECT INBOX")
	for !strings.HasPrefix(c.line(), "sel ") {
	}
	return c
}

// untilTagged reads lines up to the tagged answer of tag and returns it.
func (c *rawClient) untilTagged(tag string) string {
	c.t.Helper()
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return l
		}
	}
}

// TestGateMalformedArguments: what imapserver would answer with
// [SERVERBUG] (or a dropped connection) gets a BAD naming the problem.
func TestGateMalformedArguments(t *testing.T) {
	env := newTestEnv(t, nil)
	c := selectedClient(t, env)
	tests := []struct{ cmd, want string }{
		{"a UID STORE completed +FLAGS (\\Deleted)", `a BAD Invalid sequence set "completed": use numbers, "*", ranges "n:m" and commas`},
		{"a STORE 0 +FLAGS (\\Seen)", `a BAD Invalid sequence set "0": use numbers, "*", ranges "n:m" and commas`},
		{"a FETCH 4294967296 FLAGS", `a BAD Invalid sequence set "4294967296": use numbers, "*", ranges "n:m" and commas`},
		{"a FETCH 1,,2 FLAGS", `a BAD Invalid sequence set "1,,2": use numbers, "*", ranges "n:m" and commas`},
		{"a UID COPY 1:x INBOX", `a BAD Invalid sequence set "1:x": use numbers, "*", ranges "n:m" and commas`},
		{"a UID EXPUNGE 01", `a BAD Invalid sequence set "01": use numbers, "*", ranges "n:m" and commas`},
		{`a LIST "" "!#$$&'+,-.0123456789:;<=>?@^_` + "`" + `|[}%*"`, `a BAD LIST pattern "!#$$&'+,-.0123456789:;<=>?@^_` + "`" + `|[}%*" is not valid modified UTF-7 (RFC 3501 section 5.1.3): bad encoded run "&'+,-"`},
		{`a LIST "&-" (% "&Jjo")`, `a BAD LIST pattern "&Jjo" is not valid modified UTF-7 (RFC 3501 section 5.1.3): "&" starts an encoded run that no "-" ends (write "&-" for "&")`},
		{`a SELECT "&Jjo-bad&"`, `a BAD Mailbox name "&Jjo-bad&" is not valid modified UTF-7 (RFC 3501 section 5.1.3): "&" starts an encoded run that no "-" ends (write "&-" for "&")`},
		{`a CREATE &AGEAYgBj-`, `a BAD Mailbox name "&AGEAYgBj-" is not valid modified UTF-7 (RFC 3501 section 5.1.3): bad encoded run "&AGEAYgBj-"`},
		{`a RENAME INBOX "&Jjo-&Jjo-"`, `a BAD Mailbox name "&Jjo-&Jjo-" is not valid modified UTF-7 (RFC 3501 section 5.1.3): two encoded runs follow each other`},
		{"a STATUS \"\xff\" (MESSAGES)", `a BAD Mailbox name "" is not valid modified UTF-7 (RFC 3501 section 5.1.3): it is not UTF-8`},
		{`a COPY 1 "a` + "\x01" + `b"`, `a BAD Mailbox name "ab" is not valid modified UTF-7 (RFC 3501 section 5.1.3): it contains a control character`},
		{`a SEARCH SINCE 31-Foo-2020`, `a BAD Invalid date "31-Foo-2020" after SINCE; the form is 2-Jan-2006`},
		{`a SEARCH OR MODSEQ 1 ALL`, `a BAD Unknown search key "MODSEQ"`},
		{`a UID SEARCH UID 1:*]`, `a BAD Invalid sequence set "1:*]": use numbers, "*", ranges "n:m" and commas`},
		{`a SEARCH NOT (UNSEEN 7:zz)`, `a BAD Unknown search key "7:zz"`},
		{`a APPEND INBOX (\Seen) "yesterday" {3}`, `a BAD Invalid date-time "yesterday"; the form is "02-Jan-2006 15:04:05 -0700"`},
		{`a SELECT "INBOX`, `a BAD Syntax error: unterminated quoted string`},
		{`a] NOOP`, `a] BAD Tags containing "]" are not supported`},
		{"a UID", "a BAD UID needs a command: FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE"},
		{"a UID THREAD REFS UTF-8 ALL", "a BAD Unknown UID command"},
		{"a", "a BAD Syntax error: missing command name"},
		{"", "* BAD Syntax error: missing or invalid tag"},
		{" NOOP", "* BAD Syntax error: missing or invalid tag"},
		{"a XYZZY", "a BAD Unknown command"},
		{"a NOOP" + strings.Repeat(" x", maxLine), "a BAD Command line too long"},
		// CONDSTORE, QRESYNC and friends, as iOS Mail tries them: clean
		// answers from imapserver.
		{"a SELECT INBOX (CONDSTORE)", `a BAD [CLIENTBUG] Syntax error: expected CRLF, got "("`},
		{"a FETCH 1:* (FLAGS) (CHANGEDSINCE 1)", `a BAD [CLIENTBUG] Syntax error: expected CRLF, got "("`},
		{"a UID FETCH 1:* (FLAGS MODSEQ)", "a BAD [CLIENTBUG] Unknown FETCH data item"},
		{"a STATUS INBOX (HIGHESTMODSEQ)", "a BAD Unknown STATUS data item"},
		{"a UID SEARCH RETURN (PARTIAL 1:10) ALL", "a BAD [CLIENTBUG] unknown SEARCH RETURN option"},
		{"a GETQUOTAROOT INBOX", "a BAD Unknown command"},
		{"a COMPRESS DEFLATE", "a BAD Unknown command"},
	}
	defer func() {
		if t.Failed() {
			t.Log(env.log.String())
		}
	}()
	for _, tc := range tests {
		c.send(tc.cmd)
		if got := c.line(); got != tc.want {
			t.Errorf("%.60q:\n got %q\nwant %q", tc.cmd, got, tc.want)
		}
		c.send("z NOOP")
		c.expect("z OK NOOP completed")
	}
	if n := env.logErrors.Load(); n != 0 {
		t.Errorf("%d error records logged:\n%s", n, env.log.String())
	}
	if strings.Contains(env.log.String(), "inner server's parser") {
		t.Errorf("a malformed argument reached imapserver's parser:\n%s", env.log.String())
	}
}

// TestGateKeepsStep: whatever the inner server makes of a command, what
// the client sends with it is never read as the next command.
func TestGateKeepsStep(t *testing.T) {
	env := newTestEnv(t, nil)
	c := selectedClient(t, env)
	steps := []struct {
		name string
		send string
		want []string
	}{
		{"error before a non-sync literal", "a NOOP {8+}\r\nb LOGOUT\r\n",
			[]string{`a BAD [CLIENTBUG] Syntax error: expected CRLF, got "{"`}},
		{"unknown command with a non-sync literal", "a FOO {8+}\r\nb LOGOUT x\r\n",
			[]string{"a BAD Unknown command"}},
		{"unknown command with a sync literal", "a FOO {8}\r\n",
			[]string{"a BAD Unknown command"}},
		{"sync literal too large", "a SELECT {5000}\r\n",
			[]string{"a BAD Literal too large"}},
		{"non-sync literal too large", "a SELECT {5000+}\r\n" + strings.Repeat("b NOOP\r\n", 625) + "\r\n",
			[]string{"a BAD Literal too large"}},
		{"bad mailbox before APPEND's message", "a APPEND \"&\" {8+}\r\nb LOGOUT\r\n",
			[]string{`a BAD Mailbox name "&" is not valid modified UTF-7 (RFC 3501 section 5.1.3): "&" starts an encoded run that no "-" ends (write "&-" for "&")`}},
		{"bad mailbox, sync message literal", "a APPEND \"&\" {8}\r\n",
			[]string{`a BAD Mailbox name "&" is not valid modified UTF-7 (RFC 3501 section 5.1.3): "&" starts an encoded run that no "-" ends (write "&-" for "&")`}},
		{"IDLE with an argument", "a IDLE x\r\n",
			[]string{`a BAD [CLIENTBUG] Syntax error: expected CRLF, got "x"`}},
		{"IDLE ended by something else", "a IDLE\r\nb LOGOUT {4+}\r\nc XY\r\n",
			[]string{"+ idling", "a BAD [CLIENTBUG] Syntax error: expected DONE to end IDLE command"}},
		{"IDLE ended by lower-case done", "a IDLE\r\ndone\r\n",
			[]string{"+ idling", "a OK IDLE completed"}},
		{"LOGIN after login asks for no literal", "a LOGIN {5}\r\n",
			[]string{"a BAD Already authenticated"}},
		{"literal in an intercepted command", "a ID ({4+}\r\nname {3}\r\n",
			[]string{"+ Ready for literal data"}},
	}
	for _, st := range steps {
		c.conn.Write([]byte(st.send))
		for _, w := range st.want {
			if got := c.line(); got != w {
				t.Fatalf("%s: got %q, want %q", st.name, got, w)
			}
		}
		if st.name == "literal in an intercepted command" {
			c.send("pop)")
			c.expect(`* ID ("name" "popbridge" "version" "1.2.3")`, "a OK ID completed")
		}
		c.send("z NOOP")
		if got := c.line(); got != "z OK NOOP completed" {
			t.Fatalf("%s: then NOOP answered %q", st.name, got)
		}
	}
	if n := env.logErrors.Load(); n != 0 {
		t.Errorf("%d error records logged:\n%s", n, env.log.String())
	}
}

// TestGateAppendTail: imapserver stores an APPEND followed by anything but
// CRLF and then answers nothing; the gate gives it the CRLF and skips the
// rest, so the APPEND is answered once and the next command runs.
func TestGateAppendTail(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	c.login("l")
	msgs := []string{"Subject: 1\r\n\r\nhello", "Subject: 2\r\n\r\nworld", "Subject: 3\r\n\r\nutf8"}
	fmt.Fprintf(c.conn, "a APPEND INBOX {%d+}\r\n%s EXTRA\r\nb NOOP\r\n", len(msgs[0]), msgs[0])
	c.expect("a OK [APPENDUID 1 1] APPEND completed", "b OK NOOP completed")
	// MULTIAPPEND (not offered): one message, one answer.
	fmt.Fprintf(c.conn, "c APPEND INBOX {%d+}\r\n%s {5+}\r\nagain\r\nd NOOP\r\n", len(msgs[1]), msgs[1])
	c.expect("c OK [APPENDUID 1 2] APPEND completed", "d OK NOOP completed")
	// The UTF8 data extension (RFC 6855) still works.
	fmt.Fprintf(c.conn, "e APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\n", len(msgs[2]), msgs[2])
	c.expect("e OK [APPENDUID 1 3] APPEND completed")
	c.send("f SELECT INBOX")
	c.untilTagged("f")
	c.send("g FETCH 1:* BODY.PEEK[]")
	for _, want := range msgs {
		l := c.line()
		if !strings.HasSuffix(l, fmt.Sprintf("{%d}", len(want))) {
			t.Fatalf("FETCH line %q, want a literal of %d bytes", l, len(want))
		}
		b := make([]byte, len(want))
		io.ReadFull(c.br, b)
		if string(b) != want {
			t.Errorf("stored %q, want %q", b, want)
		}
		c.expect(")")
	}
	c.expect("g OK FETCH completed")
}

// TestGateAppendRefusedNonSyncLiteral: without LITERAL+, imapserver
// refuses a non-synchronising message over 4 KiB before reading it; the
// gate skips it.
func TestGateAppendRefusedNonSyncLiteral(t *testing.T) {
	env := newTestEnv(t, func(o *Options) {
		o.Caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}
	})
	c, _ := dialRaw(t, env.addr)
	c.login("l")
	body := strings.Repeat("z NOOP\r\n", 1000)
	c.conn.Write([]byte(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\nb NOOP\r\n", len(body), body)))
	c.expect("a BAD Non-synchronizing literals are limited to 4096 bytes", "b OK NOOP completed")
	// A synchronising one is asked for and stored.
	c.send(fmt.Sprintf("c APPEND INBOX {%d}", len(body)))
	c.expect("+ Ready for literal data")
	c.conn.Write([]byte(body + "\r\n"))
	c.expect("c OK [APPENDUID 1 1] APPEND completed")
}

// idCommand is ID at RFC 2971's limits: 30 pairs, 30-octet fields,
// 1,024-octet values; with literals or as one quoted line.
func idCommand(tag string, literals bool) string {
	var b strings.Builder
	b.WriteString(tag + " ID (")
	for i := range 30 {
		if i > 0 {
			b.WriteByte(' ')
		}
		field := fmt.Sprintf("field-%02d-%s", i, strings.Repeat("f", 21))
		value := strings.Repeat(string(rune('a'+i%26)), 1024)
		if literals {
			fmt.Fprintf(&b, "%q {%d+}\r\n%s", field, len(value), value)
		} else {
			fmt.Fprintf(&b, "%q %q", field, value)
		}
	}
	b.WriteString(")\r\n")
	return b.String()
}

func TestIDAtRFCLimits(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	for i, lit := range []bool{false, true} {
		tag := fmt.Sprint("pre", i)
		c.conn.Write([]byte(idCommand(tag, lit)))
		c.expect(`* ID ("name" "popbridge" "version" "1.2.3")`, tag+" OK ID completed")
	}
	c.login("l")
	for i, lit := range []bool{false, true} {
		tag := fmt.Sprint("post", i)
		c.conn.Write([]byte(idCommand(tag, lit)))
		c.expect(`* ID ("name" "popbridge" "version" "1.2.3")`, tag+" OK ID completed")
	}
	c.send("z NOOP")
	c.expect("z OK NOOP completed")
}

// TestUnknownCommandsNeverBye: after login no run of bad commands ends
// the connection (before login ten in a row do, against cross-protocol
// attacks; one does not).
func TestUnknownCommandsNeverBye(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	c.send("a FOOBAR")
	c.expect("a BAD Unknown command")
	c.send("b NOOP")
	c.expect("b OK NOOP completed")
	c.login("l")
	for i := range 30 {
		c.send(fmt.Sprintf("u%d XYZZY %d", i, i))
		c.expect(fmt.Sprintf("u%d BAD Unknown command", i))
	}
	c.send("z NOOP")
	c.expect("z OK NOOP completed")
}

// TestEnableOnlyOffered: imapserver would enable IMAP4rev2 for anyone
// asking, although it is not offered.
func TestEnableOnlyOffered(t *testing.T) {
	env := newTestEnv(t, nil)
	c := selectedClient(t, env)
	c.send("a ENABLE IMAP4rev2 UTF8=ACCEPT CONDSTORE")
	c.expect("* ENABLED UTF8=ACCEPT", "a OK ENABLE completed")
	c.send("b SEARCH ALL")
	c.expect("* SEARCH 1", "b OK SEARCH completed") // IMAP4rev2 would answer ESEARCH
}

// TestServerBugAnswerBecomesBad: the last line of defence, for a parse
// failure the gate did not foresee.
func TestServerBugAnswerBecomesBad(t *testing.T) {
	env := newTestEnv(t, nil)
	server, client := net.Pipe()
	defer client.Close()
	a := &authConn{c: &conn{log: env.s.log, out: &connWriter{nc: server}}, greeted: true, curTag: "x1", curName: "STATUS"}
	go func() {
		a.Write([]byte("* 3 EXISTS\r\n"))
		a.Write([]byte("x1" + serverBugAnswer))
		a.Write([]byte("x1" + serverBugAnswer)) // not the first tagged answer: passed on
		server.Close()
	}()
	got, _ := io.ReadAll(client)
	want := "* 3 EXISTS\r\nx1 BAD Syntax error in the arguments of STATUS\r\nx1" + serverBugAnswer
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !strings.Contains(env.log.String(), "rejected by the inner server's parser") {
		t.Errorf("not logged:\n%s", env.log.String())
	}
}

// failingSession fails STATUS with a plain error and every Poll.
type failingSession struct {
	*imapmemserver.UserSession
}

func (failingSession) Status(string, *imap.StatusOptions) (*imap.StatusData, error) {
	return nil, errors.New("disk on fire")
}

func (failingSession) Poll(*imapserver.UpdateWriter, bool) error { return errors.New("poll exploded") }

// TestGuardSessionErrors: a backend error that is not an *imap.Error is
// NO [SERVERBUG] with our text and logged, never imapserver's "Internal
// server error"; a failing Poll does not end the connection.
func TestGuardSessionErrors(t *testing.T) {
	var env *testEnv
	env = newTestEnv(t, func(o *Options) {
		o.NewSession = func(SessionInfo) (imapserver.Session, error) {
			return failingSession{imapmemserver.NewUserSession(env.user)}, nil
		}
	})
	c, _ := dialRaw(t, env.addr)
	c.login("l")
	c.send("a STATUS INBOX (MESSAGES)")
	c.expect("a NO [SERVERBUG] Internal error in popbridge; see its log")
	c.send("b NOOP") // Poll fails
	c.expect("b OK NOOP completed")
	c.send("c NOOP")
	c.expect("c OK NOOP completed")
	log := env.log.String()
	if !strings.Contains(log, "method=Status") || !strings.Contains(log, "disk on fire") || !strings.Contains(log, "poll exploded") {
		t.Errorf("backend errors not logged:\n%s", log)
	}
}
