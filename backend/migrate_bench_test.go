package backend

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/store"
)

// Benchmarks of the upload path (PlanMigration + Migrate: uploadItems,
// fingerprint dedup, parallel pipelined APPENDs) and of the first
// fingerprint sync, against a private Dovecot on loopback, beside a plain
// sequential APPEND loop with the same messages. cmd/popbench -upload is
// the full-size version, with a latency relay and the targets.
//
//	go test ./backend -run '^$' -bench 'Migrate|SequentialAppend|SyncRemote' -benchtime 3x

// migrateBench is a server (a Dovecot unless given), a generated mbox and
// a data dir indexing it.
type migrateBench struct {
	srv    testenv.Server
	user   string
	corpus benchCorpus
	base   string // data dir with the corpus indexed (durable store)
	n      int    // benchmark folders created so far
}

func newMigrateBench(b *testing.B, size int64, small bool, count int) *migrateBench {
	b.Helper()
	testenv.RequireDovecot(b)
	dc := testenv.StartDovecot(b, testenv.DovecotOptions{})
	return newMigrateBenchOn(b, dc, dc.Users[0].Name, size, small, count)
}

// newMigrateBenchOn is newMigrateBench with user's account on srv.
func newMigrateBenchOn(b *testing.B, srv testenv.Server, user string, size int64, small bool, count int) *migrateBench {
	b.Helper()
	mb := &migrateBench{srv: srv, user: user, base: b.TempDir()}
	mb.corpus = writeBenchMbox(b, filepath.Join(b.TempDir(), "bench.mbox"), size, small, count)
	db, acct := benchAccount(b, mb.base, mb.corpus, store.Options{})
	if _, err := acct.Index(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return mb
}

// account opens a fresh copy of the indexed data dir (or an empty one)
// with an upstream pool of maxConns connections to the Dovecot; close
// closes both (also done at cleanup).
func (mb *migrateBench) account(b *testing.B, maxConns int, withSource bool) (a *Account, close func()) {
	b.Helper()
	dir := b.TempDir()
	if withSource {
		raw, err := os.ReadFile(filepath.Join(mb.base, "popbridge.db"))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "popbridge.db"), raw, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	pool := serverPoolN(b, mb.srv, mb.user, maxConns)()
	db, err := store.Open(filepath.Join(dir, "popbridge.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var sources []Source
	if withSource {
		sources = []Source{{Name: "bench", Path: mb.corpus.path, Format: archive.FormatMbox}}
	}
	acct, err := New(Options{DB: db, DataDir: dir, Flatten: true, Logger: dbgLogger(), Sources: sources, Remote: pool})
	if err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	close = func() {
		once.Do(func() {
			pool.Close()
			db.Close()
		})
	}
	b.Cleanup(close)
	return acct, close
}

// migrateTo plans and migrates Local/bench into target; everything must
// be uploaded (or, with already, be there before).
func migrateTo(b *testing.B, a *Account, target string, already bool) {
	b.Helper()
	ctx := context.Background()
	o := MigrateOptions{Folders: []string{"Local/bench"}, Mapping: map[string]string{"Local/bench": target}}
	plan, err := a.PlanMigration(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	res, err := a.Migrate(ctx, plan, o)
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Folders) != 1 || !res.Complete {
		b.Fatalf("migrate to %s: %+v", target, res)
	}
	f := res.Folders[0]
	if already && (f.Uploaded != 0 || f.Already != f.InScope) || !already && f.Uploaded != f.InScope {
		b.Fatalf("migrate to %s: uploaded %d, already there %d of %d", target, f.Uploaded, f.Already, f.InScope)
	}
}

func (mb *migrateBench) folder(prefix string) string {
	mb.n++
	return fmt.Sprintf("%s%d", prefix, mb.n)
}

func (mb *migrateBench) report(b *testing.B, messages int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(messages*b.N)/s, "msgs/s")
	}
}

// BenchmarkMigrate uploads a generated ~16 MB mbox (mostly 1–8 KB, one in
// 25 with a 64 KB–1 MB attachment) into a new folder per iteration, with
// 2, 4 and 8 upstream connections. Each iteration is a fresh data dir and
// pool (set up untimed), then PlanMigration + Migrate.
func BenchmarkMigrate(b *testing.B) {
	mb := newMigrateBench(b, 16<<20, false, 0)
	for _, conns := range []int{2, 4, 8} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			b.SetBytes(mb.corpus.bytes)
			for b.Loop() {
				b.StopTimer()
				a, done := mb.account(b, conns, true)
				target := mb.folder("B")
				b.StartTimer()
				migrateTo(b, a, target, false)
				b.StopTimer()
				done()
				b.StartTimer()
			}
			mb.report(b, mb.corpus.messages)
		})
	}
}

