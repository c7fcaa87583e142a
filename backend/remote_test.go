package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/store"
)

// remoteEnv is a bridge over an mbox archive and a private Dovecot.
type remoteEnv struct {
	*env
	dc     *testenv.Dovecot
	user   string
	cancel context.CancelFunc
}

func newRemoteEnv(t *testing.T, users []testenv.DovecotUser, sources ...Source) *remoteEnv {
	t.Helper()
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{Users: users})
	user := dc.Users[0]
	re := &remoteEnv{dc: dc, user: user.Name}
	e := &env{t: t, dataDir: t.TempDir(), sources: sources}
	re.env = e
	e.newRemote = dovecotPool(t, dc)
	e.start()
	t.Cleanup(e.stop)
	return re
}

// dovecotPool makes upstream pools for dc's first user.
func dovecotPool(t *testing.T, dc *testenv.Dovecot) func() *upstream.Pool {
	return serverPool(t, dc, dc.Users[0].Name)
}

// serverPool makes upstream pools for user of any test server (Dovecot,
// Courier, Cyrus, the provider emulators): plain IMAP on loopback, the
// password login every one of them offers.
func serverPool(t testing.TB, srv testenv.Server, user string) func() *upstream.Pool {
	return serverPoolN(t, srv, user, 4)
}

