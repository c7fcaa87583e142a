package pop3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/store"
)

func TestRoundsAndIdle(t *testing.T) {
	dc := startDovecot(t, false)
	msgs := [][]byte{genMsg(1, ""), genMsg(2, ".leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n"), genMsg(3, "")}
	deliverAll(t, dc, msgs...)
	b := newBridge(t, bridgeOptions{})
	f := newFetcher(t, b, nil, plainAccount(dc.POP3Port))

	res := round(t, f)
	wantCounts(t, "round 1", res, 3, 0, 0, 0)
	var total int64
	for _, m := range msgs {
		total += int64(len(m))
	}
	if res.OnServer != 3 || res.Bytes != total {
		t.Errorf("round 1: on server %d, bytes %d; want 3, %d", res.OnServer, res.Bytes, total)
	}
	sameBodies(t, "Local/Inbox after round 1", b.bodies("Local/Inbox"), msgs)

	res = round(t, f)
	wantCounts(t, "round 2", res, 0, 0, 0, 0)
	if res.Bytes != 0 {
		t.Errorf("round 2 downloaded %d bytes", res.Bytes)
	}

	// An idling client of the bridge sees the next message arrive.
	exists := make(chan uint32, 8)
	c := b.client(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists <- *d.NumMessages
		}
	}})
	if _, err := c.Select("Local/Inbox", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	m4 := genMsg(4, "")
	deliverAll(t, dc, m4)
	res = round(t, f)
	wantCounts(t, "round 3", res, 1, 0, 0, 0)
	select {
	case n := <-exists:
		if n != 4 {
			t.Errorf("EXISTS %d, want 4", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idling client saw no EXISTS")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	sameBodies(t, "Local/Inbox after round 3", b.bodies("Local/Inbox"), append(msgs, m4))
	// Left on the server.
	if n := len(serverBodies(t, dc, popUser)); n != 4 {
		t.Errorf("%d messages left on the server, want 4", n)
	}

	st, err := Status(b.db, "old")
	if err != nil {
		t.Fatal(err)
	}
	if st.Fetched != 4 || st.Skipped != 0 || st.OnServer != 4 || st.Tracked != 4 || st.LastRun.IsZero() || st.LastSuccess.IsZero() || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
	if !strings.Contains(st.LastResult, "fetched 1") {
		t.Errorf("last result %q", st.LastResult)
	}
}

// mboxEntry renders msg (CRLF) as a Thunderbird mbox entry with extra
// header lines.
func mboxEntry(msg []byte, extra ...string) string {
	s := strings.ReplaceAll(string(msg), "\r\n", "\n")
	hdr, body, _ := strings.Cut(s, "\n\n")
	for _, e := range extra {
		hdr += "\n" + e
	}
	return "From - Mon Jan  2 15:04:05 2006\n" + hdr + "\n\n" + body + "\n"
}

func TestArchiveOverlap(t *testing.T) {
	dc := startDovecot(t, false)
	var msgs [][]byte
	for i := 1; i <= 5; i++ {
		msgs = append(msgs, genMsg(i, ""))
	}
	deliverAll(t, dc, msgs...)
	uidls := serverUIDLs(t, dc.POP3Port)
	if len(uidls) != 5 {
		t.Fatalf("server lists %d messages", len(uidls))
	}

	// The old client's Inbox: 1 and 2 with their X-UIDL, 3 without (same
	// content), 4 only in popstate.dat, 5 nowhere. A popstate section for
	// another server lists 5: it must not count.
	dir := filepath.Join(t.TempDir(), "Mail", "pop.example.com")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	inbox := mboxEntry(msgs[0], "X-UIDL: "+uidls[0].uidl, "X-Mozilla-Status: 0001") +
		mboxEntry(msgs[1], "X-UIDL: "+uidls[1].uidl, "X-Mozilla-Status: 0001") +
		mboxEntry(msgs[2], "X-Mozilla-Status: 0001")
	if err := os.WriteFile(filepath.Join(dir, "Inbox"), []byte(inbox), 0o644); err != nil {
		t.Fatal(err)
	}
	popstate := filepath.Join(dir, "popstate.dat")
	ps := fmt.Sprintf("# POP3 State File\n# This is a generated file!  Do not edit.\n\n*127.0.0.1 %s\nk %s 1262304000\n\n*other.example.com %s\nk %s 1262304000\n",
		popUser, uidls[3].uidl, popUser, uidls[4].uidl)
	if err := os.WriteFile(popstate, []byte(ps), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBridge(t, bridgeOptions{sources: []backend.Source{{Name: "Inbox", Path: filepath.Join(dir, "Inbox"), Format: "mbox"}}})
	a := plainAccount(dc.POP3Port)
	a.PopstateFiles = []string{popstate}
	f := newFetcher(t, b, nil, a)

	res := round(t, f)
	wantCounts(t, "first round", res, 1, 4, 0, 0)
	// Only 3 (to check its content) and 5 were downloaded.
	if want := int64(len(msgs[2]) + len(msgs[4])); res.Bytes != want {
		t.Errorf("downloaded %d bytes, want %d (messages 3 and 5 only)", res.Bytes, want)
	}
	// The archive's Inbox is Local/Inbox: its three messages, then the
	// one fetched.
	got := b.bodies("Local/Inbox")
	if len(got) != 4 || !bytes.Equal(got[3], msgs[4]) {
		t.Errorf("Local/Inbox: %d messages, the last %q; want 4, the last %q", len(got), got[len(got)-1], msgs[4])
	}
	var recs map[string]store.POP3Record
	b.db.View(func(tx *store.Tx) error {
		recs, _ = tx.POP3Records("old")
		return nil
	})
	for i, want := range []string{ReasonArchiveUIDL, ReasonArchiveUIDL, ReasonContent, ReasonPopstate, ""} {
		r := recs[uidls[i].uidl]
		if r.Reason != want {
			t.Errorf("message %d recorded as %s/%q, want reason %q", i+1, r.State, r.Reason, want)
		}
	}
	wantCounts(t, "second round", round(t, f), 0, 0, 0, 0)

	// leave_on_server = false now: everything whose copy is at hand goes;
	// the popstate-only message stays (the old client's copy is not
	// proven to exist).
	a.LeaveOnServer = false
	f2 := newFetcher(t, b, nil, a)
	wantCounts(t, "deleting round", round(t, f2), 0, 0, 0, 4)
	sameBodies(t, "left on the server", serverBodies(t, dc, popUser), msgs[3:4])
	if st, _ := Status(b.db, "old"); st.Deleted != 4 || st.Fetched != 1 || st.Skipped != 4 {
		t.Errorf("status %+v", st)
	}
}

func TestLeaveOnServerFalse(t *testing.T) {
	dc := startDovecot(t, false)
	msgs := [][]byte{genMsg(1, ""), genMsg(2, ""), genMsg(3, "")}
	deliverAll(t, dc, msgs...)
	b := newBridge(t, bridgeOptions{})
	a := plainAccount(dc.POP3Port)
	a.LeaveOnServer = false

	// Delivery of message 2 fails: the round stops, and nothing is deleted
	// on the server, not even message 1 (which is stored).
	failing := &failSink{Sink: b.acct, n: 2}
	f := newFetcher(t, b, failing, a)
	res, err := f.Round(context.Background())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("round: %v", err)
	}
	wantCounts(t, "failed round", res, 1, 0, 0, 0)
	sameBodies(t, "server after the failed round", serverBodies(t, dc, popUser), msgs)
	sameBodies(t, "Local/Inbox after the failed round", b.bodies("Local/Inbox"), msgs[:1])
	if st, _ := Status(b.db, "old"); !strings.Contains(st.LastError, "disk full") || st.LastErrorAt.IsZero() {
		t.Errorf("status after failure %+v", st)
	}

	res = round(t, newFetcher(t, b, nil, a))
	wantCounts(t, "second round", res, 2, 0, 0, 3)
	sameBodies(t, "server after the second round", serverBodies(t, dc, popUser), nil)
	sameBodies(t, "Local/Inbox", b.bodies("Local/Inbox"), msgs)
}

type failSink struct {
	Sink
	n, calls int
}

func (s *failSink) Deliver(ctx context.Context, folder string, msg []byte, date time.Time) (imap.UID, bool, error) {
	s.calls++
	if s.calls == s.n {
		return 0, false, errors.New("disk full")
	}
	return s.Sink.Deliver(ctx, folder, msg, date)
}

// TestKillMidRound: the bridge dies right after a message is stored and
// before it is recorded (and before QUIT); a new Fetcher on the same
// database loses nothing and stores nothing twice, with deletion on.
func TestKillMidRound(t *testing.T) {
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprintf("stored=%v", stored), func(t *testing.T) {
			dc := startDovecot(t, false)
			var msgs [][]byte
			for i := 1; i <= 5; i++ {
				msgs = append(msgs, genMsg(i, ""))
			}
			deliverAll(t, dc, msgs...)
			b := newBridge(t, bridgeOptions{})
			a := plainAccount(dc.POP3Port)
			a.LeaveOnServer = false
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := newFetcher(t, b, &crashSink{Sink: b.acct, n: 3, stored: stored, cancel: cancel}, a)
			res, err := f.Round(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("round: %v", err)
			}
			wantCounts(t, "killed round", res, 2, 0, 0, 0)
			sameBodies(t, "server after the kill", serverBodies(t, dc, popUser), msgs)

			res = round(t, newFetcher(t, b, nil, a))
			if stored {
				// Message 3 is downloaded again and recognised.
				wantCounts(t, "after restart", res, 2, 1, 0, 5)
			} else {
				wantCounts(t, "after restart", res, 3, 0, 0, 5)
			}
			sameBodies(t, "Local/Inbox", b.bodies("Local/Inbox"), msgs)
			sameBodies(t, "server", serverBodies(t, dc, popUser), nil)
		})
	}
}

// TestDropMidRetr: the server drops the connection in the middle of a
// message; nothing is recorded for it and the next round gets it.
func TestDropMidRetr(t *testing.T) {
	dc := startDovecot(t, false)
	msgs := [][]byte{genMsg(1, ""), genMsg(2, "first line\r\nCUT-HERE\r\nlast line\r\n"), genMsg(3, "")}
	deliverAll(t, dc, msgs...)
	p := newProxy(t, dc.POP3Addr(), nil)
	p.cutAt("CUT-HERE")
	b := newBridge(t, bridgeOptions{})
	a := plainAccount(p.port())
	a.LeaveOnServer = false
	f := newFetcher(t, b, nil, a)
	res, err := f.Round(context.Background())
	t.Log(err)
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindDisconnected || !strings.Contains(err.Error(), "RETR 2") {
		t.Fatalf("round through a dropping server: %v", err)
	}
	wantCounts(t, "dropped round", res, 1, 0, 0, 0)
	var n int
	b.db.View(func(tx *store.Tx) error { n, _ = tx.POP3RecordCount("old"); return nil })
	if n != 1 {
		t.Errorf("%d records after the drop, want 1", n)
	}
	sameBodies(t, "server after the drop", serverBodies(t, dc, popUser), msgs)

	p.cutAt("")
	wantCounts(t, "next round", round(t, f), 2, 0, 0, 3)
	sameBodies(t, "Local/Inbox", b.bodies("Local/Inbox"), msgs)
}

func TestWrongPassword(t *testing.T) {
	dc := startDovecot(t, false)
	deliverAll(t, dc, genMsg(1, ""))
	p := newProxy(t, dc.POP3Addr(), nil)
	b := newBridge(t, bridgeOptions{})
	pw := "wrong"
	a := plainAccount(p.port())
	a.Password = func(context.Context) (string, error) { return pw, nil }
	logs := &logCounter{}
	f, err := New(b.db, b.acct, a, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Round(context.Background())
	t.Log(err)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "rejected the username or password") || !strings.Contains(err.Error(), p.ln.Addr().String()) {
		t.Fatalf("wrong password: %v", err)
	}
	f.logAuth(err)
	if p.accepted.Load() != 1 {
		t.Fatalf("%d connections", p.accepted.Load())
	}
	// Again: not sent to the server, logged at most once.
	_, err = f.Round(context.Background())
	t.Log(err)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "unless the password changes") {
		t.Fatalf("second round: %v", err)
	}
	f.logAuth(err)
	if n := p.accepted.Load(); n != 1 {
		t.Errorf("the second round connected again (%d connections)", n)
	}
	if n := logs.count("ERROR"); n != 1 {
		t.Errorf("%d error records for the same wrong password, want 1: %q", n, logs.recs)
	}
	if st, _ := Status(b.db, "old"); !strings.Contains(st.LastError, "rejected") {
		t.Errorf("status: %+v", st)
	}
	// The password changes: tried at once.
	pw = popPass
	wantCounts(t, "fixed password", round(t, f), 1, 0, 0, 0)
	if n := p.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	// A password callback that fails.
	a.Password = func(context.Context) (string, error) { return "", errors.New("password_file: no such file") }
	_, err = newFetcher(t, b, nil, a).Round(context.Background())
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindCredentials || !strings.Contains(err.Error(), "password_file: no such file") {
		t.Errorf("failing password callback: %v", err)
	}
}

