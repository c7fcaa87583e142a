package backend

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/server"
	"github.com/popbridge/popbridge/store"
)

// BenchmarkProxiedLoad: ten clients work on one upstream folder at once —
// SELECT, UID FETCH of a body, UID STORE, APPEND, and STORE \Deleted +
// UID EXPUNGE of what they appended (issue F's "proxied folder under
// load") — through the bridge, and the same loop straight against the
// Dovecot behind it, in the same run. The metric is IMAP commands per
// second over all clients.
//
//	go test ./backend -run '^$' -bench ProxiedLoad -benchtime 20x
func BenchmarkProxiedLoad(b *testing.B) {
	testenv.RequireDovecot(b)
	dc := testenv.StartDovecot(b, testenv.DovecotOptions{})
	user := dc.Users[0]
	c := dc.Client(b, user.Name)
	if err := c.Create("Load", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		dc.Append(b, user.Name, "Load", loadMsg(i, 0), nil, time.Time{})
	}
	c.Close()

	dir := b.TempDir()
	db, err := store.Open(filepath.Join(dir, "popbridge.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	pool, err := upstream.New(upstream.Options{
		Host: "127.0.0.1", Port: dc.IMAPPort, TLS: upstream.TLSNone, Username: user.Name,
		Password: func(context.Context) (string, error) { return user.Password, nil },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	acct, err := New(Options{DB: db, DataDir: dir, Logger: slog.New(slog.DiscardHandler), Remote: pool})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); acct.RunRemote(ctx, 500*time.Millisecond, time.Minute) }()
	defer func() { cancel(); <-done }()
	if err := acct.SyncFolders(ctx); err != nil {
		b.Fatal(err)
	}
	addr := serveBench(b, acct)

	b.Run("dovecot", func(b *testing.B) {
		runLoad(b, func() (*imapclient.Client, error) {
			cl, err := imapclient.DialInsecure(dc.IMAPAddr(), nil)
			if err == nil {
				err = cl.Login(user.Name, user.Password).Wait()
			}
			return cl, err
		})
	})
	b.Run("bridge", func(b *testing.B) {
		runLoad(b, func() (*imapclient.Client, error) {
			cl, err := imapclient.DialInsecure(addr, nil)
			if err == nil {
				err = cl.Login("u", "pw").Wait()
			}
			return cl, err
		})
	})
}

// serveBench serves acct through the real front door on loopback.
func serveBench(tb testing.TB, acct *Account) string {
	srv, err := server.New(server.Options{
		Users: []server.User{{Name: "u", PasswordHash: testPWHash}},
		NewSession: func(info server.SessionInfo) (imapserver.Session, error) {
			s, err := acct.NewSession(info.User)
			if err == nil {
				s.SetUntaggedWriter(info.WriteUntagged)
			}
			return s, err
		},
		Caps:   imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapNamespace: {}, imap.CapSpecialUse: {}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func loadMsg(i, client int) []byte {
	return []byte(fmt.Sprintf("From: c%d@example.com\r\nTo: load@example.com\r\nSubject: load %d/%d\r\nMessage-ID: <load-%d-%d-%d@example.com>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n%s",
		client, client, i, client, i, time.Now().UnixNano(), strings.Repeat("a line of a message under load\r\n", 60)))
}

// runLoad runs b.N rounds on each of ten clients.
func runLoad(b *testing.B, dial func() (*imapclient.Client, error)) {
	const clients = 10
	cls := make([]*imapclient.Client, clients)
	for i := range cls {
		cl, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		cls[i] = cl
		defer cl.Close()
	}
	var cmds atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ResetTimer()
	for i, cl := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for n := 0; n < b.N; n++ {
				if err := loadRound(cl, rng, i, n, &cmds); err != nil {
					errs <- fmt.Errorf("client %d round %d: %w", i, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cmds.Load())/b.Elapsed().Seconds(), "cmds/s")

}

// loadRound is one client's round: six commands.
func loadRound(cl *imapclient.Client, rng *rand.Rand, client, n int, cmds *atomic.Int64) error {
	sd, err := cl.Select("Load", nil).Wait()
	if err != nil {
		return fmt.Errorf("SELECT: %w", err)
	}
	cmds.Add(1)
	if sd.NumMessages == 0 {
		return fmt.Errorf("SELECT: empty folder")
	}
	seq := uint32(rng.IntN(int(sd.NumMessages))) + 1
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := cl.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		return fmt.Errorf("FETCH: %w", err)
	}
	cmds.Add(1)
	if len(msgs) == 1 && msgs[0].UID != 0 {
		op := imap.StoreFlagsAdd
		if rng.IntN(2) == 0 {
			op = imap.StoreFlagsDel
		}
		if err := cl.Store(imap.UIDSetNum(msgs[0].UID), &imap.StoreFlags{Op: op, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
			return fmt.Errorf("STORE: %w", err)
		}
		cmds.Add(1)
	}
	body := loadMsg(n, client)
	ac := cl.Append("Load", int64(len(body)), nil)
	ac.Write(body)
	ac.Close()
	ad, err := ac.Wait()
	if err != nil {
		return fmt.Errorf("APPEND: %w", err)
	}
	cmds.Add(1)
	if ad.UID == 0 {
		return fmt.Errorf("APPEND: no APPENDUID")
	}
	if err := cl.Store(imap.UIDSetNum(ad.UID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return fmt.Errorf("STORE \\Deleted: %w", err)
	}
	cmds.Add(1)
	if err := cl.UIDExpunge(imap.UIDSetNum(ad.UID)).Close(); err != nil {
		return fmt.Errorf("UID EXPUNGE: %w", err)
	}
	cmds.Add(1)
	return nil
}