// serverPoolN is serverPool with maxConns connections.
func serverPoolN(t testing.TB, srv testenv.Server, user string, maxConns int) func() *upstream.Pool {
	host, portText, err := net.SplitHostPort(srv.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	password := srv.Password(t, user)
	return func() *upstream.Pool {
		pool, err := upstream.New(upstream.Options{
			Host: host, Port: port, TLS: upstream.TLSNone, Username: user,
			Password:       func(context.Context) (string, error) { return password, nil },
			MaxConnections: maxConns,
			Logger:         dbgLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return pool
	}
}

// dbgLogger is the bridge's and the pool's logger in tests: silent, or
// with POPBRIDGE_TEST_LOG=1 everything on stderr.
func dbgLogger() *slog.Logger {
	if os.Getenv("POPBRIDGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// bridgeEnv is a bridge (account, front door, upstream pool) over the
// given archive sources and user's account on any test server.
type bridgeEnv struct {
	*env
	srv  testenv.Server
	user string
}

func newBridgeEnv(t *testing.T, srv testenv.Server, user string, sources ...Source) *bridgeEnv {
	t.Helper()
	return newBridgeEnvConns(t, srv, user, 4, sources...)
}

// newBridgeEnvConns is newBridgeEnv with a pool of maxConns connections
// (the INBOX watcher takes one).
func newBridgeEnvConns(t *testing.T, srv testenv.Server, user string, maxConns int, sources ...Source) *bridgeEnv {
	t.Helper()
	e := &env{t: t, dataDir: t.TempDir(), sources: sources, newRemote: serverPoolN(t, srv, user, maxConns)}
	e.start()
	t.Cleanup(e.stop)
	return &bridgeEnv{env: e, srv: srv, user: user}
}

// serverClient is a client of the server itself, logged in as the user.
func (be *bridgeEnv) serverClient() *imapclient.Client { return be.srv.Client(be.t, be.user) }

func (re *remoteEnv) dovecotClient() *imapclient.Client { return re.dc.Client(re.t, re.user) }

func TestRemoteMirrorAndFetch(t *testing.T) {
	src, _ := mboxSource(t, mbox(1, 2))
	re := newRemoteEnv(t, nil, src)
	msgA := []byte("From: a@example.com\r\nSubject: on the server\r\nMessage-ID: <srv-1@example.com>\r\n\r\nserver body\r\n")
	uidA := re.dc.Append(t, re.user, "INBOX", msgA, []imap.Flag{imap.FlagSeen}, time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC))
	c := re.client(nil)
	names := map[string][]imap.MailboxAttr{}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		names[l.Mailbox] = l.Attrs
	}
	for _, want := range []string{"INBOX", "Sent", "Trash", "Local", "Local/Archive"} {
		if _, ok := names[want]; !ok {
			t.Errorf("LIST lacks %q: %v", want, names)
		}
	}
	if fmt.Sprint(names["Sent"]) == "" || !strings.Contains(fmt.Sprint(names["Sent"]), `\Sent`) {
		t.Errorf("Sent lacks \\Sent: %v", names["Sent"])
	}
	sd, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	dsd, err := re.dovecotClient().Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sd.UIDValidity != dsd.UIDValidity {
		t.Errorf("UIDVALIDITY %d, upstream's is %d", sd.UIDValidity, dsd.UIDValidity)
	}
	got := fetchAll(t, c, "INBOX")
	if len(got) != 1 || got[0].UID != uidA || !bytes.Equal(got[0].Body, msgA) || fmt.Sprint(got[0].Flags) != `[\Seen]` {
		t.Fatalf("INBOX through the bridge = %+v, want UID %d with the server's bytes", got, uidA)
	}
	if !got[0].Date.Equal(time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("INTERNALDATE %v", got[0].Date)
	}
	// STORE and EXPUNGE go to the server.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(uidA), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if m := re.dc.Messages(t, re.user, "INBOX"); len(m) != 1 || fmt.Sprint(m[0].Flags) != `[\Flagged \Seen]` {
		t.Errorf("server flags after STORE: %+v", m)
	}
	if err := c.Store(imap.UIDSetNum(uidA), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if m := re.dc.Messages(t, re.user, "INBOX"); len(m) != 0 {
		t.Errorf("server still has %d messages after EXPUNGE", len(m))
	}
}

func TestDragToServerDedup(t *testing.T) {
	// Message 2 carries Thunderbird's bookkeeping headers in the archive;
	// the server already has it without them and with LF line ends (the
	// old POP client left a copy there).
	content := mboxMsg(1, "Status: RO\nX-Status: F\n") + mboxMsg(2, "X-Mozilla-Status: 0001\nX-UIDL: 12345\n") + mboxMsg(3, "")
	src, path := mboxSource(t, content)
	re := newRemoteEnv(t, nil, src)
	seal := sealOf(t, filepath.Dir(path))
	pre := strings.ReplaceAll(served(2, ""), "\r\n", "\n")
	preUID := re.dc.Append(t, re.user, "INBOX", []byte(pre), nil, time.Time{})

	c := re.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cd, err := c.Copy(imap.UIDSetNum(1, 2), "INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	srv := re.dc.Messages(t, re.user, "INBOX")
	if len(srv) != 2 {
		t.Fatalf("server INBOX has %d messages after the COPY, want 2 (one uploaded, one already there)", len(srv))
	}
	if !cd.DestUIDs.Contains(preUID) {
		t.Errorf("COPYUID %v does not map the message already on the server to UID %d", cd.DestUIDs, preUID)
	}
	var up testenv.Msg
	for _, m := range srv {
		if m.UID != preUID {
			up = m
		}
	}
	if string(up.Body) != served(1, "Status: RO\nX-Status: F\n") {
		t.Errorf("uploaded bytes differ:\n%q", up.Body)
	}
	if fmt.Sprint(up.Flags) != `[\Flagged \Seen]` {
		t.Errorf("uploaded flags %v", up.Flags)
	}
	if !up.InternalDate.Equal(time.Date(2006, 1, 2, 15, 4, 1, 0, time.UTC)) {
		t.Errorf("uploaded INTERNALDATE %v", up.InternalDate)
	}
	// Again: nothing new (also after a restart of the bridge).
	c.Close()
	re.restart()
	c = re.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cd2, err := c.Copy(imap.UIDSetNum(1, 2), "INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cd2.DestUIDs) != fmt.Sprint(cd.DestUIDs) {
		t.Errorf("second COPY mapped to %v, first to %v", cd2.DestUIDs, cd.DestUIDs)
	}
	if n := len(re.dc.Messages(t, re.user, "INBOX")); n != 2 {
		t.Errorf("server INBOX has %d messages after copying again, want 2", n)
	}
	// MOVE: uploaded, then hidden locally; the archive file is untouched.
	if _, err := c.Move(imap.UIDSetNum(3), "INBOX").Wait(); err != nil {
		t.Fatal(err)
	}
	if got := fetchAll(t, c, "Local/Archive"); fmt.Sprint(uids(got)) != "[1 2]" {
		t.Errorf("after MOVE Local/Archive has %v", uids(got))
	}
	if n := len(re.dc.Messages(t, re.user, "INBOX")); n != 3 {
		t.Errorf("server INBOX has %d messages after MOVE, want 3", n)
	}
	// Outlook's move: FETCH + APPEND + EXPUNGE — the APPEND is deduplicated.
	ad, err := appendMsg(c, "INBOX", []byte(served(1, "Status: RO\nX-Status: F\n")))
	if err != nil {
		t.Fatal(err)
	}
	if !cd.DestUIDs.Contains(ad.UID) {
		t.Errorf("APPEND of a message already on the server got UID %d", ad.UID)
	}
	if n := len(re.dc.Messages(t, re.user, "INBOX")); n != 3 {
		t.Errorf("server INBOX has %d messages after the duplicate APPEND, want 3", n)
	}
	after := sealOf(t, filepath.Dir(path))
	for p, s := range seal {
		if after[p] != s {
			t.Errorf("archive file %s changed", p)
		}
	}
	// The mapping legacy → server survived the restart.
	var ups map[uint32][]store.Upload
	if err := re.db.View(func(tx *store.Tx) error {
		f, err := tx.Folder("Local/Archive")
		if err != nil {
			return err
		}
		ups, err = tx.Uploads(f.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ups[1]) == 0 || ups[1][0].Folder != "INBOX" {
		t.Errorf("upload record of UID 1: %+v", ups)
	}
}

func TestMoveServerToLocal(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	re := newRemoteEnv(t, nil, src)
	msg := []byte("From: big@example.com\r\nSubject: keep me locally\r\n\r\nold mail\r\n")
	uid := re.dc.Append(t, re.user, "INBOX", msg, []imap.Flag{imap.FlagAnswered}, time.Time{})
	c := re.client(nil)
	if err := c.Create("Local/Kept", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(uid), "Local/Kept").Wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(re.dc.Messages(t, re.user, "INBOX")); n != 0 {
		t.Errorf("server still has %d messages after MOVE to Local", n)
	}
	got := fetchAll(t, c, "Local/Kept")
	if len(got) != 1 || !bytes.Equal(got[0].Body, msg) || fmt.Sprint(got[0].Flags) != `[\Answered]` {
		t.Errorf("Local/Kept = %+v", got)
	}
}

func TestQuotaRefusedBeforeUpload(t *testing.T) {
	big := strings.Repeat("x", 4000) + "\n"
	var content strings.Builder
	for i := 1; i <= 5; i++ {
		content.WriteString(mboxMsg(i, ""))
		content.WriteString(strings.Repeat(big, 2))
	}
	src, _ := mboxSource(t, content.String())
	re := newRemoteEnv(t, []testenv.DovecotUser{{Name: "q", Password: "q-pw", QuotaBytes: 20 << 10}}, src)
	c := re.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Copy(imap.UIDSetNum(1, 2, 3, 4, 5), "INBOX").Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != "OVERQUOTA" {
		t.Fatalf("COPY over quota: %v, want NO [OVERQUOTA]", err)
	}
	if !strings.Contains(ie.Text, "need") || !strings.Contains(ie.Text, "free") {
		t.Errorf("quota refusal does not give the numbers: %q", ie.Text)
	}
	if n := len(re.dc.Messages(t, re.user, "INBOX")); n != 0 {
		t.Errorf("%d messages were uploaded before the refusal", n)
	}
}

func TestIdleSeesServerMail(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	re := newRemoteEnv(t, nil, src)
	exists := make(chan uint32, 16)
	c := re.client(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists <- *d.NumMessages
		}
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	re.dc.Append(t, re.user, "INBOX", []byte("From: x@example.com\r\nSubject: new\r\n\r\nhi\r\n"), nil, time.Time{})
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d, want 1", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("new server mail did not reach the idling client")
	}
}

func TestPrefixClash(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	re := newRemoteEnv(t, nil, src)
	re.dc.Append(t, re.user, "Local", []byte("From: x@example.com\r\n\r\nx\r\n"), nil, time.Time{})
	err := re.acct.SyncFolders(context.Background())
	if !errors.Is(err, ErrPrefixClash) || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("SyncFolders with a server folder named Local: %v", err)
	}
}

func TestRemoteSearchByServer(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	re := newRemoteEnv(t, nil, src)
	re.dc.Append(t, re.user, "INBOX", []byte("From: a@example.com\r\nSubject: first\r\n\r\nhaystack only\r\n"), nil, time.Time{})
	u2 := re.dc.Append(t, re.user, "INBOX", []byte("From: b@example.com\r\nSubject: second\r\n\r\nthe needle is here\r\n"), []imap.Flag{imap.FlagSeen}, time.Time{})
	c := re.client(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    imap.SearchCriteria
		want string
	}{
		{"body", imap.SearchCriteria{Body: []string{"needle"}}, fmt.Sprint([]imap.UID{u2})},
		{"body and seen", imap.SearchCriteria{Body: []string{"needle"}, Flag: []imap.Flag{imap.FlagSeen}}, fmt.Sprint([]imap.UID{u2})},
		{"seq 1 and body", imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(1)}, Body: []string{"needle"}}, "[]"},
		{"not body", imap.SearchCriteria{Not: []imap.SearchCriteria{{Body: []string{"needle"}}}}, "[1]"},
	} {
		d, err := c.UIDSearch(&tc.c, nil).Wait()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := fmt.Sprint(d.AllUIDs()); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestUpstreamDiesMidMove: the server goes away during a MOVE; the client
// gets a NO, nothing is hidden locally that is not on the server, and once
// the server is back the bridge reconnects by itself and the MOVE
// finishes with every message exactly once upstream.
func TestUpstreamDiesMidMove(t *testing.T) {
	const n = 600
	var content strings.Builder
	pad := strings.Repeat("padding line to make the upload take a moment\n", 200)
	for i := 1; i <= n; i++ {
		content.WriteString(mboxMsg(i, ""))
		content.WriteString(pad)
		content.WriteString("\n")
	}
	src, _ := mboxSource(t, content.String())
	re := newRemoteEnv(t, nil, src)
	c := re.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	moved := make(chan error, 1)
	go func() {
		_, err := c.Move(imap.SeqSet{{Start: 1, Stop: 0}}, "INBOX").Wait()
		moved <- err
	}()
	watcher := re.dovecotClient()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := watcher.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if *st.NumMessages >= 50 {
			if *st.NumMessages >= n {
				t.Fatalf("the MOVE finished before the server could be stopped; make the corpus bigger")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("upload did not start")
		}
		time.Sleep(5 * time.Millisecond) // polling the server's progress
	}
	watcher.Close()
	re.dc.Stop(t)
	if err := <-moved; err == nil {
		t.Fatal("MOVE succeeded although the server went away")
	}
	re.dc.Restart(t)
	onServer := len(re.dc.Messages(t, re.user, "INBOX"))
	local := fetchAll(t, re.client(nil), "Local/Archive")
	if len(local)+onServer < n {
		t.Fatalf("messages lost: %d still local + %d on the server < %d", len(local), onServer, n)
	}
	// Retry: the pool reconnects by itself.
	c2 := re.client(nil)
	if _, err := c2.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Move(imap.SeqSet{{Start: 1, Stop: 0}}, "INBOX").Wait(); err != nil {
		t.Fatalf("MOVE after the server came back: %v", err)
	}
	srv := re.dc.Messages(t, re.user, "INBOX")
	subjects := map[string]int{}
	for _, m := range srv {
		subjects[string(bytes.SplitN(bytes.SplitN(m.Body, []byte("Subject: "), 2)[1], []byte("\r\n"), 2)[0])]++
	}
	if len(srv) != n || len(subjects) != n {
		t.Errorf("server has %d messages, %d distinct; want %d each exactly once", len(srv), len(subjects), n)
	}
	if got := fetchAll(t, c2, "Local/Archive"); len(got) != 0 {
		t.Errorf("%d messages still visible locally after the MOVE", len(got))
	}
}

// TestTwoClientsCopyAndIdle: one client drags into INBOX, the other,
// idling on INBOX, sees EXISTS.
func TestTwoClientsCopyAndIdle(t *testing.T) {
	src, _ := mboxSource(t, mbox(1, 2))
	re := newRemoteEnv(t, nil, src)
	exists := make(chan uint32, 16)
	idler := re.client(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists <- *d.NumMessages
		}
	}})
	if _, err := idler.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	c := re.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(imap.UIDSetNum(1, 2), "INBOX").Wait(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case n := <-exists:
			if n == 2 {
				return
			}
		case <-timeout:
			t.Fatal("the idling client was not told about the copied messages")
		}
	}
}