// TestRunLoop: Run fetches, keeps going after a rejected password without
// contacting the server again or logging more than once, and stops with
// its context.
func TestRunLoop(t *testing.T) {
	dc := startDovecot(t, false)
	deliverAll(t, dc, genMsg(1, ""))
	p := newProxy(t, dc.POP3Addr(), nil)
	b := newBridge(t, bridgeOptions{})
	logs := &logCounter{notify: make(chan string, 64)}
	a := plainAccount(p.port())
	a.Interval = time.Millisecond
	a.Password = password("wrong")
	f, err := New(b.db, b.acct, a, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		f.Run(ctx)
		close(done)
	}()
	for still := 0; still < 5; {
		select {
		case r := <-logs.notify:
			if strings.HasPrefix(r, "DEBUG POP3 login still rejected") {
				still++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Run logged %q", logs.recs)
		}
	}
	cancel()
	<-done
	if n := logs.count("ERROR"); n != 1 {
		t.Errorf("%d error records, want 1: %q", n, logs.recs)
	}
	if n := p.accepted.Load(); n != 1 {
		t.Errorf("%d connections for one wrong password, want 1", n)
	}

	// With the right password, Run fetches; stop it after the first round.
	a.Password = password(popPass)
	ctx, cancel = context.WithCancel(context.Background())
	f = newFetcher(t, b, &cancelSink{Sink: b.acct, cancel: cancel}, a)
	f.Run(ctx) // returns once the delivery cancelled it
	sameBodies(t, "Local/Inbox", b.bodies("Local/Inbox"), [][]byte{genMsg(1, "")})
}

// cancelSink cancels the context after each successful delivery.
type cancelSink struct {
	Sink
	cancel context.CancelFunc
}

func (s *cancelSink) Deliver(ctx context.Context, folder string, msg []byte, date time.Time) (imap.UID, bool, error) {
	uid, dup, err := s.Sink.Deliver(ctx, folder, msg, date)
	s.cancel()
	return uid, dup, err
}

func TestServerDown(t *testing.T) {
	dc := startDovecot(t, false)
	deliverAll(t, dc, genMsg(1, ""))
	b := newBridge(t, bridgeOptions{})

	// One account whose server is gone, one that works: the first fails
	// clearly, the second is unaffected.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dead := plainAccount(deadPort)
	dead.Name = "dead"
	_, err = newFetcher(t, b, nil, dead).Round(context.Background())
	t.Log(err)
	var pe *Error
	want := fmt.Sprintf("127.0.0.1:%d", deadPort)
	if !errors.As(err, &pe) || pe.Kind != KindConnect || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("dead server: %v", err)
	}
	if st, _ := Status(b.db, "dead"); !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("dead status %+v", st)
	}
	f := newFetcher(t, b, nil, plainAccount(dc.POP3Port))
	wantCounts(t, "live account", round(t, f), 1, 0, 0, 0)

	dc.Stop(t)
	_, err = f.Round(context.Background())
	t.Log(err)
	if !errors.As(err, &pe) || pe.Kind != KindConnect || !strings.Contains(err.Error(), dc.POP3Addr()) {
		t.Fatalf("stopped server: %v", err)
	}
	dc.Restart(t)
	deliverAll(t, dc, genMsg(2, ""))
	wantCounts(t, "after restart", round(t, f), 1, 0, 0, 0)
}

