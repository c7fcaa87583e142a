package backend

// What real clients do to a folder, on both kinds of writable folder: a
// bridge-owned Local/… folder and a folder on the upstream server (a
// private Dovecot). Issue F's table, row by row: nothing a client sends
// is ever swallowed.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/testenv"
)

// draft is a message as a mail client saves it; body varies, headers don't.
func draft(body string) []byte {
	return []byte("From: me@example.com\r\nTo: you@example.com\r\nSubject: plans\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <draft-1@example.com>\r\n" +
		"MIME-Version: 1.0\r\n\r\n" + body)
}

// flowFolders are the writable folders each flow runs on.
func flowFolders(t *testing.T) (*remoteEnv, []string) {
	src, _ := mboxSource(t, mbox(1, 2, 3))
	re := newRemoteEnv(t, nil, src)
	c := re.client(nil)
	if err := c.Create("Local/Drafts", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return re, []string{"Local/Drafts", "Drafts"}
}

// appendOK appends body to mailbox and returns its UID.
func appendOK(t *testing.T, c *imapclient.Client, mailbox string, body []byte) imap.UID {
	t.Helper()
	ad, err := appendMsg(c, mailbox, body)
	if err != nil {
		t.Fatalf("APPEND to %q: %v", mailbox, err)
	}
	if ad.UID == 0 {
		t.Fatalf("APPEND to %q: no APPENDUID", mailbox)
	}
	return ad.UID
}

// deleteUID is the client's STORE \Deleted + UID EXPUNGE of one message.
func deleteUID(t *testing.T, c *imapclient.Client, mailbox string, uid imap.UID) {
	t.Helper()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(imap.UIDSetNum(uid)).Close(); err != nil {
		t.Fatal(err)
	}
}

// checkOnly checks that mailbox holds exactly the messages want (bytes),
// through the bridge and, for a server folder, on the server itself.
func checkOnly(t *testing.T, re *remoteEnv, c *imapclient.Client, mailbox string, want ...[]byte) []fetched {
	t.Helper()
	got := fetchAll(t, c, mailbox)
	if len(got) != len(want) {
		t.Fatalf("%s holds %d messages through the bridge, want %d", mailbox, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Body, want[i]) {
			t.Errorf("%s message %d (UID %d) is\n%q\nwant\n%q", mailbox, i+1, got[i].UID, got[i].Body, want[i])
		}
	}
	if !strings.HasPrefix(mailbox, "Local/") {
		srv := re.dc.Messages(t, re.user, mailbox)
		if len(srv) != len(want) {
			t.Fatalf("the server's %s holds %d messages, want %d", mailbox, len(srv), len(want))
		}
		for i := range want {
			if !bytes.Equal(srv[i].Body, want[i]) {
				t.Errorf("the server's %s message %d differs", mailbox, i+1)
			}
		}
	}
	return got
}

// TestEditByAppendThenDelete: Thunderbird's "Detach attachment", editing a
// message, and saving a draft again are APPEND of the new version, then
// STORE \Deleted + EXPUNGE of the old UID. The new version must be what
// remains, with the folder open (Thunderbird) or not.
func TestEditByAppendThenDelete(t *testing.T) {
	attach := draft("--b\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n--b\r\n" +
		"Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n--b--\r\n")
	detached := draft("--b\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n--b\r\n" +
		"Content-Type: text/x-moz-deleted; name=\"Deleted: a.pdf\"\r\n\r\nYou deleted an attachment.\r\n--b--\r\n")
	rows := []struct {
		name      string
		old, edit []byte
	}{
		{"detach attachment", attach, detached},
		{"draft edited", draft("first words\r\n"), draft("first words, and more\r\n")},
		{"draft saved twice unchanged", draft("same\r\n"), draft("same\r\n")},
	}
	re, folders := flowFolders(t)
	for _, folder := range folders {
		for _, open := range []bool{true, false} {
			for _, row := range rows {
				t.Run(fmt.Sprintf("%s/%s/open=%v", folder, row.name, open), func(t *testing.T) {
					c := re.client(nil)
					defer c.Close()
					// Empty the folder first (previous rows).
					if _, err := c.Select(folder, nil).Wait(); err != nil {
						t.Fatal(err)
					}
					if err := c.Store(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
						t.Fatal(err)
					}
					if err := c.Expunge().Close(); err != nil {
						t.Fatal(err)
					}
					old := appendOK(t, c, folder, row.old)
					if !open {
						if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
							t.Fatal(err)
						}
					}
					edit := appendOK(t, c, folder, row.edit)
					if edit == old {
						t.Fatalf("APPEND of the edited version answered with the old UID %d", old)
					}
					deleteUID(t, c, folder, old)
					got := checkOnly(t, re, c, folder, row.edit)
					if got[0].UID != edit {
						t.Errorf("the remaining message has UID %d, APPENDUID said %d", got[0].UID, edit)
					}
				})
			}
		}
	}
}