// TestPartialMoveKeepsRefused: the server refuses the second message (its
// message-count quota); the first is uploaded and hidden, the second stays
// local, and the NO says how many and why.
func TestPartialMoveKeepsRefused(t *testing.T) {
	src, _ := mboxSource(t, mbox(1, 2))
	re := newRemoteEnv(t, []testenv.DovecotUser{{Name: "one", Password: "one-pw", QuotaMessages: 1}}, src)
	c := re.client(nil)
	if _, err := c.Select("Local/Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Move(imap.UIDSetNum(1, 2), "INBOX").Wait()
	if err == nil || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("MOVE with one refused message: %v, want a NO saying 1 of 2", err)
	}
	srv := re.dc.Messages(t, re.user, "INBOX")
	local := fetchAll(t, c, "Local/Archive")
	if len(srv) != 1 || len(local) != 1 {
		t.Fatalf("server has %d, local shows %d; want 1 and 1", len(srv), len(local))
	}
	if string(srv[0].Body) == string(local[0].Body) {
		t.Error("the same message is on the server and still local; the other one is lost")
	}
}

// TestUpstreamFolderCommands: CREATE, RENAME, SUBSCRIBE, DELETE of server
// folders go to the server.
func TestUpstreamFolderCommands(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	re := newRemoteEnv(t, nil, src)
	c := re.client(nil)
	if err := c.Create("Projects/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("Projects/2024", "Projects/Done", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("Projects/Done").Wait(); err != nil {
		t.Fatal(err)
	}
	dl, err := re.dovecotClient().List("", "Projects/*", nil).Collect()
	if err != nil || len(dl) != 1 || dl[0].Mailbox != "Projects/Done" {
		t.Fatalf("server folders after CREATE+RENAME: %v %v", dl, err)
	}
	sub, err := re.dovecotClient().List("", "Projects/Done", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil || len(sub) != 1 {
		t.Errorf("not subscribed on the server: %v %v", sub, err)
	}
	if st, err := c.Status("Projects/Done", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *st.NumMessages != 0 {
		t.Errorf("STATUS of the new server folder: %v %v", st, err)
	}
	if err := c.Delete("Projects/Done").Wait(); err != nil {
		t.Fatal(err)
	}
	if dl, _ := re.dovecotClient().List("", "Projects/Done", nil).Collect(); len(dl) != 0 {
		t.Errorf("DELETE did not reach the server: %v", dl)
	}
	names, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Mailbox == "Projects/Done" {
			t.Error("the bridge still lists the deleted folder")
		}
	}
}

// A big first sync of an upstream folder commits in chunks of syncChunk
// messages; the result must be the same as one commit: every UID, byte and
// flag of the server, UIDNEXT no lower than the server's, and the mirror
// intact after a restart.
func TestRemoteSyncInChunks(t *testing.T) {
	old := syncChunk
	syncChunk = 3
	t.Cleanup(func() { syncChunk = old })
	src, _ := mboxSource(t, mbox(1))
	re := newRemoteEnv(t, nil, src)
	for i := range 8 {
		var fl []imap.Flag
		if i%2 == 0 {
			fl = []imap.Flag{imap.FlagSeen}
		}
		msg := fmt.Appendf(nil, "From: s%d@example.com\r\nSubject: chunk %d\r\nMessage-ID: <chunk-%d@example.com>\r\n\r\nbody %d\r\n", i, i, i, i)
		re.dc.Append(t, re.user, "INBOX", msg, fl, time.Date(2021, 1, 1+i, 0, 0, 0, 0, time.UTC))
	}
	check := func(stage string) {
		t.Helper()
		want := re.dc.Messages(t, re.user, "INBOX")
		c := re.client(nil)
		got := fetchAll(t, c, "INBOX")
		if len(got) != len(want) {
			t.Fatalf("%s: bridge shows %d messages in INBOX, server has %d", stage, len(got), len(want))
		}
		for i := range want {
			if got[i].UID != want[i].UID || !bytes.Equal(got[i].Body, want[i].Body) || fmt.Sprint(got[i].Flags) != fmt.Sprint(want[i].Flags) {
				t.Errorf("%s: message %d: bridge UID %d flags %v, server UID %d flags %v (bytes equal: %v)",
					stage, i+1, got[i].UID, got[i].Flags, want[i].UID, want[i].Flags, bytes.Equal(got[i].Body, want[i].Body))
			}
		}
		sd, err := c.Status("INBOX", &imap.StatusOptions{UIDNext: true, NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if len(want) > 0 && sd.UIDNext <= want[len(want)-1].UID {
			t.Errorf("%s: UIDNEXT %d not above the highest UID %d", stage, sd.UIDNext, want[len(want)-1].UID)
		}
		if *sd.NumMessages != uint32(len(want)) {
			t.Errorf("%s: STATUS MESSAGES %d, want %d", stage, *sd.NumMessages, len(want))
		}
		c.Close()
	}
	check("first sync")
	for i := 8; i < 12; i++ {
		msg := fmt.Appendf(nil, "From: s%d@example.com\r\nSubject: chunk %d\r\n\r\nbody %d\r\n", i, i, i)
		re.dc.Append(t, re.user, "INBOX", msg, nil, time.Date(2021, 2, 1, 0, 0, 0, 0, time.UTC))
	}
	check("incremental sync")
	re.restart()
	check("after restart")
}

func TestUploadWorkers(t *testing.T) {
	for _, c := range []struct {
		maxConns  int
		exclusive bool
		n, want   int
	}{
		{4, false, 100, 3}, // the bridge leaves one for clients
		{4, true, 100, 4},  // popbridge migrate alone uses all
		{1, false, 100, 1}, // never zero
		{1, true, 100, 1},
		{8, true, 2, 2}, // no idle workers
		{8, false, 0, 0},
	} {
		if got := uploadWorkers(c.maxConns, c.exclusive, c.n); got != c.want {
			t.Errorf("uploadWorkers(%d, %v, %d) = %d, want %d", c.maxConns, c.exclusive, c.n, got, c.want)
		}
	}
}
