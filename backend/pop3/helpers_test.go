package pop3

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/store"
)

const (
	popUser = "alice"
	popPass = "alice-pw"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testSession adds a fixed LOGIN to the backend session, so the bridge
// can be served by a stock imapserver without the server package.
type testSession struct{ *backend.Session }

func (testSession) Login(username, password string) error {
	if username != "u" || password != "pw" {
		return imapserver.ErrAuthFailed
	}
	return nil
}

// bridge is a backend Account over an archive, served over IMAP.
type bridge struct {
	t    testing.TB
	dir  string
	db   *store.DB
	acct *backend.Account
	addr string
}

type bridgeOptions struct {
	sources []backend.Source
	pool    *upstream.Pool
	sync    bool // fsync (benchmarks: the real cost)
	noIMAP  bool
}

func newBridge(t testing.TB, o bridgeOptions) *bridge {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "popbridge.db"), store.Options{NoSync: !o.sync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var remote *upstream.Pool
	if o.pool != nil {
		remote = o.pool
	}
	acct, err := backend.New(backend.Options{DB: db, DataDir: dir, Sources: o.sources, Flatten: true, Logger: quiet(), Remote: remote})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if remote != nil {
		if err := acct.SyncFolders(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	b := &bridge{t: t, dir: dir, db: db, acct: acct}
	if o.noIMAP {
		return b
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			s, err := acct.NewSession("u")
			if err != nil {
				return nil, nil, err
			}
			return testSession{s}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}},
		InsecureAuth: true,
		Logger:       testLogger{t},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	b.addr = ln.Addr().String()
	return b
}

func (b *bridge) client(h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t := b.t
	t.Helper()
	c, err := imapclient.DialInsecure(b.addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("u", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bodies returns the messages of a bridge folder as an IMAP client sees
// them, in UID order; nil if the folder does not exist.
func (b *bridge) bodies(folder string) [][]byte {
	t := b.t
	t.Helper()
	c := b.client(nil)
	defer func() { c.Logout().Wait() }()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Logf("select %q: %v", folder, err)
		return nil
	}
	if sel.NumMessages == 0 {
		return [][]byte{}
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		t.Fatalf("fetch %q: %v", folder, err)
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.FindBodySection(sec)
	}
	return out
}

type testLogger struct{ t testing.TB }

func (l testLogger) Printf(format string, args ...any) { l.t.Logf(format, args...) }

// genMsg is message i as delivered to the POP mailbox (CRLF, which
// Dovecot serves unchanged).
func genMsg(i int, body string) []byte {
	return []byte(fmt.Sprintf("From: Sender %d <s%d@example.com>\r\nTo: alice@example.com\r\nSubject: POP message %d\r\n"+
		"Message-ID: <pop-%d@example.com>\r\nDate: Mon, 2 Jan 2006 15:04:%02d +0000\r\n\r\nBody %d.\r\n%s", i, i, i, i, i%60, i, body))
}

func startDovecot(t testing.TB, tls bool, users ...testenv.DovecotUser) *testenv.Dovecot {
	t.Helper()
	if len(users) == 0 {
		users = []testenv.DovecotUser{{Name: popUser, Password: popPass}}
	}
	return testenv.StartDovecot(t, testenv.DovecotOptions{TLS: tls, Users: users, NoSpecialUse: true})
}

func deliverAll(t testing.TB, dc *testenv.Dovecot, msgs ...[]byte) {
	t.Helper()
	for _, m := range msgs {
		dc.Append(t, popUser, "INBOX", m, nil, time.Time{})
	}
}

func password(p string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return p, nil }
}

func plainAccount(port int) Account {
	return Account{
		Name: "old", Host: "127.0.0.1", Port: port, TLS: TLSNone,
		Username: popUser, Password: password(popPass),
		Interval: time.Minute, LeaveOnServer: true, DeliverTo: "Local/Inbox",
		Timeout: 5 * time.Second,
	}
}

func newFetcher(t testing.TB, b *bridge, sink Sink, a Account) *Fetcher {
	t.Helper()
	if sink == nil {
		sink = b.acct
	}
	f, err := New(b.db, sink, a, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func round(t testing.TB, f *Fetcher) RoundResult {
	t.Helper()
	res, err := f.Round(context.Background())
	if err != nil {
		t.Fatalf("round: %v", err)
	}
	return res
}

func wantCounts(t testing.TB, what string, res RoundResult, fetched, skipped, tooBig, deleted int) {
	t.Helper()
	if res.Fetched != fetched || res.Skipped != skipped || res.TooBig != tooBig || res.Deleted != deleted {
		t.Errorf("%s: fetched/skipped/too-big/deleted = %d/%d/%d/%d, want %d/%d/%d/%d (%s)", what,
			res.Fetched, res.Skipped, res.TooBig, res.Deleted, fetched, skipped, tooBig, deleted, res)
	}
}

// serverUIDLs lists the maildrop over POP3 with the package's own client.
func serverUIDLs(t testing.TB, port int) []msgInfo {
	t.Helper()
	a := plainAccount(port)
	s, err := dial(context.Background(), &a)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if err := s.login(popUser, popPass); err != nil {
		t.Fatal(err)
	}
	msgs, ok, err := s.list()
	if err != nil || !ok {
		t.Fatalf("list: %v (UIDL %v)", err, ok)
	}
	if err := s.quit(); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// serverBodies returns the POP mailbox's messages over IMAP.
func serverBodies(t testing.TB, dc *testenv.Dovecot, user string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, m := range dc.Messages(t, user, "INBOX") {
		out = append(out, m.Body)
	}
	return out
}

func sameBodies(t testing.TB, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: message %d is\n%q\nwant\n%q", what, i+1, got[i], want[i])
		}
	}
}

// writeMaildir puts messages straight into the Dovecot user's INBOX
// Maildir (bypassing IMAP: fast, and any bytes at all).
func writeMaildir(t testing.TB, dc *testenv.Dovecot, msgs [][]byte) {
	t.Helper()
	writeMaildirAs(t, dc, msgs, 0)
}

// writeMaildirAs is writeMaildir with file names numbered from first.
func writeMaildirAs(t testing.TB, dc *testenv.Dovecot, msgs [][]byte, first int) {
	t.Helper()
	dc.Messages(t, popUser, "INBOX") // Dovecot creates the Maildir on first access
	cur := filepath.Join(dc.MailDir(popUser), "cur")
	st, err := os.Stat(cur)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	now := time.Now().Unix()
	for i, m := range msgs {
		p := filepath.Join(cur, fmt.Sprintf("%d.M%06dP%d.popbridge-test,S=%d:2,", now, first+i, os.Getpid(), len(m)))
		if err := os.WriteFile(p, m, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, int(sys.Uid), int(sys.Gid)); err != nil {
			t.Fatal(err)
		}
	}
}

// proxy forwards TCP to a POP3 server, counting connections; it can cut
// the connection when the server sends a line containing a marker, and
// rewrite the client's command lines.
type proxy struct {
	ln       net.Listener
	target   string
	accepted atomic.Int32
	rewrite  func(line string) string // client → server, may be nil
	answer   func(line string) string // server → client, may be nil

	mu     sync.Mutex
	marker string
}

func newProxy(t testing.TB, target string, rewrite func(string) string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, rewrite: rewrite}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := p.accepted.Add(1)
			go p.handle(c, n)
		}
	}()
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) cutAt(marker string) {
	p.mu.Lock()
	p.marker = marker
	p.mu.Unlock()
}

func (p *proxy) handle(c net.Conn, n int32) {
	defer c.Close()
	// Each connection from its own loopback address: Dovecot delays logins
	// from an address that just failed one (anvil's auth penalty).
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(n%250+1))}}
	s, err := d.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	go func() {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				if p.rewrite != nil {
					line = p.rewrite(line)
				}
				if _, werr := s.Write([]byte(line)); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	go func() {
		r := bufio.NewReader(s)
		for {
			line, err := r.ReadBytes('\n')
			p.mu.Lock()
			m := p.marker
			p.mu.Unlock()
			if m != "" && bytes.Contains(line, []byte(m)) {
				break // the server "drops" the connection here
			}
			if p.answer != nil {
				line = []byte(p.answer(string(line)))
			}
			if _, werr := c.Write(line); werr != nil {
				break
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	<-done
}

// crashSink fails the n-th Deliver like a kill: after the message is
// stored (stored = true) or before, the round's context is cancelled.
type crashSink struct {
	Sink
	n      int
	stored bool
	cancel context.CancelFunc
	calls  int
}

func (c *crashSink) Deliver(ctx context.Context, folder string, msg []byte, date time.Time) (imap.UID, bool, error) {
	c.calls++
	if c.calls == c.n {
		if c.stored {
			if _, _, err := c.Sink.Deliver(ctx, folder, msg, date); err != nil {
				return 0, false, err
			}
		}
		c.cancel()
		return 0, false, context.Canceled
	}
	return c.Sink.Deliver(ctx, folder, msg, date)
}

// logCounter counts log records by level.
type logCounter struct {
	mu     sync.Mutex
	recs   []string
	notify chan string // if set, gets every record (never blocks the logger)
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := r.Level.String() + " " + r.Message
	h.recs = append(h.recs, s)
	if h.notify != nil {
		select {
		case h.notify <- s:
		default:
		}
	}
	return nil
}
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }

func (h *logCounter) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}