// TestMoveIntoOwnFolder: UID MOVE (and COPY) of a message into the folder
// it is in makes a new message (COPYUID names it) and MOVE expunges the
// source: never an empty result.
func TestMoveIntoOwnFolder(t *testing.T) {
	re, _ := flowFolders(t)
	c := re.client(nil)
	body := draft("move me\r\n")
	appendOK(t, c, "Local/Drafts", body)
	appendOK(t, c, "Drafts", body)
	for _, folder := range []string{"Local/Archive", "Local/Drafts", "Drafts"} {
		t.Run(folder, func(t *testing.T) {
			before := fetchAll(t, c, folder)
			if _, err := c.Select(folder, nil).Wait(); err != nil {
				t.Fatal(err)
			}
			src := before[0].UID
			md, err := c.Move(imap.UIDSetNum(src), folder).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if md == nil {
				t.Fatal("MOVE gave no COPYUID")
			}
			dest, _ := md.DestUIDs.(imap.UIDSet)
			if fmt.Sprint(md.SourceUIDs) != fmt.Sprint(src) || len(dest) != 1 || dest.Contains(src) {
				t.Fatalf("COPYUID %v → %v: want a new UID for %d", md.SourceUIDs, md.DestUIDs, src)
			}
			after := fetchAll(t, c, folder)
			if len(after) != len(before) {
				t.Fatalf("%s had %d messages, has %d after MOVE into itself", folder, len(before), len(after))
			}
			last := after[len(after)-1]
			if !dest.Contains(last.UID) || !bytes.Equal(last.Body, before[0].Body) {
				t.Errorf("moved message: UID %d (COPYUID %v), bytes equal %v", last.UID, md.DestUIDs, bytes.Equal(last.Body, before[0].Body))
			}
			for _, m := range after {
				if m.UID == src {
					t.Errorf("source UID %d still there after MOVE", src)
				}
			}
			// COPY into itself: one more message.
			if _, err := c.Select(folder, nil).Wait(); err != nil {
				t.Fatal(err)
			}
			cd, err := c.Copy(imap.UIDSetNum(last.UID), folder).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if cd.DestUIDs.Contains(last.UID) {
				t.Errorf("COPY into the same folder answered with the source UID")
			}
			if n := len(fetchAll(t, c, folder)); n != len(before)+1 {
				t.Errorf("after COPY into itself %s has %d messages, want %d", folder, n, len(before)+1)
			}
		})
	}
}

// TestOutlookMoveByAppend: Outlook moves with FETCH + APPEND + EXPUNGE.
// A legacy message already on the server (dragged there before) must end
// up exactly once on the server, and the APPEND is answered with the
// server's copy, whose bytes are the appended bytes.
func TestOutlookMoveByAppend(t *testing.T) {
	re, _ := flowFolders(t)
	c := re.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cd, err := c.Copy(imap.UIDSetNum(1), "INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"INBOX", "Sent"} {
		// Outlook: FETCH the legacy message, APPEND it to the target, then
		// delete the source.
		got := fetchAll(t, c, "Local/Archive")
		if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		ad, err := appendMsg(c, target, got[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		srv := re.dc.Messages(t, re.user, target)
		if len(srv) != 1 || !bytes.Equal(srv[0].Body, got[0].Body) {
			t.Fatalf("server %s holds %d messages after the move by APPEND, want exactly the one", target, len(srv))
		}
		if ad.UID != srv[0].UID {
			t.Errorf("APPENDUID %d, the server's copy is UID %d", ad.UID, srv[0].UID)
		}
		if target == "INBOX" && !cd.DestUIDs.Contains(ad.UID) {
			t.Errorf("APPENDUID %d is not the dragged copy %v", ad.UID, cd.DestUIDs)
		}
	}
	deleteUID(t, c, "Local/Archive", 1)
	if got := fetchAll(t, c, "Local/Archive"); fmt.Sprint(uids(got)) != "[2 3]" {
		t.Errorf("Local/Archive after the move: %v", uids(got))
	}
}

// TestAppendThenRestart: the bridge stops between the client's APPEND of
// the edited version and its EXPUNGE of the old one: after the restart both
// are there (nothing lost), and the client's delete then leaves the edit.
func TestAppendThenRestart(t *testing.T) {
	re, folders := flowFolders(t)
	for _, folder := range folders {
		c := re.client(nil)
		old := appendOK(t, c, folder, draft("v1\r\n"))
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		edit := appendOK(t, c, folder, draft("v2\r\n"))
		c.Close()
		re.restart()
		c = re.client(nil)
		checkOnly(t, re, c, folder, draft("v1\r\n"), draft("v2\r\n"))
		deleteUID(t, c, folder, old)
		if got := checkOnly(t, re, c, folder, draft("v2\r\n")); got[0].UID != edit {
			t.Errorf("%s: remaining UID %d, want %d", folder, got[0].UID, edit)
		}
		c.Close()
	}
}

// rawConn is a logged-in IMAP connection driven line by line, for checking
// the exact order of responses.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	n    int
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
	if _, err := r.br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.do("LOGIN u pw")
	return r
}

// do sends one command and returns every line up to its tagged reply.
func (r *rawConn) do(cmd string) string {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.conn.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(r.conn, "%s %s\r\n", tag, cmd)
	var out strings.Builder
	for {
		line, err := r.br.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			r.t.Fatalf("%s: %v\n%s", cmd, err, out.String())
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				r.t.Fatalf("%s: %s", cmd, out.String())
			}
			return out.String()
		}
	}
}

