package backend

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/text/encoding/japanese"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/store"
)

// Benchmarks of the archive path: indexing an mbox, and serving it over
// loopback to go-imap's client. The corpus is generated at run time
// (deterministic); cmd/popbench is the full-size version with the targets.
//
//	go test ./backend -run '^$' -bench . -benchtime 3x

// benchCorpus is a generated mbox.
type benchCorpus struct {
	path     string
	messages int
	bytes    int64
}

// writeBenchMbox writes about size bytes (small: messages of 2–4 KB
// only, count messages) of mail: mostly 1–8 KB text, some HTML, one in 25
// with a base64 attachment of 64 KB–1 MB, one in 12 ISO-2022-JP, one in 5
// with CRLF line ends.
func writeBenchMbox(tb testing.TB, path string, size int64, small bool, count int) benchCorpus {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the quick brown fox jumps over a lazy dog while mail from ten years ago waits on the old pc meeting invoice photos")
	lines := make([]string, 1024)
	for i := range lines {
		var b strings.Builder
		if i%97 == 0 {
			b.WriteString(">From here")
		}
		for b.Len() < 40+rng.IntN(36) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		lines[i] = b.String() + "\n"
	}
	jpSubject, err := japanese.ISO2022JP.NewEncoder().String("会議の件")
	if err != nil {
		tb.Fatal(err)
	}
	jpSubject = "=?ISO-2022-JP?B?" + base64.StdEncoding.EncodeToString([]byte(jpSubject)) + "?="
	jpLine, err := japanese.ISO2022JP.NewEncoder().String("添付の資料をご確認ください。よろしくお願いいたします。")
	if err != nil {
		tb.Fatal(err)
	}
	rnd := make([]byte, 768<<10)
	for i := range rnd {
		rnd[i] = byte(rng.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(rnd)
	var b64 strings.Builder
	for len(enc) > 76 {
		b64.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	pool := b64.String()

	c := benchCorpus{path: path}
	var msg []byte
	for i := 0; small && c.messages < count || !small && c.bytes < size; i++ {
		date := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 37 * time.Minute)
		msg = fmt.Appendf(msg[:0], "From - %s\nX-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\n"+
			"Return-Path: <s%d@example.com>\nReceived: from mx.example.com by pop.example.org; %s\n"+
			"Message-ID: <%d.bench@example.com>\nDate: %s\nFrom: Sender %d <s%d@example.com>\nTo: you@example.org\n",
			date.Format("Mon Jan _2 15:04:05 2006"), i, date.Format(time.RFC1123Z), i, date.Format(time.RFC1123Z), i%500, i%500)
		target := 1024 + rng.IntN(7<<10)
		if small {
			target = 2048 + rng.IntN(2048)
		}
		switch {
		case i%12 == 5:
			msg = fmt.Appendf(msg, "Subject: %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP\n\n", jpSubject)
			for len(msg) < target {
				msg = append(msg, jpLine+"\n"...)
			}
		case !small && i%25 == 7:
			n := (64<<10 + rng.IntN(960<<10)) / 77 * 77
			start := rng.IntN((len(pool)-n)/77) * 77
			msg = fmt.Appendf(msg, "Subject: photos %d\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\nContent-Type: text/plain\n\n%s\n--b%d\nContent-Type: image/jpeg\nContent-Transfer-Encoding: base64\n\n%s\n--b%d--\n",
				i, i, i, lines[i%len(lines)], i, pool[start:start+n], i)
		default:
			msg = fmt.Appendf(msg, "Subject: message %d about %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n", i, words[i%len(words)])
			for len(msg) < target {
				msg = append(msg, lines[rng.IntN(len(lines))]...)
			}
		}
		msg = append(msg, '\n')
		if i%5 == 3 {
			msg = []byte(strings.ReplaceAll(string(msg), "\n", "\r\n"))
		}
		if _, err := w.Write(msg); err != nil {
			tb.Fatal(err)
		}
		c.messages++
		c.bytes += int64(len(msg))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return c
}

func benchAccount(tb testing.TB, dataDir string, c benchCorpus, opts store.Options) (*store.DB, *Account) {
	tb.Helper()
	db, err := store.Open(filepath.Join(dataDir, "popbridge.db"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	acct, err := New(Options{DB: db, DataDir: dataDir, Flatten: true, Logger: slog.New(slog.DiscardHandler),
		Sources: []Source{{Name: "bench", Path: c.path, Format: archive.FormatMbox}}})
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	return db, acct
}

// BenchmarkIndexMbox is a cold `popbridge import` of a 64 MB mbox: a
// fresh data dir every iteration and the default durable store (fsync at
// every batch commit), as the product runs it. The mbox is in the page
// cache after the first iteration.
func BenchmarkIndexMbox(b *testing.B) {
	dir := b.TempDir()
	c := writeBenchMbox(b, filepath.Join(dir, "bench.mbox"), 64<<20, false, 0)
	b.SetBytes(c.bytes)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		data, err := os.MkdirTemp(dir, "data-")
		if err != nil {
			b.Fatal(err)
		}
		db, acct := benchAccount(b, data, c, store.Options{})
		b.StartTimer()
		rep, err := acct.Index(context.Background(), nil)
		b.StopTimer()
		if err != nil || rep.Messages != int64(c.messages) || len(rep.Problems) > 0 {
			b.Fatalf("index: %v; %d of %d messages; problems %v", err, rep.Messages, c.messages, rep.Problems)
		}
		n += c.messages
		db.Close()
		os.RemoveAll(data)
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// benchServer indexes c and serves it on loopback behind a stock
// imapserver; it returns a logged-in client with the folder selected
// (read-only).
func benchServer(b *testing.B, c benchCorpus) *imapclient.Client {
	b.Helper()
	data := b.TempDir()
	// NoSync: indexing is setup here, not measured, and serving never
	// commits (the envelopes are cached at index time, BODY.PEEK sets no
	// flag).
	db, acct := benchAccount(b, data, c, store.Options{NoSync: true})
	b.Cleanup(func() { db.Close() })
	if rep, err := acct.Index(context.Background(), nil); err != nil || rep.Messages != int64(c.messages) {
		b.Fatalf("index: %v (%d of %d messages)", err, rep.Messages, c.messages)
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
		Logger:       benchLogger{b},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	cl, err := imapclient.DialInsecure(ln.Addr().String(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	if err := cl.Login("u", "pw").Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := cl.Select("Local/bench", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	return cl
}

type benchLogger struct{ b *testing.B }

func (l benchLogger) Printf(format string, args ...any) { l.b.Logf(format, args...) }

// BenchmarkFetchEnvelopes is a client's first full sync of a 10k-message
// folder: UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE) over
// loopback, the responses consumed as they stream.
func BenchmarkFetchEnvelopes(b *testing.B) {
	c := writeBenchMbox(b, filepath.Join(b.TempDir(), "bench.mbox"), 0, true, 10000)
	cl := benchServer(b, c)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		cmd := cl.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true})
		got := 0
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if e, ok := item.(imapclient.FetchItemDataEnvelope); ok && e.Envelope != nil {
					got++
				}
			}
		}
		if err := cmd.Close(); err != nil || got != c.messages {
			b.Fatalf("fetch: %v; %d envelopes of %d messages", err, got, c.messages)
		}
		n += got
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkFetchBody streams every message of a 64 MB folder with one
// UID FETCH 1:* BODY.PEEK[]; MB/s counts the served bytes.
func BenchmarkFetchBody(b *testing.B) {
	c := writeBenchMbox(b, filepath.Join(b.TempDir(), "bench.mbox"), 64<<20, false, 0)
	cl := benchServer(b, c)
	var total int64
	sec := &imap.FetchItemBodySection{Peek: true}
	fetch := func() (int, int64) {
		cmd := cl.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}})
		msgs, bytes := 0, int64(0)
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			msgs++
			for item := msg.Next(); item != nil; item = msg.Next() {
				if bs, ok := item.(imapclient.FetchItemDataBodySection); ok && bs.Literal != nil {
					n, err := io.Copy(io.Discard, bs.Literal)
					if err != nil {
						b.Fatal(err)
					}
					bytes += n
				}
			}
		}
		if err := cmd.Close(); err != nil || msgs != c.messages {
			b.Fatalf("fetch: %v; %d of %d messages", err, msgs, c.messages)
		}
		return msgs, bytes
	}
	_, total = fetch() // the served size (CRLF, no From lines) is what goes over the wire
	b.SetBytes(total)
	n := 0
	for b.Loop() {
		m, got := fetch()
		if got != total {
			b.Fatalf("fetched %d bytes, the first time %d", got, total)
		}
		n += m
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