// BenchmarkSequentialAppend is the reference: the same messages APPENDed
// one by one on one connection, waiting for each OK.
func BenchmarkSequentialAppend(b *testing.B) {
	mb := newMigrateBench(b, 16<<20, false, 0)
	c := mb.srv.Client(b, mb.user)
	f, err := os.Open(mb.corpus.path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(mb.corpus.bytes)
	for b.Loop() {
		b.StopTimer()
		target := mb.folder("S")
		if err := c.Create(target, nil).Wait(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var buf []byte
		n := 0
		_, probs, err := archive.ScanMbox(f, mb.corpus.path, 0, mb.corpus.bytes, func(e archive.MboxEntry) error {
			buf = archive.AppendServedMbox(buf[:0], e.Raw)
			var flags []imap.Flag
			for _, fl := range archive.ParseMeta(e.Raw).Flags {
				flags = append(flags, imap.Flag(fl))
			}
			n++
			return appendWait(c, target, buf, flags, e)
		})
		if err != nil || len(probs) > 0 || n != mb.corpus.messages {
			b.Fatalf("sequential append: %d of %d messages, %v %v", n, mb.corpus.messages, err, probs)
		}
	}
	mb.report(b, mb.corpus.messages)
}

func appendWait(c *imapclient.Client, folder string, body []byte, flags []imap.Flag, e archive.MboxEntry) error {
	cmd := c.Append(folder, int64(len(body)), &imap.AppendOptions{Flags: flags, Time: e.FromDate})
	if _, err := cmd.Write(body); err != nil {
		cmd.Close()
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// BenchmarkMigrateRerun is migrate run again when everything is already
// upstream: PlanMigration + Migrate of 2,000 small messages that all are
// in the target folder (the target of issue B is ≤ 0.3 s).
func BenchmarkMigrateRerun(b *testing.B) {
	mb := newMigrateBench(b, 0, true, 2000)
	a, _ := mb.account(b, 4, true)
	migrateTo(b, a, "R", false)
	for b.Loop() {
		migrateTo(b, a, "R", true)
	}
	mb.report(b, mb.corpus.messages)
}

// BenchmarkSyncRemoteFirst is the first fingerprint sync of an upstream
// folder of 5,000 small messages: a fresh data dir (no archive) and pool
// per iteration, SyncFolders untimed, then SyncRemote.
func BenchmarkSyncRemoteFirst(b *testing.B) {
	mb := newMigrateBench(b, 0, true, 5000)
	a, done := mb.account(b, 4, true)
	migrateTo(b, a, "SyncBox", false)
	done()
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		a, done := mb.account(b, 4, false)
		if err := a.SyncFolders(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := a.SyncRemote(ctx, "SyncBox"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st, err := a.Status()
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range st {
			if f.Name == "SyncBox" && f.Messages != mb.corpus.messages {
				b.Fatalf("mirror of SyncBox has %d messages, want %d", f.Messages, mb.corpus.messages)
			}
		}
		done()
		b.StartTimer()
	}
	mb.report(b, mb.corpus.messages)
}

// BenchmarkMigrateServers is migrate's throughput into every kind of
// server of the conformance suite, with the same archive: 300 generated
// messages of 2–4 KB (one in 12 Japanese, one in 5 with CRLF), 4
// connections, a new target folder per iteration (set-up untimed). Each
// server's peculiarities are part of the figure: Courier's and Cyrus's
// name translation, no UIDPLUS on courier-min (uploaded UIDs found by
// content), Gmail's check of what APPEND answered.
//
//	go test ./backend -run '^$' -bench MigrateServers -benchtime 3x
func BenchmarkMigrateServers(b *testing.B) {
	for _, k := range confKinds() {
		b.Run(k.name, func(b *testing.B) {
			srv := k.start(b, []confUser{{name: "bench"}})
			mb := newMigrateBenchOn(b, srv, "bench", 0, true, 300)
			b.SetBytes(mb.corpus.bytes)
			for b.Loop() {
				b.StopTimer()
				a, done := mb.account(b, 4, true)
				target := mb.folder("B")
				b.StartTimer()
				migrateTo(b, a, target, false)
				b.StopTimer()
				if n := len(srv.Messages(b, "bench", srvNameOf(srv, target))); n != mb.corpus.messages {
					b.Fatalf("%s holds %d messages, want %d", target, n, mb.corpus.messages)
				}
				done()
				b.StartTimer()
			}
			mb.report(b, mb.corpus.messages)
		})
	}
}

// srvNameOf is the server's name of a top-level bridge folder.
func srvNameOf(srv testenv.Server, name string) string {
	return srv.PersonalNamespace().Prefix + name
}