// before reports whether a occurs in s before b (both present).
func before(s, a, b string) bool {
	i, j := strings.Index(s, a), strings.Index(s, b)
	return i >= 0 && j >= 0 && i < j
}

// TestKeywordsAnnounced: a keyword is listed in FLAGS (and PERMANENTFLAGS)
// before any FETCH shows it — set by another session (seen at NOOP, or in
// a FETCH before this session polled) or by this session's own STORE —
// on every kind of folder (RFC 3501 7.2.6).
func TestKeywordsAnnounced(t *testing.T) {
	re, _ := flowFolders(t)
	c := re.client(nil)
	appendOK(t, c, "Local/Drafts", draft("k\r\n"))
	appendOK(t, c, "Drafts", draft("k\r\n"))
	c.Close()
	for _, folder := range []string{"Local/Archive", "Local/Drafts", "Drafts"} {
		t.Run(folder, func(t *testing.T) {
			a, b := dialRaw(t, re.addr), dialRaw(t, re.addr)
			sel := a.do(`SELECT "` + folder + `"`)
			if !strings.Contains(sel, `PERMANENTFLAGS (`) || !strings.Contains(sel, `\*)]`) {
				t.Fatalf("SELECT lacks PERMANENTFLAGS with \\*:\n%s", sel)
			}
			b.do(`SELECT "` + folder + `"`)
			kw := "$label" + strings.NewReplacer("/", "", "Local", "L").Replace(folder)
			b.do("STORE 1 +FLAGS (" + kw + "1)")
			// a: FETCH before any poll shows the new keyword: FLAGS first.
			resp := a.do("FETCH 1 (FLAGS)")
			fetchLine := regexp.MustCompile(`\* 1 FETCH \([^\r]*` + regexp.QuoteMeta(kw) + `1`)
			loc := fetchLine.FindStringIndex(resp)
			if loc == nil {
				t.Fatalf("FETCH does not show %s1:\n%s", kw, resp)
			}
			flagsAt := strings.Index(resp, "* FLAGS (")
			if flagsAt < 0 || flagsAt > loc[0] || !strings.Contains(resp[flagsAt:loc[0]], kw+"1") {
				t.Errorf("FLAGS listing %s1 did not come before the FETCH:\n%s", kw, resp)
			}
			if !before(resp, "* OK [PERMANENTFLAGS (", "* 1 FETCH") {
				t.Errorf("PERMANENTFLAGS not re-sent before the FETCH:\n%s", resp)
			}
			// a's own STORE of a keyword nobody has used.
			resp = a.do("STORE 1 +FLAGS (" + kw + "2)")
			if !before(resp, "* FLAGS (", "* 1 FETCH") || !strings.Contains(resp[:strings.Index(resp, "* 1 FETCH")], kw+"2") {
				t.Errorf("STORE of a new keyword: FLAGS not announced first:\n%s", resp)
			}
			// b learns it at NOOP: FLAGS before the unilateral FETCH.
			resp = b.do("NOOP")
			if !before(resp, "* FLAGS (", "* 1 FETCH") || !strings.Contains(resp, kw+"2") {
				t.Errorf("NOOP after another session's new keyword:\n%s", resp)
			}
		})
	}
}

