package backend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/store"
)

// mboxMsg renders message i as an mbox entry (LF line ends).
func mboxMsg(i int, extra string) string {
	return fmt.Sprintf("From sender%d@example.com Mon Jan  2 15:04:%02d 2006\n"+
		"From: Sender %d <sender%d@example.com>\nTo: you@example.com\nSubject: message %d\n"+
		"Message-ID: <m%d@example.com>\nDate: Mon, 2 Jan 2006 15:04:%02d +0000\n%s\n"+
		"Body of message %d.\n>From the quoted line\n\n", i, i%60, i, i, i, i, i%60, extra, i)
}

// served is what a client must get for mboxMsg(i, extra).
func served(i int, extra string) string {
	s := fmt.Sprintf("From: Sender %d <sender%d@example.com>\nTo: you@example.com\nSubject: message %d\n"+
		"Message-ID: <m%d@example.com>\nDate: Mon, 2 Jan 2006 15:04:%02d +0000\n%s\n"+
		"Body of message %d.\nFrom the quoted line\n", i, i, i, i, i%60, extra, i)
	s = strings.ReplaceAll(s, "\n\n\n", "\n\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

func mbox(ids ...int) string {
	var b strings.Builder
	for _, i := range ids {
		b.WriteString(mboxMsg(i, ""))
	}
	return b.String()
}

func mboxSource(t *testing.T, content string) (Source, string) {
	dir := t.TempDir()
	p := filepath.Join(dir, "Archive.mbox")
	writeFile(t, p, content)
	return Source{Name: "Archive", Path: p, Format: "mbox"}, p
}

func TestServeBytesAndFlags(t *testing.T) {
	content := mboxMsg(1, "Status: RO\nX-Status: AF\n") + mboxMsg(2, "X-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\n") + mboxMsg(3, "")
	src, _ := mboxSource(t, content)
	e := newEnv(t, src)
	c := e.client(nil)
	got := fetchAll(t, c, "Local/Archive")
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3", len(got))
	}
	wantBodies := []string{served(1, "Status: RO\nX-Status: AF\n"), served(2, ""), served(3, "")}
	wantFlags := [][]imap.Flag{{imap.FlagAnswered, imap.FlagFlagged, imap.FlagSeen}, {imap.FlagSeen}, {}}
	for i, m := range got {
		if string(m.Body) != wantBodies[i] {
			t.Errorf("message %d body:\n got %q\nwant %q", i+1, m.Body, wantBodies[i])
		}
		if m.Size != int64(len(m.Body)) {
			t.Errorf("message %d: RFC822.SIZE %d != len(BODY[]) %d", i+1, m.Size, len(m.Body))
		}
		if fmt.Sprint(m.Flags) != fmt.Sprint(wantFlags[i]) {
			t.Errorf("message %d flags = %v, want %v", i+1, m.Flags, wantFlags[i])
		}
		want := time.Date(2006, 1, 2, 15, 4, i+1, 0, time.UTC)
		if !m.Date.Equal(want) {
			t.Errorf("message %d INTERNALDATE = %v, want %v (From line)", i+1, m.Date, want)
		}
	}
	if got[0].UID != 1 || got[2].UID != 3 {
		t.Errorf("UIDs = %v, want 1,2,3", uids(got))
	}
}

func TestRestartKeepsUIDs(t *testing.T) {
	src, _ := mboxSource(t, mbox(1, 2, 3, 4))
	e := newEnv(t, src)
	c := e.client(nil)
	before := fetchAll(t, c, "Local/Archive")
	sd, err := c.Select("Local/Archive", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	e.restart()
	c = e.client(nil)
	after := fetchAll(t, c, "Local/Archive")
	sd2, err := c.Select("Local/Archive", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sd.UIDValidity != sd2.UIDValidity || sd.UIDValidity == 0 {
		t.Errorf("UIDVALIDITY %d then %d", sd.UIDValidity, sd2.UIDValidity)
	}
	if fmt.Sprint(uids(before)) != fmt.Sprint(uids(after)) {
		t.Errorf("UIDs changed across restart: %v then %v", uids(before), uids(after))
	}
}

func TestGrowAndCompact(t *testing.T) {
	src, path := mboxSource(t, mbox(1, 2, 3, 4))
	e := newEnv(t, src)

	exists := make(chan uint32, 16)
	idler := e.client(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists <- *d.NumMessages
		}
	}})
	if _, err := idler.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}

	// The old client appends two messages.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(mbox(5, 6))
	f.Close()
	rep, err := e.acct.Index(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 2 {
		t.Errorf("incremental index added %d messages, want 2", rep.Messages)
	}
	select {
	case n := <-exists:
		if n != 5 && n != 6 {
			t.Errorf("IDLE client got EXISTS %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("IDLE client was not told about the new messages")
	}
	idle.Close()
	idle.Wait()

	c := e.client(nil)
	got := fetchAll(t, c, "Local/Archive")
	if want := "[1 2 3 4 5 6]"; fmt.Sprint(uids(got)) != want {
		t.Fatalf("after growth UIDs = %v, want %s", uids(got), want)
	}
	for i, m := range got {
		if string(m.Body) != served(i+1, "") {
			t.Errorf("after growth, UID %d has the wrong bytes: %q", m.UID, m.Body)
		}
	}

	// Thunderbird compacts: messages 2 and 4 go, one new arrives.
	writeFile(t, path, mbox(1, 3, 5, 6, 7))
	if _, err := e.acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got = fetchAll(t, c, "Local/Archive")
	if want := "[1 3 5 6 7]"; fmt.Sprint(uids(got)) != want {
		t.Fatalf("after compaction UIDs = %v, want %s", uids(got), want)
	}
	for _, m := range got {
		if string(m.Body) != served(int(m.UID), "") {
			t.Errorf("after compaction, UID %d has the wrong bytes: %q", m.UID, m.Body)
		}
	}
}

func TestNeverServesWrongBytes(t *testing.T) {
	src, path := mboxSource(t, mbox(1, 2, 3))
	e := newEnv(t, src)
	// Rewrite message 2's body in place (same length), behind the index's back.
	data, _ := os.ReadFile(path)
	data = bytes.Replace(data, []byte("Body of message 2."), []byte("Body of message X."), 1)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := e.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(2), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	for _, m := range msgs {
		if b := m.FindBodySection(sec); b != nil {
			t.Fatalf("served %q for a message whose bytes changed", b)
		}
	}
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
		t.Fatalf("FETCH of a changed message: err = %v, want NO", err)
	}
}

func TestOverlayAndSeal(t *testing.T) {
	src, path := mboxSource(t, mbox(1, 2, 3, 4))
	e := newEnv(t, src)
	seal := sealOf(t, filepath.Dir(path))
	c := e.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "$Work"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Local/Kept", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cd, err := c.Move(imap.UIDSetNum(3), "Local/Kept").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cd.DestUIDs) != "1" {
		t.Errorf("COPYUID dest = %v, want 1", cd.DestUIDs)
	}
	msg := "From: a@example.com\r\nSubject: appended\r\n\r\nhello\r\n"
	if _, err := appendMsg(c, "Local/Kept", []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("Local/Kept", "Local/Kept2", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("Local/Archive", "Local/Other", nil).Wait(); err == nil {
		t.Error("renaming an archive folder succeeded")
	}
	if err := c.Delete("Local/Archive").Wait(); err == nil {
		t.Error("deleting an archive folder succeeded")
	}
	c.Close()

	e.restart()
	c = e.client(nil)
	got := fetchAll(t, c, "Local/Archive")
	if want := "[1 4]"; fmt.Sprint(uids(got)) != want {
		t.Fatalf("after restart UIDs = %v, want %s (2 expunged, 3 moved)", uids(got), want)
	}
	if fmt.Sprint(got[0].Flags) != fmt.Sprint([]imap.Flag{"$Work", imap.FlagFlagged}) {
		t.Errorf("overlay flags after restart = %v", got[0].Flags)
	}
	kept := fetchAll(t, c, "Local/Kept2")
	if len(kept) != 2 || string(kept[0].Body) != served(3, "") || string(kept[1].Body) != msg {
		t.Errorf("Local/Kept2 holds %d messages: %+v", len(kept), kept)
	}
	// The sealed archive: same bytes, same mtime, nothing added.
	after := sealOf(t, filepath.Dir(path))
	if len(after) != len(seal) {
		t.Errorf("archive dir has %d files, had %d", len(after), len(seal))
	}
	for p, s := range seal {
		if after[p] != s {
			t.Errorf("archive file %s changed", p)
		}
	}
}

func TestExamineIsReadOnly(t *testing.T) {
	src, _ := mboxSource(t, mbox(1, 2))
	e := newEnv(t, src)
	c := e.client(nil)
	if _, err := c.Select("Local/Archive", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err == nil {
		t.Error("STORE in an EXAMINEd folder succeeded")
	}
	if err := c.Expunge().Close(); err == nil {
		t.Error("EXPUNGE in an EXAMINEd folder succeeded")
	}
	sec := &imap.FetchItemBodySection{} // not PEEK: must not set \Seen when read-only
	if _, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect(); err != nil {
		t.Fatal(err)
	}
	got := fetchAll(t, c, "Local/Archive")
	if len(got[0].Flags) != 0 {
		t.Errorf("flags changed in a read-only folder: %v", got[0].Flags)
	}
}

func TestCopyDedupAndStar(t *testing.T) {
	src, _ := mboxSource(t, mbox(1, 2, 3))
	e := newEnv(t, src)
	c := e.client(nil)
	if err := c.Create("Local/Copies", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cd1, err := c.Copy(imap.UIDSetNum(1, 2), "Local/Copies").Wait()
	if err != nil {
		t.Fatal(err)
	}
	cd2, err := c.Copy(imap.UIDSetNum(1, 2), "Local/Copies").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cd1.DestUIDs) != fmt.Sprint(cd2.DestUIDs) {
		t.Errorf("second COPY made new UIDs %v (first %v): duplicated", cd2.DestUIDs, cd1.DestUIDs)
	}
	// An APPEND of the same message (Outlook's FETCH+APPEND move) is not duplicated either.
	body := []byte(served(1, ""))
	ad, err := appendMsg(c, "Local/Copies", body)
	if err != nil {
		t.Fatal(err)
	}
	if !cd1.DestUIDs.Contains(ad.UID) {
		t.Errorf("APPEND of a message already there got new UID %d", ad.UID)
	}
	got := fetchAll(t, c, "Local/Copies")
	if len(got) != 2 {
		t.Fatalf("Local/Copies has %d messages, want 2", len(got))
	}
	// UID FETCH n:* with n above the highest UID returns the highest (RFC 3501 6.4.8).
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// (raw protocol: imapclient drops responses outside the requested set)
	resp := rawSession(t, e.addr, "a SELECT Local/Archive", "b UID FETCH 100:* (FLAGS)")
	if !strings.Contains(resp, "* 3 FETCH (UID 3 FLAGS ()") {
		t.Errorf("UID FETCH 100:* did not return UID 3:\n%s", resp)
	}
}

func appendMsg(c *imapclient.Client, mailbox string, body []byte) (*imap.AppendData, error) {
	cmd := c.Append(mailbox, int64(len(body)), nil)
	if _, err := cmd.Write(body); err != nil {
		return nil, err
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	return cmd.Wait()
}

func TestSecondOpenIsLocked(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	e := newEnv(t, src)
	start := time.Now()
	_, err := store.Open(filepath.Join(e.dataDir, "popbridge.db"), store.Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "already running") {
		t.Errorf("error does not say already running: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second open took %v", d)
	}
}

// rawSession logs in, sends each command and returns everything the server
// said until the last command's tagged reply.
func rawSession(t *testing.T, addr string, cmds ...string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	var out strings.Builder
	readUntil := func(tag string) {
		for {
			line, err := br.ReadString('\n')
			out.WriteString(line)
			if err != nil {
				t.Fatalf("reading reply to %s: %v\n%s", tag, err, out.String())
			}
			if strings.HasPrefix(line, tag+" ") {
				return
			}
		}
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "l LOGIN u pw\r\n")
	readUntil("l")
	for _, c := range cmds {
		fmt.Fprintf(conn, "%s\r\n", c)
		readUntil(strings.Fields(c)[0])
	}
	return out.String()
}

// TestRawProtocolCorners: commands that panic stock go-imap setups on nil
// fields answer properly (NAMESPACE, STATUS with every item, SEARCH with no
// match, EXAMINE then UID FETCH of nothing).
func TestRawProtocolCorners(t *testing.T) {
	src, _ := mboxSource(t, mbox(1, 2))
	e := newEnv(t, src)
	resp := rawSession(t, e.addr,
		"a NAMESPACE",
		"b STATUS Local/Archive (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)",
		"c EXAMINE Local/Archive",
		"d SEARCH SUBJECT nothing-matches",
		"e UID SEARCH ALL",
		"f UID FETCH 50:60 (FLAGS)",
		"g STORE 1 +FLAGS (\\Seen)",
		"h FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
	for _, want := range []string{
		`* NAMESPACE (("" "/")) NIL NIL`,
		"a OK",
		`* STATUS "Local/Archive" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY `,
		"b OK",
		"* SEARCH\r\n",
		"d OK",
		"* SEARCH 1 2\r\n",
		"f OK",
		"g NO",
		"Subject: message 1\r\n\r\n",
	} {
		if !strings.Contains(resp, want) {
			t.Errorf("response lacks %q:\n%s", want, resp)
		}
	}
	if i, j := strings.Index(resp, "e OK"), strings.Index(resp, "f OK"); i < 0 || j < i || strings.Contains(resp[i:j], "FETCH (") {
		t.Errorf("UID FETCH 50:60 returned a message although no UID is in range:\n%s", resp)
	}
}
