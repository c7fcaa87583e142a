package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

const testMessage = "From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.com>\r\n" +
	"Subject: front door\r\n" +
	"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
	"\r\n" +
	"x ID NIL\r\n" + // looks like a command; it is message data
	"a001 LOGIN alice secret\r\n" +
	"{5}\r\n" +
	"DONE\r\n"

func appendMessage(t *testing.T, c *imapclient.Client, mailbox string, msg string) *imap.AppendData {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), nil)
	if _, err := io.WriteString(cmd, msg); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	return data
}

func TestSessionThroughInnerServer(t *testing.T) {
	env := newTestEnv(t, nil)

	updates := make(chan uint32, 10)
	c1 := dialClient(t, env.addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					updates <- *d.NumMessages
				}
			},
		},
	})
	if err := c1.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c1.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 0 {
		t.Fatalf("INBOX has %d messages, want 0", sel.NumMessages)
	}
	app := appendMessage(t, c1, "INBOX", testMessage)
	if app.UID != 1 {
		t.Errorf("APPEND UID %d, want 1", app.UID)
	}
	if err := c1.Noop().Wait(); err != nil {
		t.Fatal(err)
	}

	msgs, err := c1.Fetch(imap.UIDSetNum(app.UID), &imap.FetchOptions{
		UID:         true,
		RFC822Size:  true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("FETCH returned %d messages", len(msgs))
	}
	var body []byte
	for _, b := range msgs[0].BodySection {
		body = b.Bytes
	}
	if !bytes.Equal(body, []byte(testMessage)) {
		t.Fatalf("fetched body\n%q, want\n%q", body, testMessage)
	}
	if msgs[0].RFC822Size != int64(len(testMessage)) {
		t.Errorf("RFC822.SIZE %d, want %d", msgs[0].RFC822Size, len(testMessage))
	}

	// IDLE on c1; a second client appends; c1 hears EXISTS.
	idle, err := c1.Idle()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := imapclient.DialTLS(env.tlsAddr, &imapclient.Options{TLSConfig: env.clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	// imapserver writes "+ idling" before the session's Idle registers
	// with the tracker, so an update can land in between and only be
	// announced with the next one: append until c1 hears of one.
	var n uint32
	for appended := 0; n < 2; {
		if appended < 20 {
			appendMessage(t, c2, "INBOX", testMessage)
			appended++
		}
		select {
		case n = <-updates: // the first ones may come from c1's own APPEND
		case <-time.After(200 * time.Millisecond):
			if appended == 20 {
				t.Fatal("no EXISTS during IDLE")
			}
		}
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	// After DONE the session goes on.
	data, err := c1.ID(&imap.IDData{Name: "test"}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if data.Name != "popbridge" || data.Version != "1.2.3" {
		t.Errorf("ID after IDLE: %+v", data)
	}
	if err := c1.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
	if n := env.logErrors.Load(); n != 0 {
		t.Errorf("%d error records logged:\n%s", n, env.log.String())
	}
}

// TestLiteralTracking checks the post-auth command-boundary tracker: data
// inside literals is never taken for a command, and a literal the inner
// server refuses is not waited for.
func TestLiteralTracking(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	c.login("a")

	// Synchronising literal accepted by the inner server.
	c.send(fmt.Sprintf("b APPEND INBOX {%d}", len(testMessage)))
	c.expect("+ Ready for literal data")
	c.conn.Write([]byte(testMessage + "\r\n"))
	c.expectPrefix("b OK [APPENDUID ")

	// Non-synchronising literal.
	c.conn.Write([]byte(fmt.Sprintf("c APPEND INBOX {%d+}\r\n%s\r\n", len(testMessage), testMessage)))
	c.expectPrefix("c OK [APPENDUID ")

	// A synchronising literal the inner server refuses: the client does
	// not send it, so the next ID is a command again.
	c.send("d APPEND INBOX {200000000}")
	c.expect("d NO [TOOBIG] Literals are limited to 104857600 bytes for this command")
	c.send("e ID NIL")
	c.expect(`* ID ("name" "popbridge" "version" "1.2.3")`, "e OK ID completed")

	// Literal inside a command the inner server handles.
	c.send("f SELECT {5}")
	c.expect("+ Ready for literal data")
	c.send("INBOX")
	var exists string
	for {
		l := c.line()
		if strings.HasSuffix(l, " EXISTS") {
			exists = l
		}
		if strings.HasPrefix(l, "f ") {
			break
		}
	}
	if exists != "* 2 EXISTS" {
		t.Errorf("SELECT reported %q, want * 2 EXISTS", exists)
	}
	c.send("g UID FETCH 1 (BODY.PEEK[TEXT])")
	want := "x ID NIL\r\na001 LOGIN alice secret\r\n{5}\r\nDONE\r\n"
	c.expect(fmt.Sprintf("* 1 FETCH (UID 1 BODY[TEXT] {%d}", len(want)))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.br, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("body text %q, want %q", got, want)
	}
	c.expect(")", "g OK UID FETCH completed")

	// IDLE's DONE line passes through to the inner server.
	c.send("h IDLE")
	c.expect("+ idling")
	c.send("DONE")
	c.expect("h OK IDLE completed")
	c.send("i ID NIL")
	c.expect(`* ID ("name" "popbridge" "version" "1.2.3")`, "i OK ID completed")
	// Pipelined commands after login reach the inner server in order.
	c.conn.Write([]byte("j NOOP\r\nk ID NIL\r\nl NOOP\r\n"))
	c.expect("j OK NOOP completed", `* ID ("name" "popbridge" "version" "1.2.3")`, "k OK ID completed", "l OK NOOP completed")
}

func TestPipelinedAfterLogin(t *testing.T) {
	env := newTestEnv(t, nil)
	c, _ := dialRaw(t, env.addr)
	c.conn.Write([]byte("a LOGIN " + testUser + " " + testPass + "\r\nb NOOP\r\nc ID NIL\r\n"))
	c.expectPrefix("a OK [CAPABILITY ")
	c.expect("b OK NOOP completed", `* ID ("name" "popbridge" "version" "1.2.3")`, "c OK ID completed")
}

type panicSession struct {
	*imapmemserver.UserSession
}

func (panicSession) Select(string, *imap.SelectOptions) (*imap.SelectData, error) {
	panic("select exploded")
}

func TestPanickingSessionDoesNotKillServer(t *testing.T) {
	var env *testEnv
	env = newTestEnv(t, func(o *Options) {
		o.Users = append(o.Users, User{Name: "boom", PasswordHash: mustHash(t, "boom")})
		o.NewSession = func(info SessionInfo) (imapserver.Session, error) {
			sess := imapmemserver.NewUserSession(env.user)
			if info.User == "boom" {
				return panicSession{sess}, nil
			}
			return sess, nil
		}
	})
	bad, _ := dialRaw(t, env.addr)
	bad.send("a LOGIN boom boom")
	bad.expectPrefix("a OK [CAPABILITY ")
	bad.send("b SELECT INBOX")
	bad.expectEOF()

	good := dialClient(t, env.addr, nil)
	if err := good.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := good.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if env.logErrors.Load() == 0 || !strings.Contains(env.log.String(), "select exploded") {
		t.Errorf("panic not logged at error level:\n%s", env.log.String())
	}
}

func TestPanicInNewSession(t *testing.T) {
	env := newTestEnv(t, func(o *Options) {
		o.NewSession = func(SessionInfo) (imapserver.Session, error) { panic("backend on fire") }
	})
	c, _ := dialRaw(t, env.addr)
	c.send("a LOGIN " + testUser + " " + testPass)
	c.expect("a NO [UNAVAILABLE] The mail store is not available; see the popbridge log")
	c.send("b NOOP")
	c.expect("b OK NOOP completed")
	if !strings.Contains(env.log.String(), "backend on fire") {
		t.Errorf("panic not logged:\n%s", env.log.String())
	}
}

type noMoveSession struct{ imapserver.Session }

func TestSessionLackingAdvertisedCapability(t *testing.T) {
	env := newTestEnv(t, func(o *Options) {
		user := imapmemserver.NewUser("x", "x")
		o.NewSession = func(SessionInfo) (imapserver.Session, error) {
			return noMoveSession{imapmemserver.NewUserSession(user)}, nil
		}
	})
	c, _ := dialRaw(t, env.addr)
	c.send("a LOGIN " + testUser + " " + testPass)
	c.expect("a NO [SERVERBUG] Server misconfiguration; see the popbridge log")
}

func TestCloseEndsEverything(t *testing.T) {
	env := newTestEnv(t, nil)
	pre, _ := dialRaw(t, env.addr)
	post, _ := dialRaw(t, env.addr)
	post.login("a")
	hs, err := net.Dial("tcp", env.tlsAddr) // TLS handshake pending
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	if err := env.s.Close(); err != nil {
		t.Fatal(err)
	}
	pre.expectEOF()
	post.expectEOF()
	hs.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.Copy(io.Discard, hs); err != nil && !isConnReset(err) {
		t.Errorf("pending IMAPS handshake: %v after %d bytes, want EOF", err, n)
	}
	for range 2 {
		if err := <-env.serveErrs; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
		env.serveErrs <- nil // for the cleanup
	}
}

func TestServerDoesNotImportStorage(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "go.etcd.io/bbolt" || (strings.HasPrefix(dep, "github.com/popbridge/popbridge/") && dep != "github.com/popbridge/popbridge/server") {
			t.Errorf("server depends on %s", dep)
		}
	}
}