// TestExpungedWhileFetching: one device expunges a message while another,
// not told yet, still FETCHes it: the bytes are returned; EXPUNGE comes at
// the next poll, and the bridge's own file is removed only then.
func TestExpungedWhileFetching(t *testing.T) {
	re, _ := flowFolders(t)
	c := re.client(nil)
	body := draft("shared\r\n")
	uid := appendOK(t, c, "Local/Drafts", body)
	c.Close()
	for _, folder := range []string{"Local/Archive", "Local/Drafts"} {
		t.Run(folder, func(t *testing.T) {
			a, b := dialRaw(t, re.addr), dialRaw(t, re.addr)
			a.do(`SELECT "` + folder + `"`)
			b.do(`SELECT "` + folder + `"`)
			u := uid
			if folder == "Local/Archive" {
				u = 1
			}
			want := string(body)
			if folder == "Local/Archive" {
				want = served(1, "")
			}
			b.do(fmt.Sprintf("UID STORE %d +FLAGS.SILENT (\\Deleted)", u))
			if resp := b.do("EXPUNGE"); !strings.Contains(resp, "* 1 EXPUNGE") {
				t.Fatalf("EXPUNGE in b:\n%s", resp)
			}
			if folder == "Local/Drafts" && len(ownedFiles(t, re.dataDir)) == 0 {
				t.Errorf("the bridge's file was removed while a session could still fetch it")
			}
			// FETCH by sequence number: no EXPUNGE may be sent during it
			// (RFC 3501 7.4.1), so the message must still be served.
			resp := a.do("FETCH 1 (BODY.PEEK[])")
			if !strings.Contains(resp, want) || strings.Contains(resp, "EXPUNGE") {
				t.Errorf("FETCH of a message expunged elsewhere:\n%s", resp)
			}
			// UID FETCH: served as well (EXPUNGE may follow it).
			resp = a.do(fmt.Sprintf("UID FETCH %d (BODY.PEEK[])", u))
			if !strings.Contains(resp, want) || !before(resp, want, "* 1 EXPUNGE") {
				t.Errorf("UID FETCH of a message expunged elsewhere:\n%s", resp)
			}
			if folder == "Local/Drafts" {
				if files := ownedFiles(t, re.dataDir); len(files) != 0 {
					t.Errorf("the bridge's file is still there after every session was told: %v", files)
				}
			}
		})
	}
}

func ownedFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(filepath.Join(dataDir, "maildir"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.Contains(p, string(filepath.Separator)+"cur"+string(filepath.Separator)) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestInboxWithoutUpstream: without [upstream] INBOX still exists, in any
// letter case, is selectable and durable, and can't be deleted.
func TestInboxWithoutUpstream(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	e := newEnv(t, src)
	r := dialRaw(t, e.addr)
	for _, cmd := range []string{`LIST "" inbox`, `LIST "" INBOX`, `LIST "" InBoX`, `LIST "" "*"`} {
		if resp := r.do(cmd); !strings.Contains(resp, `"INBOX"`) && !strings.Contains(resp, ` INBOX`) {
			t.Errorf("%s does not list INBOX:\n%s", cmd, resp)
		}
	}
	if resp := r.do("SELECT inbox"); !strings.Contains(resp, "* 0 EXISTS") {
		t.Errorf("SELECT inbox:\n%s", resp)
	}
	c := e.client(nil)
	msg := draft("to the inbox\r\n")
	uid := appendOK(t, c, "Inbox", msg)
	c.Close()
	e.restart()
	c = e.client(nil)
	got := fetchAll(t, c, "INBOX")
	if len(got) != 1 || got[0].UID != uid || !bytes.Equal(got[0].Body, msg) {
		t.Fatalf("INBOX after restart: %+v", got)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Errorf("DELETE INBOX succeeded")
	}
	if err := c.Create("INBOX/Sub", nil).Wait(); err != nil {
		t.Errorf("CREATE INBOX/Sub: %v", err)
	}
}

// TestBridgeInboxKeptWhenUpstreamAdded: messages in the bridge's own INBOX
// survive configuring an upstream server (whose INBOX takes the name).
func TestBridgeInboxKeptWhenUpstreamAdded(t *testing.T) {
	testenv.RequireDovecot(t)
	src, _ := mboxSource(t, mbox(1))
	e := newEnv(t, src)
	c := e.client(nil)
	msg := draft("kept\r\n")
	appendOK(t, c, "INBOX", msg)
	c.Close()
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{})
	e.newRemote = dovecotPool(t, dc)
	e.restart()
	c = e.client(nil)
	got := fetchAll(t, c, "Local/"+bridgeInboxRest)
	if len(got) != 1 || !bytes.Equal(got[0].Body, msg) {
		t.Fatalf("the bridge's INBOX messages after adding an upstream: %+v", got)
	}
	if n := len(fetchAll(t, c, "INBOX")); n != 0 {
		t.Errorf("INBOX is not the server's (empty) one: %d messages", n)
	}
}
