package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"golang.org/x/crypto/bcrypt"

	"github.com/popbridge/popbridge"
)

// startDemoUpstream runs go-imap's in-memory server on a loopback port as
// the demo's "real" mailbox; the bridge talks to it over IMAP like to any
// upstream, so the demo exercises the same code paths.
func startDemoUpstream(ctx context.Context, user, password string, log *slog.Logger) (int, error) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, password)
	if err := fillDemoUpstream(u); err != nil {
		return 0, err
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapNamespace: {}},
		InsecureAuth: true,
		Logger:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func runDemo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[-listen ADDR] [-imaps ADDR] [-dir DIR]", stderr)
	listen := fs.String("listen", "127.0.0.1:1143", "IMAP (STARTTLS) listen address")
	imaps := fs.String("imaps", "127.0.0.1:1993", "IMAPS listen address (\"off\" to disable)")
	dir := fs.String("dir", "", "working directory for the demo (default: a new temporary directory)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, *listen, *imaps, *dir, stdout, stderr); err != nil {
		return fail(stderr, err)
	}
	return 0
}

func demo(ctx context.Context, listen, imaps, dir string, stdout, stderr io.Writer) error {
	if strings.EqualFold(imaps, "off") {
		imaps = ""
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "popbridge-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	archiveDir := filepath.Join(dir, "archive")
	if err := extractDemo(archiveDir); err != nil {
		return fmt.Errorf("unpack the demo archive: %w", err)
	}
	password := randomPassword(16)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	upPassword := randomPassword(16)
	upPort, err := startDemoUpstream(ctx, "demo", upPassword, log)
	if err != nil {
		return fmt.Errorf("demo upstream: %w", err)
	}
	cfg := &Config{
		DataDir: filepath.Join(dir, "data"),
		Listen:  ListenConfig{IMAP: listen, IMAPS: imaps, TrustedNets: []string{"127.0.0.0/8", "::1/128"}},
		Users:   []UserConfig{{Name: "demo", PasswordHash: string(hash)}},
		Archive: ArchiveConfig{Prefix: "Local", Sources: []SourceConfig{{Path: archiveDir, Format: "auto", Name: "Local Folders"}}},
		Log:     LogConfig{Level: "info"},
		Upstream: &UpstreamConfig{Host: "127.0.0.1", Port: upPort, TLS: "none", Username: "demo",
			Secret: Secret{Password: upPassword}, Auth: "plain", MaxConnections: 4},
	}
	host, port := splitHostPortDefault(listen)
	fmt.Fprintf(stdout, `popbridge demo — a sample legacy archive and an in-memory "server" mailbox.

Point any IMAP client (Thunderbird, mutt, Apple Mail, K-9…) at it:

  Server:    %s
  Port:      %s  (security: none/STARTTLS optional on localhost)
  Username:  demo
  Password:  %s

You will see INBOX, Sent, Drafts, Trash (the "server") and Local/… (the old
archive, read-only files). Drag a message from Local/… to INBOX to upload it.
Try:  curl -v --url "imap://%s:%s/Local/Inbox" --user "demo:%s"

Demo files in %s (deleted on exit unless -dir was given). Ctrl-C stops.

`, host, port, password, host, port, password, dir)
	return serve(ctx, cfg, log, stdout)
}

func splitHostPortDefault(addr string) (string, string) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	return addr, "143"
}

// extractDemo writes the embedded archive out read-only.
func extractDemo(dst string) error {
	root := "testdata/demo"
	return fs.WalkDir(popbridge.DemoArchive, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := popbridge.DemoArchive.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o444)
	})
}

func randomPassword(n int) string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

func fillDemoUpstream(u *imapmemserver.User) error {
	for _, name := range []string{"INBOX", "Sent", "Drafts", "Trash"} {
		if err := u.Create(name, nil); err != nil {
			return err
		}
	}
	now := time.Now()
	msgs := []struct{ from, subject, body string }{
		{"Alice Example <alice@example.com>", "Welcome to your new mailbox", "Hi!\r\n\r\nThis INBOX lives on the (demo) server. Your old mail is under Local/.\r\n"},
		{"Bob Example <bob@example.com>", "Lunch on Friday?", "Are you free on Friday at noon?\r\n\r\nBob\r\n"},
		{"Provider <noreply@provider.example>", "Your account is ready", "Your IMAP account is ready. Drag old mail from Local/ into a server folder to upload it.\r\n"},
	}
	for i, m := range msgs {
		date := now.Add(-time.Duration(len(msgs)-i) * time.Hour)
		raw := fmt.Sprintf("From: %s\r\nTo: You <you@example.com>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <demo-%d@popbridge.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
			m.from, m.subject, date.Format(time.RFC1123Z), i+1, m.body)
		lit := &literalReader{data: []byte(raw)}
		if _, err := u.Append("INBOX", lit, &imap.AppendOptions{Time: date}); err != nil {
			return err
		}
	}
	return nil
}

type literalReader struct {
	data []byte
	off  int
}

func (l *literalReader) Read(p []byte) (int, error) {
	if l.off >= len(l.data) {
		return 0, io.EOF
	}
	n := copy(p, l.data[l.off:])
	l.off += n
	return n, nil
}

func (l *literalReader) Size() int64 { return int64(len(l.data)) }