func TestTLSModes(t *testing.T) {
	dc := startDovecot(t, true)
	deliverAll(t, dc, genMsg(1, ""))
	b := newBridge(t, bridgeOptions{})
	acct := func(name, mode string, port int) Account {
		a := plainAccount(port)
		a.Name, a.TLS, a.TLSConfig = name, mode, dc.TLSConfig()
		a.Timeout = time.Second
		return a
	}

	t.Run("implicit", func(t *testing.T) {
		wantCounts(t, "implicit", round(t, newFetcher(t, b, nil, acct("implicit", TLSImplicit, dc.POP3SPort))), 1, 0, 0, 0)
	})
	t.Run("starttls", func(t *testing.T) {
		// A second account on the same mailbox: the message is known by
		// content (delivered by the implicit account), so it is not stored
		// again.
		wantCounts(t, "starttls", round(t, newFetcher(t, b, nil, acct("starttls", TLSStartTLS, dc.POP3Port))), 0, 1, 0, 0)
		if n := len(b.bodies("Local/Inbox")); n != 1 {
			t.Errorf("Local/Inbox has %d messages", n)
		}
	})
	bad := []struct {
		name, mode string
		port       int
		tlsConfig  bool
		kind       ErrorKind
		text       string
	}{
		{"implicit-on-plain-port", TLSImplicit, dc.POP3Port, true, KindTLS, "answered in plain text"},
		{"none-on-tls-port", TLSNone, dc.POP3SPort, true, KindTimeout, `use tls = "implicit"`},
		{"starttls-on-tls-port", TLSStartTLS, dc.POP3SPort, true, KindTimeout, `use tls = "implicit"`},
		{"untrusted-certificate", TLSImplicit, dc.POP3SPort, false, KindTLS, "not signed by a trusted authority"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			a := acct(c.name, c.mode, c.port)
			if c.kind == KindTimeout {
				a.Timeout = 300 * time.Millisecond
			}
			if !c.tlsConfig {
				a.TLSConfig = nil
				a.Host = "localhost"
			}
			_, err := newFetcher(t, b, nil, a).Round(context.Background())
			t.Log(err)
			var pe *Error
			if !errors.As(err, &pe) || pe.Kind != c.kind || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), fmt.Sprint(c.port)) {
				t.Fatalf("got %v (kind %v), want kind %v with %q", err, kindOf(err), c.kind, c.text)
			}
		})
	}
	t.Run("no-stls-offered", func(t *testing.T) {
		plain := startDovecot(t, false)
		a := acct("nostls", TLSStartTLS, plain.POP3Port)
		_, err := newFetcher(t, b, nil, a).Round(context.Background())
		t.Log(err)
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != KindTLS || !strings.Contains(err.Error(), "does not offer STLS") {
			t.Fatalf("got %v", err)
		}
	})
}

func kindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return 0
}

func TestMaxMessageSize(t *testing.T) {
	dc := startDovecot(t, false)
	big := genMsg(2, strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 4096)) // ~256 KiB
	msgs := [][]byte{genMsg(1, ""), big, genMsg(3, "")}
	deliverAll(t, dc, msgs...)
	b := newBridge(t, bridgeOptions{})
	a := plainAccount(dc.POP3Port)
	a.MaxMessageSize = 100 << 10
	a.LeaveOnServer = false
	f := newFetcher(t, b, nil, a)
	res := round(t, f)
	wantCounts(t, "round 1", res, 2, 0, 1, 2)
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "max_message_size") || res.Bytes != int64(len(msgs[0])+len(msgs[2])) {
		t.Errorf("round 1: errors %q, %d bytes", res.Errors, res.Bytes)
	}
	// Never retried, never deleted, not reported again.
	res = round(t, f)
	wantCounts(t, "round 2", res, 0, 0, 0, 0)
	if len(res.Errors) != 0 || res.Bytes != 0 {
		t.Errorf("round 2: errors %q, %d bytes", res.Errors, res.Bytes)
	}
	sameBodies(t, "server", serverBodies(t, dc, popUser), [][]byte{big})
	if st, _ := Status(b.db, "old"); st.TooBig != 1 || st.Fetched != 2 {
		t.Errorf("status %+v", st)
	}
	// The user raises the limit: fetched then.
	a.MaxMessageSize = 1 << 20
	wantCounts(t, "raised limit", round(t, newFetcher(t, b, nil, a)), 1, 0, 0, 1)
	sameBodies(t, "Local/Inbox", b.bodies("Local/Inbox"), [][]byte{msgs[0], msgs[2], big})
}

