package backend

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/server"
	"github.com/popbridge/popbridge/store"
	"golang.org/x/crypto/bcrypt"
)

// testSession adds a fixed LOGIN to the backend session, so the backend can
// be benchmarked behind a stock imapserver.
type testSession struct{ *Session }

func (testSession) Login(username, password string) error {
	if username != "u" || password != "pw" {
		return imapserver.ErrAuthFailed
	}
	return nil
}

// testPWHash is "pw" hashed at bcrypt's minimum cost (tests log in a lot).
var testPWHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

type env struct {
	t       *testing.T
	dataDir string
	sources []Source
	db      *store.DB
	acct    *Account
	srv     *server.Server
	addr    string

	newRemote func() *upstream.Pool // optional upstream
	// noWatch: no RunRemote (nothing keeps the mirrors current on its
	// own), as `popbridge migrate` and verify run without a bridge.
	noWatch bool
	pool    *upstream.Pool
	cancel  context.CancelFunc
	done    chan struct{}
}

func newEnv(t *testing.T, sources ...Source) *env {
	t.Helper()
	e := &env{t: t, dataDir: t.TempDir(), sources: sources}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	t := e.t
	t.Helper()
	db, err := store.Open(filepath.Join(e.dataDir, "popbridge.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var pool *upstream.Pool
	if e.newRemote != nil {
		pool = e.newRemote()
	}
	acct, err := New(Options{DB: db, DataDir: e.dataDir, Sources: e.sources, Flatten: true, Logger: dbgLogger(), Remote: pool})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.pool, e.done = cancel, pool, make(chan struct{})
	if pool != nil && e.noWatch {
		if err := acct.SyncFolders(ctx); err != nil {
			t.Fatal(err)
		}
		close(e.done)
	} else if pool != nil {
		if err := acct.SyncFolders(ctx); err != nil {
			t.Fatal(err)
		}
		go func() {
			defer close(e.done)
			acct.RunRemote(ctx, 500*time.Millisecond, time.Minute)
		}()
	} else {
		close(e.done)
	}
	// The real front door (login, untagged writer), as clients meet it.
	srv, err := server.New(server.Options{
		Users: []server.User{{Name: "u", PasswordHash: testPWHash}},
		NewSession: func(info server.SessionInfo) (imapserver.Session, error) {
			s, err := acct.NewSession(info.User)
			if err != nil {
				return nil, err
			}
			s.SetUntaggedWriter(info.WriteUntagged)
			return s, nil
		},
		Caps:          imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapNamespace: {}, imap.CapSpecialUse: {}},
		Logger:        slog.New(slog.DiscardHandler),
		AuthFailDelay: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	e.db, e.acct, e.srv, e.addr = db, acct, srv, ln.Addr().String()
}

func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
	if e.pool != nil {
		e.pool.Close()
		e.pool = nil
	}
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
	if e.db != nil {
		e.db.Close()
		e.db = nil
	}
}

func (e *env) restart() {
	e.stop()
	e.start()
}

type testLogger struct{ t *testing.T }

func (l testLogger) Printf(format string, args ...interface{}) { l.t.Logf(format, args...) }

func (e *env) client(h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t := e.t
	t.Helper()
	c, err := imapclient.DialInsecure(e.addr, &imapclient.Options{UnilateralDataHandler: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("u", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fetched is one message as a client saw it.
type fetched struct {
	UID   imap.UID
	Flags []imap.Flag
	Size  int64
	Date  time.Time
	Body  []byte
}

func fetchAll(t *testing.T, c *imapclient.Client, mailbox string) []fetched {
	t.Helper()
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %q: %v", mailbox, err)
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		t.Fatalf("fetch %q: %v", mailbox, err)
	}
	out := make([]fetched, 0, len(msgs))
	for _, m := range msgs {
		f := fetched{UID: m.UID, Flags: m.Flags, Size: m.RFC822Size, Date: m.InternalDate, Body: m.FindBodySection(sec)}
		sort.Slice(f.Flags, func(i, j int) bool { return f.Flags[i] < f.Flags[j] })
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out
}

func uids(ms []fetched) []imap.UID {
	out := make([]imap.UID, len(ms))
	for i, m := range ms {
		out[i] = m.UID
	}
	return out
}

// fileState is a file's seal: content hash and mtime.
type fileState struct {
	sum   [32]byte
	mtime time.Time
	mode  os.FileMode
}

func sealOf(t *testing.T, root string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		var s fileState
		copy(s.sum[:], h.Sum(nil))
		s.mtime, s.mode = fi.ModTime(), fi.Mode()
		out[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t *testing.T, p string, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
