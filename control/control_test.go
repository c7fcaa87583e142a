package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/oauth"
	"github.com/popbridge/popbridge/store"
)

// bridge is a real account (bbolt, archive, optional Dovecot upstream) for
// a Service, as serve builds it.
type bridge struct {
	db   *store.DB
	acct *backend.Account
	pool *upstream.Pool
}

func openBridge(tb testing.TB, dataDir string, sources []backend.Source, dc *testenv.Dovecot) *bridge {
	tb.Helper()
	db, err := store.Open(filepath.Join(dataDir, "popbridge.db"), store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	var pool *upstream.Pool
	if dc != nil {
		u := dc.Users[0]
		pool, err = upstream.New(upstream.Options{Host: "127.0.0.1", Port: dc.IMAPPort, TLS: "none", Username: u.Name,
			Password: func(context.Context) (string, error) { return u.Password, nil }, MaxConnections: 4, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			tb.Fatal(err)
		}
	}
	acct, err := backend.New(backend.Options{DB: db, DataDir: dataDir, Sources: sources, Flatten: true, Logger: slog.New(slog.DiscardHandler), Remote: pool})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := acct.Index(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	if pool != nil {
		if err := acct.SyncFolders(context.Background()); err != nil {
			tb.Fatal(err)
		}
	}
	return &bridge{db: db, acct: acct, pool: pool}
}

func (b *bridge) runtime() *Runtime {
	rt := &Runtime{Account: b.acct, Running: true}
	if b.pool != nil {
		rt.Upstream = "127.0.0.1"
	}
	return rt
}

func (b *bridge) close() {
	if b.pool != nil {
		b.pool.Close()
	}
	b.db.Close()
}

// writeMbox writes n small messages into an mbox at path.
func writeMbox(tb testing.TB, path string, tag string, n int) {
	tb.Helper()
	var s strings.Builder
	pad := strings.Repeat("a line of an old message, to give it some weight\n", 20)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&s, "From %s%d@example.com Mon Jan  2 15:04:05 2006\nFrom: %s %d <%s%d@example.com>\nSubject: %s %d\nMessage-ID: <%s-%d@example.com>\nDate: Mon, 2 Jan 2006 15:04:05 +0000\n\nbody %d\n%s\n",
			tag, i, tag, i, tag, i, tag, i, tag, i, i, pad)
	}
	if err := os.WriteFile(path, []byte(s.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// waitMigration waits for a migration event that satisfies ok.
func waitMigration(t *testing.T, ch <-chan Event, what string, ok func(*MigrationState) bool) *MigrationState {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("%s: the event stream ended", what)
			}
			if ev.Type == "migration" && ok(ev.Migration) {
				return ev.Migration
			}
		case <-timeout:
			t.Fatalf("%s: no such migration state", what)
		}
	}
}

// TestMigrationSurvivesRestart: a console migration stopped by the bridge
// going away (a restart, a crash) keeps its progress in the data dir, a
// new process shows it before the bridge is back, and it goes on by
// itself when the bridge is attached again, to the end, uploading nothing
// twice. A paused one stays paused until resumed.
func TestMigrationSurvivesRestart(t *testing.T) {
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{})
	dataDir := t.TempDir()
	src := t.TempDir()
	const n = 700
	writeMbox(t, filepath.Join(src, "Old"), "old", n)
	sources := []backend.Source{{Name: "Old", Path: filepath.Join(src, "Old"), Format: "mbox"}}

	b := openBridge(t, dataDir, sources, dc)
	svc := NewService(Options{DataDir: dataDir, Logger: slog.New(slog.DiscardHandler)})
	svc.Attach(b.runtime())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, _ := svc.Events(ctx)
	if _, err := svc.StartMigration(ctx, MigrateRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StartMigration(ctx, MigrateRequest{}); CodeOf(err) != CodeBusy {
		t.Fatalf("a second start: %v", err)
	}
	mid := waitMigration(t, events, "half-way", func(m *MigrationState) bool { return m.Done > 0 && m.Done < m.Total })
	// The bridge goes away (as on a restart).
	svc.Detach()
	cancel()
	b.close()
	saved := svc.mig.state()
	if saved.State != "running" || saved.Done < mid.Done || saved.Done >= n || saved.Total != n || saved.Origin != "console" {
		t.Fatalf("state after the bridge went away: %+v", saved)
	}

	// A new process: the progress is there before the bridge is.
	svc2 := NewService(Options{DataDir: dataDir, Logger: slog.New(slog.DiscardHandler)})
	before, _ := svc2.Migration(context.Background())
	if before.Done != saved.Done || before.Total != n || before.Elapsed <= 0 || before.Rate <= 0 {
		t.Fatalf("after a restart: %+v, saved %+v", before, saved)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	events2, _ := svc2.Events(ctx2)
	b2 := openBridge(t, dataDir, sources, dc)
	defer b2.close()
	svc2.Attach(b2.runtime()) // resumes by itself
	var last *MigrationState
	done := waitMigration(t, events2, "resumed to the end", func(m *MigrationState) bool {
		if last != nil && m.Done < last.Done && m.State == "running" {
			t.Errorf("progress went back: %d after %d", m.Done, last.Done)
		}
		last = m
		return m.State == "done" || m.State == "failed" || m.State == "incomplete"
	})
	if done.State != "done" || done.Done != n || done.Total != n || done.ETA != 0 || done.Elapsed < saved.Elapsed {
		t.Fatalf("end state %+v", done)
	}
	if got := len(dc.Messages(t, dc.Users[0].Name, "Old")); got != n {
		t.Fatalf("the server has %d messages, want %d (nothing twice)", got, n)
	}

	// Verify through the same Service, with its CSV.
	rep, err := svc2.Verify(context.Background(), MigrateRequest{})
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	var csv strings.Builder
	if err := svc2.VerifyCSV(context.Background(), &csv); err != nil || csv.String() != "folder,target,uid,date,from,subject,message_id,problem,detail\n" {
		t.Fatalf("CSV %q %v", csv.String(), err)
	}
	if v := svc2.ver.summary(); v == nil || !v.OK {
		t.Fatalf("verify summary %+v", v)
	}

	// Pause stays paused across a restart; resume finishes (nothing left).
	if _, err := svc2.PauseMigration(context.Background()); CodeOf(err) != CodeNothing {
		t.Fatalf("pause with nothing running: %v", err)
	}
	svc2.mig.mu.Lock()
	svc2.mig.st.State = "paused"
	svc2.mig.saveLocked()
	svc2.mig.mu.Unlock()
	svc3 := NewService(Options{DataDir: dataDir, Logger: slog.New(slog.DiscardHandler)})
	svc2.Detach()
	svc3.Attach(b2.runtime())
	if st, _ := svc3.Migration(context.Background()); st.State != "paused" {
		t.Fatalf("a paused migration after a restart: %+v", st)
	}
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	events3, _ := svc3.Events(ctx3)
	if _, err := svc3.ResumeMigration(context.Background()); err != nil {
		t.Fatal(err)
	}
	end := waitMigration(t, events3, "resumed", func(m *MigrationState) bool { return m.State != "running" && m.State != "pausing" })
	if end.State != "done" || end.Done != n {
		t.Fatalf("after resume: %+v", end)
	}
}

// TestEventsOnlyWhileWatched: nothing watches the account while nobody
// listens; a listener gets a dashboard event when the archive changes.
func TestEventsOnlyWhileWatched(t *testing.T) {
	dataDir := t.TempDir()
	src := t.TempDir()
	mbox := filepath.Join(src, "Old")
	writeMbox(t, mbox, "a", 3)
	b := openBridge(t, dataDir, []backend.Source{{Name: "Old", Path: mbox, Format: "mbox"}}, nil)
	defer b.close()
	svc := NewService(Options{DataDir: dataDir, Logger: slog.New(slog.DiscardHandler)})
	svc.Attach(b.runtime())
	if svc.hub.watching() || svc.hub.subscribers() != 0 {
		t.Fatal("a watcher runs without listeners")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, _ := svc.Events(ctx)
	if !svc.hub.watching() {
		t.Fatal("no watcher for a listener")
	}
	f, _ := os.OpenFile(mbox, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("From x@example.com Mon Jan  2 15:04:05 2006\nSubject: new\n\nnew mail\n\n")
	f.Close()
	if _, err := b.acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for got := false; !got; {
		select {
		case ev := <-ch:
			got = ev.Type == "dashboard"
		case <-timeout:
			t.Fatal("no dashboard event after the archive grew")
		}
	}
	d, err := svc.Dashboard(context.Background())
	if err != nil || d.Totals.Messages != 4 {
		t.Fatalf("dashboard %+v %v", d, err)
	}
	cancel()
	for range ch { // closed once unsubscribed
	}
	if svc.hub.watching() || svc.hub.subscribers() != 0 {
		t.Fatal("the watcher outlived its last listener")
	}
}

// TestProblemLog: the log records the console shows in plain words, and
// every record still reaches the log.
func TestProblemLog(t *testing.T) {
	pl := NewProblemLog()
	var out strings.Builder
	log := slog.New(pl.Handler(slog.NewTextHandler(&out, nil)))
	conn := log.With("conn", 7, "remote", "192.168.1.20:51234")
	conn.Warn("imap authentication failed", "user", "taro")
	conn.Warn("imap authentication failed", "user", "taro")
	log.Warn("imap authentication failed", "user", "hanako", "remote", "192.168.1.21:1")
	ue := &upstream.Error{Kind: upstream.KindAuth, Host: "imap.example.jp", Port: 993, User: "taro", Err: errors.New("NO [AUTHENTICATIONFAILED] wrong")}
	log.Error("upstream folder list", "err", fmt.Errorf("sync: %w", ue))
	log.Warn("upload refused by the server", "mailbox", "Sent", "err", errors.New("NO [TOOBIG] too big"))
	log.Info("session started", "user", "taro")
	// A sign-in the provider withdrew, wrapped as the upstream pool does.
	ce := &oauth.ConsentError{Provider: "Microsoft", Account: "taro@outlook.com", Reason: oauth.ReasonRevoked, Detail: "invalid_grant: AADSTS70008"}
	log.Error("upstream server", "err", &upstream.Error{Kind: upstream.KindCredentials, Host: "outlook.office365.com", Port: 993, Err: ce})
	pl.Clear("nothing-of-this-kind")
	ps := pl.list()
	byKind := map[string][]Problem{}
	for _, p := range ps {
		byKind[p.Kind] = append(byKind[p.Kind], p)
	}
	lr := byKind["login-refused"]
	if len(lr) != 2 {
		t.Fatalf("login problems %+v", lr)
	}
	for _, p := range lr {
		switch p.Params["user"] {
		case "taro":
			if p.Count != 2 || p.Params["remote"] != "192.168.1.20" {
				t.Errorf("taro: %+v", p)
			}
		case "hanako":
			if p.Count != 1 || p.Params["remote"] != "192.168.1.21" {
				t.Errorf("hanako: %+v", p)
			}
		default:
			t.Errorf("unexpected %+v", p)
		}
	}
	if up := byKind["upstream"]; len(up) != 1 || up[0].Params["host"] != "imap.example.jp:993" || up[0].Params["reason"] != "auth" || !strings.Contains(up[0].Detail, "rejected the login") {
		t.Errorf("upstream problems %+v", up)
	}
	if m := byKind["migrate"]; len(m) != 1 || m[0].Params["mailbox"] != "Sent" || !strings.Contains(m[0].Detail, "TOOBIG") {
		t.Errorf("migrate problems %+v", m)
	}
	si := byKind["sign-in"]
	if len(si) != 1 || si[0].Params["account"] != "taro@outlook.com" || si[0].Params["reason"] != oauth.ReasonRevoked ||
		!strings.Contains(si[0].Texts["ja"], "受け付けなくなりました") || !strings.Contains(si[0].Texts["en"], "sign in again") || len(byKind["upstream"]) != 1 {
		t.Errorf("sign-in problems %+v (upstream %+v)", si, byKind["upstream"])
	}
	pl.Clear("sign-in")
	for _, p := range pl.list() {
		if p.Kind == "sign-in" {
			t.Error("Clear left a sign-in problem")
		}
	}
	if strings.Count(out.String(), "\n") != 7 {
		t.Errorf("the log got %d lines, want 7:\n%s", strings.Count(out.String(), "\n"), out.String())
	}
}

// TestNotRunning: calls that need the bridge say why it is not there.
func TestNotRunning(t *testing.T) {
	svc := NewService(Options{DataDir: t.TempDir(), AttachWait: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if _, err := svc.Status(context.Background()); CodeOf(err) != CodeNotRunning {
		t.Fatalf("before attach: %v", err)
	}
	svc.SetStartError(errors.New("listen on 127.0.0.1:1143: address already in use"))
	_, err := svc.Dashboard(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := svc.Dashboard(context.Background())
	if d.State != "stopped" || len(d.Problems) != 1 || d.Problems[0].Kind != "start" {
		t.Fatalf("dashboard %+v", d)
	}
	if _, err := svc.StartMigration(context.Background(), MigrateRequest{}); CodeOf(err) != CodeNotRunning || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start while stopped: %v", err)
	}
	if _, err := svc.Settings(context.Background()); CodeOf(err) != CodeNoSettings {
		t.Fatalf("settings without a host: %v", err)
	}
}
