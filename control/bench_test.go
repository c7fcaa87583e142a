package control

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/internal/testenv"
)

// BenchmarkDashboard produces the dashboard for an archive of 100,000
// messages in 200 folders, with a server (a private Dovecot with its six
// folders) to look each message up in:
//
//	warm      nothing changed since the last call
//	changed   one folder got a new message (the index run is not timed)
//	server    a server folder got a message (every to-go list is checked)
//	cold      everything counted from scratch (at start-up this happens in
//	          the background, so the console's first overview is warm)
//
// Target: under 200 ms.
//
//	go test ./control -run '^$' -bench Dashboard -benchtime 20x
func BenchmarkDashboard(b *testing.B) {
	testenv.RequireDovecot(b)
	dc := testenv.StartDovecot(b, testenv.DovecotOptions{})
	src := b.TempDir()
	const folders, perFolder = 200, 500
	for f := 0; f < folders; f++ {
		var s strings.Builder
		for i := 0; i < perFolder; i++ {
			fmt.Fprintf(&s, "From a@example.com Mon Jan  2 15:04:05 2006\nFrom: sender%d@example.com\nSubject: folder %d message %d\nMessage-ID: <f%d.m%d@example.com>\nDate: Mon, 2 Jan 2006 15:04:05 +0000\n\nbody %d\n\n", i, f, i, f, i, i)
		}
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("folder%03d", f)), []byte(s.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	dataDir := b.TempDir()
	sources := []backend.Source{{Name: "Old", Path: src, Format: "mbox"}}
	br := openBridge(b, dataDir, sources, dc)
	defer br.close()
	svc := NewService(Options{DataDir: dataDir, Logger: slog.New(slog.DiscardHandler)})
	svc.Attach(br.runtime())
	ctx := context.Background()
	d, err := svc.Dashboard(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if d.Totals.Messages != folders*perFolder || len(d.Folders) != folders || d.ServerFolders < 6 {
		b.Fatalf("dashboard: %d messages in %d folders, %d server folders", d.Totals.Messages, len(d.Folders), d.ServerFolders)
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/dashboard")
	}
	b.Run("warm", func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.Dashboard(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("changed", func(b *testing.B) {
		n := 0
		for b.Loop() {
			b.StopTimer()
			n++
			f, err := os.OpenFile(filepath.Join(src, fmt.Sprintf("folder%03d", n%folders)), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(f, "From a@example.com Mon Jan  2 15:04:05 2006\nSubject: new %d\nMessage-ID: <new%d@example.com>\n\nnew\n\n", n, n)
			f.Close()
			if _, err := br.acct.Index(ctx, nil); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := svc.Dashboard(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("server", func(b *testing.B) {
		n := 0
		for b.Loop() {
			b.StopTimer()
			n++
			dc.Append(b, dc.Users[0].Name, "INBOX", []byte(fmt.Sprintf("From: x@example.com\r\nSubject: server %d\r\nMessage-ID: <srv%d@example.com>\r\n\r\nhello\r\n", n, n)), nil, time.Now())
			if err := br.acct.SyncRemote(ctx, "INBOX"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := svc.Dashboard(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			br.close()
			br = openBridge(b, dataDir, sources, dc)
			rt := br.runtime()
			rt.Running = false // no count in the background at start-up: time the first one here
			svc.Attach(rt)
			b.StartTimer()
			if _, err := svc.Dashboard(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}