// TestLyingListSize: a server sending far more than LIST announced is
// cut off; the message is recorded as too big, and the next round goes on.
func TestLyingListSize(t *testing.T) {
	dc := startDovecot(t, false)
	huge := genMsg(2, strings.Repeat("x", 1500<<10)+"\r\n")
	msgs := [][]byte{genMsg(1, ""), huge, genMsg(3, "")}
	deliverAll(t, dc, msgs...)
	p := newProxy(t, dc.POP3Addr(), nil)
	p.answer = func(line string) string {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "2" && f[1] == fmt.Sprint(len(huge)) { // LIST line of message 2
			return "2 100\r\n"
		}
		return line
	}
	b := newBridge(t, bridgeOptions{})
	f := newFetcher(t, b, nil, plainAccount(p.port()))
	res, err := f.Round(context.Background())
	t.Log(err)
	if kindOf(err) != KindProtocol || !strings.Contains(err.Error(), "more data than") {
		t.Fatalf("round: %v", err)
	}
	wantCounts(t, "round 1", res, 1, 0, 1, 0)
	wantCounts(t, "round 2", round(t, f), 1, 0, 0, 0)
	sameBodies(t, "Local/Inbox", b.bodies("Local/Inbox"), [][]byte{msgs[0], msgs[2]})
	if st, _ := Status(b.db, "old"); st.TooBig != 1 {
		t.Errorf("status %+v", st)
	}
}

