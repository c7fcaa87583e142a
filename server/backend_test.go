package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/store"
)

// bridgeCaps are the capabilities cmd/popbridge offers (its serverCaps;
// the capability tests there check each one through the whole bridge).
var bridgeCaps = imap.CapSet{
	imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapNamespace: {},
	imap.CapChildren: {}, imap.CapSpecialUse: {}, imap.CapESearch: {}, imap.CapSearchRes: {},
	imap.CapStatusSize: {}, imap.CapLiteralPlus: {},
}

// archiveMessage is message i of the test archive.
func archiveMessage(folder string, i int) string {
	return fmt.Sprintf("From: Sender %d <s%d@example.com>\r\nTo: me@example.com\r\nSubject: %s message %d\r\n"+
		"Date: Mon, 0%d Jan 2024 10:00:00 +0900\r\nMessage-ID: <%s-%d@example.com>\r\n\r\nBody of %s %d.\r\n",
		i, i, folder, i, i%9+1, folder, i, folder, i)
}

// newBackendEnv starts a server whose sessions are a real backend.Account
// over a small mbox archive (Local/Inbox with 5 messages, Local/Sent with
// 2) in t.TempDir(), without an upstream.
func newBackendEnv(t testing.TB, mod func(*Options)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	mail := filepath.Join(dir, "archive")
	if err := os.MkdirAll(mail, 0o755); err != nil {
		t.Fatal(err)
	}
	for folder, n := range map[string]int{"Inbox": 5, "Sent": 2} {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "From s%d@example.com Mon Jan  1 10:00:00 2024\n", i)
			b.WriteString(strings.ReplaceAll(archiveMessage(folder, i), "\r\n", "\n"))
			b.WriteString("\n")
		}
		if err := os.WriteFile(filepath.Join(mail, folder), []byte(b.String()), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	blog, berrs := &syncBuffer{}, &atomic.Int64{}
	db, err := store.Open(filepath.Join(dir, "data", "index.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	acct, err := backend.New(backend.Options{
		DB:      db,
		DataDir: filepath.Join(dir, "data"),
		Sources: []backend.Source{{Name: "Archive", Path: mail, Format: archive.FormatAuto}},
		Flatten: true,
		Logger:  slog.New(countingHandler{slog.NewTextHandler(blog, nil), berrs}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := acct.Index(ctx, nil); err != nil {
		t.Fatal(err)
	}
	env := newTestEnv(t, func(o *Options) {
		o.Caps = bridgeCaps
		o.NewSession = func(info SessionInfo) (imapserver.Session, error) { return acct.NewSession(info.User) }
		if mod != nil {
			mod(o)
		}
	})
	env.backendLog, env.backendErrors = blog, berrs
	return env
}
