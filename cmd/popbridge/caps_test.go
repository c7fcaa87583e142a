package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// capClient speaks IMAP line by line to a running bridge.
type capClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialCap(t *testing.T, port int) (*capClient, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &capClient{t: t, conn: conn, br: bufio.NewReader(conn)}
	return c, c.line()
}

func (c *capClient) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// line reads one line; a literal it announces is read too and shown as
// "{n}" followed by its bytes and the rest of the response line.
func (c *capClient) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (partial %q)", err, l)
	}
	l = strings.TrimSuffix(l, "\r\n")
	for !strings.HasPrefix(l, "+") && strings.HasSuffix(l, "}") {
		i := strings.LastIndexByte(l, '{')
		n, err := strconv.Atoi(l[i+1 : len(l)-1])
		if i < 0 || err != nil {
			break
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.br, lit); err != nil {
			c.t.Fatal(err)
		}
		rest, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatal(err)
		}
		l += "\r\n" + string(lit) + strings.TrimSuffix(rest, "\r\n")
	}
	return l
}

// do sends a command and returns every line of its answer, the tagged one
// last.
func (c *capClient) do(tag, cmd string) []string {
	c.t.Helper()
	c.send(tag + " " + cmd + "\r\n")
	var out []string
	for {
		l := c.line()
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			return out
		}
	}
}

// want sends a command and compares its whole answer.
func (c *capClient) want(tag, cmd string, want ...string) {
	c.t.Helper()
	got := c.do(tag, cmd)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		c.t.Errorf("%s %s:\n got %q\nwant %q", tag, cmd, got, want)
	}
}

func (c *capClient) login() string {
	c.t.Helper()
	got := c.do("L", "LOGIN me \""+testPassword+"\"")
	l := got[len(got)-1]
	caps, ok := strings.CutPrefix(l, "L OK [CAPABILITY ")
	caps, ok2 := strings.CutSuffix(caps, "] Logged in")
	if !ok || !ok2 {
		c.t.Fatalf("login: %q", got)
	}
	return caps
}

func capsMessage(folder string, i int) string {
	return fmt.Sprintf("From: Sender %d <s%d@example.com>\nTo: me@example.com\nSubject: %s message %d\n"+
		"Date: Mon, 0%d Jan 2024 10:00:00 +0900\nMessage-ID: <%s-%d@caps.example>\n\nBody of message %d\n",
		i, i, folder, i, i, folder, i, i)
}