// TestMalformedStoredAsIs: whatever the server has is the user's mail.
func TestMalformedStoredAsIs(t *testing.T) {
	dc := startDovecot(t, false)
	odd := [][]byte{
		[]byte("no header at all, just text\r\n.\r\n..\r\n"),
		[]byte("Subject: binary\r\n\r\n\x01\x02\xff\xfe latin-1 \xe9t\xe9\r\n"),
		[]byte("From: a@example.com\r\nBroken header line without colon\r\nSubject: x\r\n\r\nbody\r\n"),
	}
	writeMaildir(t, dc, odd)
	b := newBridge(t, bridgeOptions{})
	wantCounts(t, "round", round(t, newFetcher(t, b, nil, plainAccount(dc.POP3Port))), 3, 0, 0, 0)
	got := b.bodies("Local/Inbox")
	// Dovecot's Maildir order is by file name; compare as a set.
	if len(got) != len(odd) {
		t.Fatalf("%d messages, want %d", len(got), len(odd))
	}
	for _, w := range odd {
		found := false
		for _, g := range got {
			found = found || bytes.Equal(g, w)
		}
		if !found {
			t.Errorf("message %q not stored as-is; got %q", w, got)
		}
	}
}

// TestNoUIDL runs against a server that refuses UIDL (and TOP): messages
// are recognised by fingerprints, said once in the log.
func TestNoUIDL(t *testing.T) {
	for _, noTop := range []bool{false, true} {
		t.Run(fmt.Sprintf("noTop=%v", noTop), func(t *testing.T) {
			dc := startDovecot(t, false)
			msgs := [][]byte{genMsg(1, ""), genMsg(2, "")}
			deliverAll(t, dc, msgs...)
			p := newProxy(t, dc.POP3Addr(), func(line string) string {
				if strings.HasPrefix(line, "UIDL") || (noTop && strings.HasPrefix(line, "TOP")) {
					return "X" + line // -ERR unknown command
				}
				return line
			})
			b := newBridge(t, bridgeOptions{})
			logs := &logCounter{}
			f, err := New(b.db, b.acct, plainAccount(p.port()), slog.New(logs))
			if err != nil {
				t.Fatal(err)
			}
			wantCounts(t, "round 1", round(t, f), 2, 0, 0, 0)
			deliverAll(t, dc, genMsg(3, ""))
			res := round(t, f)
			wantCounts(t, "round 2", res, 1, 0, 0, 0)
			if want := int64(len(genMsg(3, ""))); !noTop && res.Bytes != want {
				t.Errorf("round 2 downloaded %d bytes, want %d (only the new message)", res.Bytes, want)
			}
			wantCounts(t, "round 3", round(t, f), 0, 0, 0, 0)
			sameBodies(t, "Local/Inbox", b.bodies("Local/Inbox"), append(msgs, genMsg(3, "")))
			if n := logs.count("WARN the POP3 server does not support UIDL"); n != 1 {
				t.Errorf("no-UIDL warning logged %d times: %q", n, logs.recs)
			}
			if st, _ := Status(b.db, "old"); !st.NoUIDL {
				t.Errorf("status %+v", st)
			}
		})
	}
}