// capsArchive writes an mbox directory: Inbox (5 messages), Sent (2) and
// 日本語 (1).
func capsArchive(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "archive")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for folder, n := range map[string]int{"Inbox": 5, "Sent": 2, "日本語": 1} {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "From s%d@example.com Mon Jan  1 10:00:00 2024\n%s\n", i, capsMessage(folder, i))
		}
		if err := os.WriteFile(filepath.Join(root, folder), []byte(b.String()), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestCapabilities checks every capability the bridge offers, before and
// after login, through a real connection against a bridge with an
// archive, comparing the answers exactly; a capability offered without a
// test here (or tested but not offered) fails. (imapserver v2.0.0-beta.8
// answers a capability the session cannot honour with a panic, or worse,
// silently wrong data.)
func TestCapabilities(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	b := startBridge(t, writeConfig(t, dir, port, map[string]string{"Caps": capsArchive(t, dir)}, ""))

	pre, greeting := dialCap(t, port)
	preCaps, ok := strings.CutPrefix(greeting, "* OK [CAPABILITY ")
	preCaps, ok2 := strings.CutSuffix(preCaps, "] popbridge ready")
	if !ok || !ok2 {
		t.Fatalf("greeting %q", greeting)
	}
	c, _ := dialCap(t, port)
	postCaps := c.login()
	const wantPost = "IMAP4rev1 SASL-IR LITERAL- UNSELECT ENABLE IDLE UTF8=ACCEPT NAMESPACE UIDPLUS ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS MOVE STATUS=SIZE CHILDREN SPECIAL-USE LITERAL+ ID"
	if postCaps != wantPost {
		t.Errorf("capabilities after login\n got %q\nwant %q", postCaps, wantPost)
	}
	c.want("c", "CAPABILITY", "* CAPABILITY "+postCaps, "c OK CAPABILITY completed")

	// The messages as the bridge serves them, for exact comparisons.
	inbox := make([]string, 5)
	var inboxSize int
	c.do("s", "EXAMINE Local/Inbox")
	for i := range inbox {
		got := c.do("f", fmt.Sprintf("UID FETCH %d BODY.PEEK[]", i+1))
		first := got[0]
		j := strings.Index(first, "}\r\n")
		if j < 0 || !strings.HasSuffix(first, ")") {
			t.Fatalf("FETCH answer %q", got)
		}
		inbox[i] = first[j+3 : len(first)-1]
		inboxSize += len(inbox[i])
		if !strings.Contains(inbox[i], fmt.Sprintf("Subject: Inbox message %d\r\n", i+1)) {
			t.Fatalf("Local/Inbox UID %d is %q", i+1, inbox[i])
		}
	}
	c.do("u", "UNSELECT")

	tests := map[string]func(t *testing.T, c *capClient){
		"IMAP4rev1": func(t *testing.T, c *capClient) {
			// The FLAGS lines are the backend's business (keywords).
			var got []string
			for _, l := range c.do("a", "EXAMINE Local/Sent") {
				if !strings.HasPrefix(l, "* FLAGS (") && !strings.HasPrefix(l, "* OK [PERMANENTFLAGS (") {
					got = append(got, l)
				}
			}
			want := []string{"* 2 EXISTS", "* 0 RECENT", "* OK [UNSEEN 1] First unseen message",
				"* OK [UIDVALIDITY " + uidValidity(t, c, "Local/Sent") + "] UIDs valid", "* OK [UIDNEXT 3] Predicted next UID",
				"a OK [READ-ONLY] EXAMINE completed"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("EXAMINE:\n got %q\nwant %q", got, want)
			}
			c.want("b2", "FETCH 1 BODY.PEEK[TEXT]", "* 1 FETCH (UID 1 BODY[TEXT] {19}\r\nBody of message 1\r\n)", "b2 OK FETCH completed")
			c.want("b", "FETCH 2 (UID RFC822.SIZE)", fmt.Sprintf("* 2 FETCH (UID 2 RFC822.SIZE %d)", len(strings.ReplaceAll(capsMessage("Sent", 2), "\n", "\r\n"))), "b OK FETCH completed")
			c.want("c", "CLOSE", "c OK CLOSE completed")
		},
		"SASL-IR": func(t *testing.T, c *capClient) {
			d, _ := dialCap(t, port)
			ir := base64.StdEncoding.EncodeToString([]byte("\x00me\x00" + testPassword))
			got := d.do("a", "AUTHENTICATE PLAIN "+ir)
			if len(got) != 1 || !strings.HasPrefix(got[0], "a OK [CAPABILITY "+wantPost+"] ") {
				t.Errorf("AUTHENTICATE PLAIN with an initial response: %q", got)
			}
		},
		"AUTH=PLAIN": func(t *testing.T, c *capClient) {
			d, _ := dialCap(t, port)
			d.send("a AUTHENTICATE PLAIN\r\n")
			if l := d.line(); l != "+ " {
				t.Fatalf("got %q, want an empty challenge", l)
			}
			d.send(base64.StdEncoding.EncodeToString([]byte("\x00me\x00"+testPassword)) + "\r\n")
			if l := d.line(); !strings.HasPrefix(l, "a OK [CAPABILITY ") {
				t.Errorf("AUTHENTICATE PLAIN: %q", l)
			}
		},
		"AUTH=LOGIN": func(t *testing.T, c *capClient) {
			d, _ := dialCap(t, port)
			d.send("a AUTHENTICATE LOGIN\r\n")
			for _, step := range []struct{ challenge, answer string }{{"Username:", "me"}, {"Password:", testPassword}} {
				if l := d.line(); l != "+ "+base64.StdEncoding.EncodeToString([]byte(step.challenge)) {
					t.Fatalf("got %q, want the %s challenge", l, step.challenge)
				}
				d.send(base64.StdEncoding.EncodeToString([]byte(step.answer)) + "\r\n")
			}
			if l := d.line(); !strings.HasPrefix(l, "a OK [CAPABILITY ") {
				t.Errorf("AUTHENTICATE LOGIN: %q", l)
			}
		},
		"STARTTLS": func(t *testing.T, c *capClient) {
			d, _ := dialCap(t, port)
			d.want("a", "STARTTLS", "a OK Begin TLS negotiation now")
			tc := tls.Client(d.conn, &tls.Config{InsecureSkipVerify: true}) // the bridge's own certificate
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			d.conn, d.br = tc, bufio.NewReader(tc)
			d.want("b", "CAPABILITY", "* CAPABILITY IMAP4rev1 SASL-IR LITERAL- ID AUTH=PLAIN AUTH=LOGIN", "b OK CAPABILITY completed")
			if caps := d.login(); caps != wantPost {
				t.Errorf("login over TLS: %q", caps)
			}
		},
		"LITERAL-": func(t *testing.T, c *capClient) {
			c.send("a EXAMINE {11+}\r\nLocal/Inbox\r\n")
			got := []string{}
			for l := c.line(); ; l = c.line() {
				got = append(got, l)
				if strings.HasPrefix(l, "a ") {
					break
				}
			}
			if got[0] != "* 5 EXISTS" || got[len(got)-1] != "a OK [READ-ONLY] EXAMINE completed" {
				t.Errorf("EXAMINE with a non-synchronising literal: %q", got)
			}
			c.want("b", "UNSELECT", "b OK UNSELECT completed")
		},
		"LITERAL+": func(t *testing.T, c *capClient) {
			// A message over 4 KiB sent without waiting, into a bridge-owned
			// folder, and read back byte for byte.
			c.want("a", "CREATE Local/Caps", "a OK CREATE completed")
			msg := "From: me@example.com\r\nSubject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 400)
			c.send(fmt.Sprintf("b APPEND Local/Caps (\\Seen) {%d+}\r\n%s\r\n", len(msg), msg))
			l := c.line()
			uv, uid := appendUID(t, l, "b")
			c.do("c", "EXAMINE Local/Caps")
			c.want("d", fmt.Sprintf("UID FETCH %d BODY.PEEK[]", uid), fmt.Sprintf("* 1 FETCH (UID %d BODY[] {%d}\r\n%s)", uid, len(msg), msg), "d OK UID FETCH completed")
			c.want("e", "STATUS Local/Caps (UIDVALIDITY)", fmt.Sprintf("* STATUS \"Local/Caps\" (UIDVALIDITY %d)", uv), "e OK STATUS completed")
			c.do("f", "UNSELECT")
		},
		"UNSELECT": func(t *testing.T, c *capClient) {
			c.do("a", "SELECT Local/Inbox")
			c.want("b", "UNSELECT", "b OK UNSELECT completed")
			c.want("c", "FETCH 1 UID", "c BAD [CLIENTBUG] This command is only valid in the selected state")
		},
		"ENABLE": func(t *testing.T, c *capClient) {
			d, _ := dialCap(t, port)
			d.login()
			d.want("a", "ENABLE CONDSTORE", "* ENABLED", "a OK ENABLE completed")
			d.want("b", "ENABLE UTF8=ACCEPT", "* ENABLED UTF8=ACCEPT", "b OK ENABLE completed")
		},
		"UTF8=ACCEPT": func(t *testing.T, c *capClient) {
			d, _ := dialCap(t, port)
			d.login()
			d.want("a", `LIST "" Local/&ZeVnLIqe-`, `* LIST (\HasNoChildren) "/" "Local/&ZeVnLIqe-"`, "a OK LIST completed")
			d.want("b", "ENABLE UTF8=ACCEPT", "* ENABLED UTF8=ACCEPT", "b OK ENABLE completed")
			d.want("c", `LIST "" "Local/日本語"`, `* LIST (\HasNoChildren) "/" "Local/日本語"`, "c OK LIST completed")
			got := d.do("d", `EXAMINE "Local/日本語"`)
			if got[0] != "* 1 EXISTS" || got[len(got)-1] != "d OK [READ-ONLY] EXAMINE completed" {
				t.Errorf("EXAMINE by its UTF-8 name: %q", got)
			}
			msg := "From: 差出人 <a@example.com>\r\nSubject: 件名\r\n\r\n本文\r\n"
			d.want("e", "CREATE Local/UTF8", "e OK CREATE completed")
			d.send(fmt.Sprintf("f APPEND Local/UTF8 UTF8 (~{%d+}\r\n%s)\r\n", len(msg), msg))
			_, uid := appendUID(t, d.line(), "f")
			d.do("g", "EXAMINE Local/UTF8")
			d.want("h", fmt.Sprintf("UID FETCH %d BODY.PEEK[]", uid), fmt.Sprintf("* 1 FETCH (UID %d BODY[] {%d}\r\n%s)", uid, len(msg), msg), "h OK UID FETCH completed")
		},
		"IDLE": func(t *testing.T, c *capClient) {
			d, _ := dialCap(t, port)
			d.login()
			c.want("a", "CREATE Local/Idle", "a OK CREATE completed")
			d.do("b", "SELECT Local/Idle")
			d.send("c IDLE\r\n")
			if l := d.line(); l != "+ idling" {
				t.Fatalf("IDLE: %q", l)
			}
			// The session registers for updates just after "+ idling":
			// append until one is heard.
			heard := make(chan string, 1)
			go func() {
				d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				l, _ := d.br.ReadString('\n')
				heard <- strings.TrimSuffix(l, "\r\n")
			}()
			var l string
			for n := 1; l == ""; n++ {
				c.send(fmt.Sprintf("x%d APPEND Local/Idle {%d+}\r\n%s\r\n", n, len(inbox[0]), inbox[0]))
				if got := c.line(); !strings.HasPrefix(got, fmt.Sprintf("x%d OK [APPENDUID ", n)) {
					t.Fatalf("APPEND: %q", got)
				}
				select {
				case l = <-heard:
				case <-time.After(200 * time.Millisecond):
					if n == 25 {
						t.Fatal("nothing heard during IDLE")
					}
				}
			}
			if !strings.HasSuffix(l, " EXISTS") || !strings.HasPrefix(l, "* ") {
				t.Fatalf("during IDLE: %q, want EXISTS", l)
			}
			d.send("DONE\r\n")
			for l := d.line(); l != "c OK IDLE completed"; l = d.line() {
				if !strings.HasSuffix(l, " EXISTS") && !strings.HasSuffix(l, " RECENT") {
					t.Fatalf("after DONE: %q", l)
				}
			}
		},
		"NAMESPACE": func(t *testing.T, c *capClient) {
			c.want("a", "NAMESPACE", `* NAMESPACE (("" "/")) NIL NIL`, "a OK NAMESPACE completed")
		},
		"UIDPLUS": func(t *testing.T, c *capClient) {
			c.want("a", "CREATE Local/Uidplus", "a OK CREATE completed")
			var uids []uint32
			for i := range 3 {
				c.send(fmt.Sprintf("b%d APPEND Local/Uidplus {%d+}\r\n%s\r\n", i, len(inbox[i]), inbox[i]))
				_, uid := appendUID(t, c.line(), fmt.Sprint("b", i))
				uids = append(uids, uid)
			}
			c.do("c", "SELECT Local/Uidplus")
			c.do("d", "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
			// UID EXPUNGE removes only the UID named.
			c.want("e", fmt.Sprintf("UID EXPUNGE %d", uids[1]), "* 2 EXPUNGE", "e OK UID EXPUNGE completed")
			c.want("f", "UID SEARCH ALL", fmt.Sprintf("* SEARCH %d %d", uids[0], uids[2]), "f OK UID SEARCH completed")
			c.want("g0", "CREATE Local/UidplusCopy", "g0 OK CREATE completed")
			c.want("g", fmt.Sprintf("UID COPY %d:%d Local/UidplusCopy", uids[0], uids[2]),
				fmt.Sprintf("g OK [COPYUID %s %d,%d 1:2] COPY completed", uidValidity(t, c, "Local/UidplusCopy"), uids[0], uids[2]))
			c.do("h", "UNSELECT")
		},
		"ESEARCH": func(t *testing.T, c *capClient) {
			c.do("a", "EXAMINE Local/Inbox")
			c.want("b", "UID SEARCH RETURN (MIN MAX COUNT ALL) ALL", `* ESEARCH (TAG "b") UID ALL 1:5 MIN 1 MAX 5 COUNT 5`, "b OK UID SEARCH completed")
			c.want("c", `SEARCH RETURN (COUNT) SUBJECT "message 3"`, `* ESEARCH (TAG "c") COUNT 1`, "c OK SEARCH completed")
			c.want("d", `SEARCH RETURN (MIN MAX) OR SUBJECT "message 2" SUBJECT "message 4"`, `* ESEARCH (TAG "d") MIN 2 MAX 4`, "d OK SEARCH completed")
			c.want("e", `UID SEARCH RETURN () SUBJECT "no such"`, `* ESEARCH (TAG "e") UID`, "e OK UID SEARCH completed")
			c.want("f", `SEARCH RETURN (MIN COUNT) SUBJECT "no such"`, `* ESEARCH (TAG "f") COUNT 0`, "f OK SEARCH completed")
			c.do("g", "UNSELECT")
		},
		"SEARCHRES": func(t *testing.T, c *capClient) {
			c.do("a", "EXAMINE Local/Inbox")
			// SAVE alone answers nothing but OK (RFC 5182 section 2.1).
			c.want("b", `SEARCH RETURN (SAVE) OR SUBJECT "message 2" SUBJECT "message 4"`, "b OK SEARCH completed")
			c.want("c", "FETCH $ (UID)", "* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)", "c OK FETCH completed")
			c.want("d", "UID SEARCH UID $ SUBJECT \"message 4\"", "* SEARCH 4", "d OK UID SEARCH completed")
			// With MIN, "$" is the MIN message only.
			c.want("e", "UID SEARCH RETURN (SAVE MIN) 2:5", `* ESEARCH (TAG "e") UID MIN 2`, "e OK UID SEARCH completed")
			c.want("f", "UID FETCH $ (UID)", "* 2 FETCH (UID 2)", "f OK UID FETCH completed")
			// UID EXPUNGE $ in a bridge-owned folder.
			c.want("g", "CREATE Local/Searchres", "g OK CREATE completed")
			for i := range 4 {
				c.send(fmt.Sprintf("h%d APPEND Local/Searchres (\\Deleted) {%d+}\r\n%s\r\n", i, len(inbox[i]), inbox[i]))
				appendUID(t, c.line(), fmt.Sprint("h", i))
			}
			c.do("i", "SELECT Local/Searchres")
			c.want("j", `SEARCH RETURN (SAVE) OR SUBJECT "message 1" SUBJECT "message 3"`, "j OK SEARCH completed")
			got := c.do("k", "UID EXPUNGE $")
			if left := applyExpunges(t, []int{1, 2, 3, 4}, got, "k OK UID EXPUNGE completed"); fmt.Sprint(left) != "[2 4]" {
				t.Errorf("UID EXPUNGE $ left UIDs %v, want [2 4] (%q)", left, got)
			}
			c.want("l", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
				"* 1 FETCH (UID 2 BODY[HEADER.FIELDS (\"SUBJECT\")] {28}\r\nSubject: Inbox message 2\r\n\r\n)",
				"* 2 FETCH (UID 4 BODY[HEADER.FIELDS (\"SUBJECT\")] {28}\r\nSubject: Inbox message 4\r\n\r\n)",
				"l OK FETCH completed")
			c.do("m", "UNSELECT")
		},
		"MOVE": func(t *testing.T, c *capClient) {
			c.want("a", "CREATE Local/MoveFrom", "a OK CREATE completed")
			c.want("b", "CREATE Local/MoveTo", "b OK CREATE completed")
			for i := range 2 {
				c.send(fmt.Sprintf("c%d APPEND Local/MoveFrom {%d+}\r\n%s\r\n", i, len(inbox[i]), inbox[i]))
				appendUID(t, c.line(), fmt.Sprint("c", i))
			}
			c.do("d", "SELECT Local/MoveFrom")
			to := uidValidity(t, c, "Local/MoveTo")
			c.want("e", "UID MOVE 1 Local/MoveTo", "* OK [COPYUID "+to+" 1 1] COPY completed", "* 1 EXPUNGE", "e OK UID MOVE completed")
			c.want("f", "FETCH 1:* (UID)", "* 1 FETCH (UID 2)", "f OK FETCH completed")
			c.do("g", "EXAMINE Local/MoveTo")
			c.want("h", "UID FETCH 1 BODY.PEEK[]", fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)", len(inbox[0]), inbox[0]), "h OK UID FETCH completed")
			c.do("i", "UNSELECT")
		},
		"STATUS=SIZE": func(t *testing.T, c *capClient) {
			c.want("a", "STATUS Local/Inbox (MESSAGES SIZE)", fmt.Sprintf("* STATUS \"Local/Inbox\" (MESSAGES 5 SIZE %d)", inboxSize), "a OK STATUS completed")
		},
		"CHILDREN": func(t *testing.T, c *capClient) {
			c.want("a", `LIST "" Local`, `* LIST (\Noselect \HasChildren) "/" "Local"`, "a OK LIST completed")
			c.want("b", `LIST "" Local/Inbox`, `* LIST (\HasNoChildren) "/" "Local/Inbox"`, "b OK LIST completed")
		},
		"LIST-EXTENDED": func(t *testing.T, c *capClient) {
			c.want("a", `LIST (SPECIAL-USE) "" "*"`, `* LIST (\HasNoChildren \Sent) "/" "Local/Sent"`, "a OK LIST completed")
			c.want("b", "CREATE Local/Sub/Deep", "b OK CREATE completed")
			c.want("c", "UNSUBSCRIBE Local/Sub", "c OK UNSUBSCRIBE completed")
			c.want("d", `LIST (SUBSCRIBED RECURSIVEMATCH) "" "Local/S%"`,
				`* LIST (\HasNoChildren \Subscribed \Sent) "/" "Local/Sent"`,
				`* LIST (\HasChildren) "/" "Local/Sub" (CHILDINFO ("SUBSCRIBED"))`, "d OK LIST completed")
			c.want("e", `LIST "" "Local/Sub" RETURN (SUBSCRIBED CHILDREN)`, `* LIST (\HasChildren) "/" "Local/Sub"`, "e OK LIST completed")
			c.want("f", `LIST (SUBSCRIBED) "" "Local/Sub*"`, `* LIST (\HasNoChildren \Subscribed) "/" "Local/Sub/Deep"`, "f OK LIST completed")
		},
		"LIST-STATUS": func(t *testing.T, c *capClient) {
			c.want("a", `LIST "" "Local/Inbox" RETURN (STATUS (MESSAGES UNSEEN SIZE))`,
				`* LIST (\HasNoChildren) "/" "Local/Inbox"`,
				fmt.Sprintf(`* STATUS "Local/Inbox" (MESSAGES 5 UNSEEN 5 SIZE %d)`, inboxSize), "a OK LIST completed")
			// A container has no status.
			c.want("b", `LIST "" "Local" RETURN (STATUS (MESSAGES))`, `* LIST (\Noselect \HasChildren) "/" "Local"`, "b OK LIST completed")
		},
		"SPECIAL-USE": func(t *testing.T, c *capClient) {
			c.want("a", `LIST "" Local/Sent`, `* LIST (\HasNoChildren \Sent) "/" "Local/Sent"`, "a OK LIST completed")
		},
		"ID": func(t *testing.T, c *capClient) {
			c.want("a", `ID ("name" "caps-test")`, `* ID ("name" "popbridge" "version" "`+version+`")`, "a OK ID completed")
			pre.want("b", "ID NIL", `* ID ("name" "popbridge" "version" "`+version+`")`, "b OK ID completed")
		},
	}

	offered := map[string]bool{}
	for _, cap := range append(strings.Fields(preCaps), strings.Fields(postCaps)...) {
		offered[cap] = true
	}
	var names []string
	for name := range offered {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if tests[name] == nil {
			t.Errorf("capability %s is offered but not tested here", name)
		}
	}
	names = names[:0]
	for name := range tests {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !offered[name] {
			t.Errorf("capability %s has a test but is not offered", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			c, _ := dialCap(t, port)
			c.login()
			tests[name](t, c)
		})
	}
	if strings.Contains(b.out.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", b.out.String())
	}
}

// applyExpunges applies the "* n EXPUNGE" lines of an answer (ending with
// the tagged line want) to the UIDs in sequence order.
func applyExpunges(t *testing.T, uids []int, answer []string, want string) []int {
	t.Helper()
	if answer[len(answer)-1] != want {
		t.Fatalf("answer %q, want it to end with %q", answer, want)
	}
	for _, l := range answer[:len(answer)-1] {
		var seq int
		if _, err := fmt.Sscanf(l, "* %d EXPUNGE", &seq); err != nil || seq < 1 || seq > len(uids) {
			t.Fatalf("answer line %q", l)
		}
		uids = append(uids[:seq-1:seq-1], uids[seq:]...)
	}
	return uids
}

// uidValidity returns a folder's UIDVALIDITY.
func uidValidity(t *testing.T, c *capClient, name string) string {
	t.Helper()
	got := c.do("uv", "STATUS "+name+" (UIDVALIDITY)")
	v, ok := strings.CutPrefix(got[0], "* STATUS \""+name+"\" (UIDVALIDITY ")
	v, ok2 := strings.CutSuffix(v, ")")
	if !ok || !ok2 {
		t.Fatalf("STATUS: %q", got)
	}
	return v
}

// appendUID parses "tag OK [APPENDUID v uid] APPEND completed".
func appendUID(t *testing.T, l, tag string) (uint32, uint32) {
	t.Helper()
	var uv, uid uint32
	if _, err := fmt.Sscanf(l, tag+" OK [APPENDUID %d %d] APPEND completed", &uv, &uid); err != nil {
		t.Fatalf("APPEND answer %q: %v", l, err)
	}
	return uv, uid
}