func TestDeleteAfter(t *testing.T) {
	dc := startDovecot(t, false)
	msgs := [][]byte{genMsg(1, ""), genMsg(2, "")}
	deliverAll(t, dc, msgs...)
	b := newBridge(t, bridgeOptions{})
	a := plainAccount(dc.POP3Port)
	a.DeleteAfter = 30 * 24 * time.Hour
	f := newFetcher(t, b, nil, a)
	wantCounts(t, "round 1", round(t, f), 2, 0, 0, 0)
	f.now = func() time.Time { return time.Now().Add(29 * 24 * time.Hour) }
	wantCounts(t, "29 days later", round(t, f), 0, 0, 0, 0)
	f.now = func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }
	wantCounts(t, "31 days later", round(t, f), 0, 0, 0, 2)
	sameBodies(t, "server", serverBodies(t, dc, popUser), nil)
	sameBodies(t, "Local/Inbox", b.bodies("Local/Inbox"), msgs)
}

// TestDeliverUpstream delivers to a folder of the real IMAP account, with
// a kill after an APPEND was confirmed but before it was recorded.
func TestDeliverUpstream(t *testing.T) {
	dc := startDovecot(t, false, testenv.DovecotUser{Name: popUser, Password: popPass}, testenv.DovecotUser{Name: "bob", Password: "bob-pw"})
	var msgs [][]byte
	for i := 1; i <= 4; i++ {
		msgs = append(msgs, genMsg(i, ""))
	}
	deliverAll(t, dc, msgs...)
	pool, err := upstream.New(upstream.Options{
		Host: "127.0.0.1", Port: dc.IMAPPort, TLS: "none", Username: "bob",
		Password: password("bob-pw"), MaxConnections: 2, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	b := newBridge(t, bridgeOptions{pool: pool})
	a := plainAccount(dc.POP3Port)
	a.DeliverTo = "INBOX"
	a.LeaveOnServer = false
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = newFetcher(t, b, &crashSink{Sink: b.acct, n: 2, stored: true, cancel: cancel}, a).Round(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed round: %v", err)
	}
	res := round(t, newFetcher(t, b, nil, a))
	wantCounts(t, "after restart", res, 2, 1, 0, 4)
	sameBodies(t, "bob's INBOX", serverBodies(t, dc, "bob"), msgs)
	sameBodies(t, "alice's POP mailbox", serverBodies(t, dc, popUser), nil)
}

func TestNewValidates(t *testing.T) {
	b := newBridge(t, bridgeOptions{noIMAP: true})
	ok := plainAccount(110)
	cases := []struct {
		name string
		edit func(*Account)
		want string
	}{
		{"no name", func(a *Account) { a.Name = "" }, "name is required"},
		{"no host", func(a *Account) { a.Host = "" }, "host is required"},
		{"no deliver_to", func(a *Account) { a.DeliverTo = "" }, "deliver_to"},
		{"clear text off loopback", func(a *Account) { a.Host = "pop.example.com" }, "only allowed to a loopback"},
		{"bad tls", func(a *Account) { a.TLS = "ssl" }, `tls "ssl"`},
		{"no password", func(a *Account) { a.Password = nil }, "no password"},
	}
	for _, c := range cases {
		a := ok
		c.edit(&a)
		if _, err := New(b.db, b.acct, a, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	a := ok
	a.TLS, a.Port, a.Interval, a.Timeout = "", 0, 0, 0
	a.Host = "pop.example.com"
	f, err := New(b.db, b.acct, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.acct.TLS != TLSImplicit || f.acct.Port != 995 || f.acct.Interval != DefaultInterval || f.acct.Timeout != DefaultTimeout {
		t.Errorf("defaults: %+v", f.acct)
	}
}

func TestParsePopstate(t *testing.T) {
	const file = "# POP3 State File\r\n# This is a generated file!  Do not edit.\r\n\r\n" +
		"k orphan 1\n" +
		"*pop.Example.com alice\nk u1 1262304000\nd u2 1262304001\nb u3\nf u4 1262304003\nx\n\n" +
		"*pop.example.com bob\nk u5 1\n" +
		"*other.example.com alice\nk u6 1\n"
	ps, err := ParsePopstate(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host, user string
		want       []string
	}{
		{"pop.example.com", "alice", []string{"u1", "u2", "u3"}},
		{"POP.EXAMPLE.COM", "Alice", []string{"u1", "u2", "u3"}},
		{"pop.example.com", "bob", []string{"u5"}},
		{"other.example.com", "alice", []string{"u6"}},
		{"pop.example.com", "carol", nil},
		{"nowhere", "alice", nil},
	}
	for _, c := range cases {
		got := ps.Known(c.host, c.user)
		if len(got) != len(c.want) {
			t.Errorf("%s %s: %v, want %v", c.host, c.user, got, c.want)
			continue
		}
		for _, u := range c.want {
			if !got[u] {
				t.Errorf("%s %s: %v lacks %s", c.host, c.user, got, u)
			}
		}
	}
}

func TestBackoff(t *testing.T) {
	cases := []struct {
		interval time.Duration
		n        int
		want     time.Duration
	}{
		{5 * time.Minute, 1, 5 * time.Minute},
		{5 * time.Minute, 2, 10 * time.Minute},
		{5 * time.Minute, 4, 40 * time.Minute},
		{5 * time.Minute, 5, time.Hour},
		{5 * time.Minute, 50, time.Hour},
		{2 * time.Hour, 3, 2 * time.Hour},
	}
	for _, c := range cases {
		got := backoff(c.interval, c.n)
		if lo, hi := c.want*9/10, c.want*11/10; got < lo || got > hi {
			t.Errorf("backoff(%s, %d) = %s, want %s ±10%%", c.interval, c.n, got, c.want)
		}
	}
}
