package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/crypto/bcrypt"

	"github.com/popbridge/popbridge/internal/testenv"
)

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// bridge is a running `popbridge serve` (in-process) for tests.
type bridge struct {
	cfg    *Config
	port   int
	cancel context.CancelFunc
	done   chan error
	out    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testPassword = "correct horse"

// writeConfig writes a popbridge.toml for the given sources.
func writeConfig(t testing.TB, dir string, port int, sources map[string]string, extra string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\n\n[listen]\nimap = \"127.0.0.1:%d\"\nimaps = \"off\"\n%s\n[[users]]\nname = \"me\"\npassword_hash = %q\n\n", filepath.Join(dir, "data"), port, extra, hash)
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "[[archive.sources]]\nname = %q\npath = %q\n\n", n, sources[n])
	}
	p := filepath.Join(dir, "popbridge.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startBridge(t testing.TB, cfgPath string) *bridge {
	t.Helper()
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	_, portStr, _ := net.SplitHostPort(cfg.Listen.IMAP)
	var port int
	fmt.Sscan(portStr, &port)
	ctx, cancel := context.WithCancel(context.Background())
	b := &bridge{cfg: cfg, port: port, cancel: cancel, done: make(chan error, 1), out: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(b.out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { b.done <- serve(ctx, cfg, log, b.out) }()
	t.Cleanup(func() { b.stop(t) })
	// Ready when the first index run is complete (the control endpoint says so).
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep, err := runningStatus(cfg)
		if err == nil && rep.Running && !rep.Indexed.IsZero() {
			break
		}
		select {
		case err := <-b.done:
			t.Fatalf("serve ended early: %v\n%s", err, b.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge not ready: %v\n%s", err, b.out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for readiness, not synchronisation of results
	}
	return b
}

func (b *bridge) stop(t testing.TB) {
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("serve did not stop")
	}
}

func (b *bridge) client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(fmt.Sprintf("127.0.0.1:%d", b.port), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("me", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type served struct {
	Body  []byte
	Flags []imap.Flag
}

func fetchFolder(t *testing.T, c *imapclient.Client, name string) []served {
	t.Helper()
	if _, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %q: %v", name, err)
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		t.Fatalf("fetch %q: %v", name, err)
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].UID < msgs[j].UID })
	out := make([]served, len(msgs))
	for i, m := range msgs {
		fl := append([]imap.Flag(nil), m.Flags...)
		sort.Slice(fl, func(i, j int) bool { return fl[i] < fl[j] })
		out[i] = served{Body: m.FindBodySection(sec), Flags: fl}
	}
	return out
}

func listNames(t *testing.T, c *imapclient.Client) map[string][]imap.MailboxAttr {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		out[l.Mailbox] = l.Attrs
	}
	return out
}

func fixture(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "archive", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEndToEnd runs `serve` on the Thunderbird and Maildir fixtures and
// checks it from the outside: LIST (Japanese names, SPECIAL-USE), the
// control endpoint, the data-dir lock, mbsync (a third-party client) and
// python's imaplib.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := writeConfig(t, dir, port, map[string]string{
		"TB":      fixture(t, "thunderbird"),
		"Maildir": fixture(t, "maildir"),
	}, "")
	b := startBridge(t, cfgPath)
	c := b.client(t)

	names := listNames(t, c)
	for _, want := range []string{"Local", "Local/TB/Local Folders/Inbox", "Local/TB/Local Folders/送信済みアイテム", "Local/TB/Local Folders/Projects/2019", "Local/TB/pop.example.com/Inbox", "Local/Maildir/Inbox"} {
		if _, ok := names[want]; !ok {
			t.Errorf("LIST lacks %q; got %v", want, names)
		}
	}
	hasAttr := func(name string, attr imap.MailboxAttr) bool {
		for _, a := range names[name] {
			if strings.EqualFold(string(a), string(attr)) {
				return true
			}
		}
		return false
	}
	if !hasAttr("Local/TB/Local Folders/送信済みアイテム", imap.MailboxAttrSent) {
		t.Errorf("Local/TB/Local Folders/送信済みアイテム lacks \\Sent: %v", names["Local/TB/Local Folders/送信済みアイテム"])
	}
	if !hasAttr("Local/TB/Local Folders/Sent", imap.MailboxAttrSent) {
		t.Errorf("Local/TB/Sent lacks \\Sent: %v", names["Local/TB/Local Folders/Sent"])
	}

	// status through the control endpoint of the running bridge.
	rep, err := getStatus(b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Running {
		t.Error("status did not reach the running bridge")
	}
	counts := map[string]int{}
	for _, f := range rep.Folders {
		counts[f.Name] = f.Messages
	}
	inbox := fetchFolder(t, c, "Local/TB/Local Folders/Inbox")
	if counts["Local/TB/Local Folders/Inbox"] != len(inbox) || len(inbox) == 0 {
		t.Errorf("status says %d in Local/TB/Local Folders/Inbox, IMAP shows %d", counts["Local/TB/Local Folders/Inbox"], len(inbox))
	}

	// A second bridge on the same data dir: a clear error, not a hang.
	cfg2, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg2.Listen.IMAP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg2.Listen.Control = ""
	start := time.Now()
	err = serve(context.Background(), cfg2, slog.New(slog.DiscardHandler), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second serve: %v, want an 'already running' error", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("second serve took %v to fail", time.Since(start))
	}

	// mbsync, a third-party client, syncs the whole Local/ namespace.
	testenv.RequireMbsync(t)
	near := filepath.Join(dir, "mbsync")
	testenv.Mbsync(t, testenv.MbsyncOptions{Host: "127.0.0.1", Port: port, User: "me", Pass: testPassword, Patterns: []string{"Local*"}, LocalDir: near})
	tree := testenv.ReadMaildirTree(t, near)
	compared := 0
	for name := range names {
		if !strings.HasPrefix(name, "Local/") || hasAttr(name, imap.MailboxAttrNoSelect) {
			continue
		}
		want := fetchFolder(t, c, name)
		got, ok := tree[name]
		if !ok {
			got = tree[mutf7(name)] // mbsync 1.4 keeps names as sent on the wire
		}
		if len(got) != len(want) {
			t.Errorf("mbsync copied %d messages of %q, IMAP shows %d", len(got), name, len(want))
			continue
		}
		for i := range want {
			wb := testenv.CRLFToLF(want[i].Body)
			gb := testenv.CRLFToLF(testenv.StripMbsyncTUID(got[i].Body))
			if !bytes.Equal(wb, gb) {
				t.Errorf("%s message %d: mbsync has different bytes\n got %q\nwant %q", name, i+1, gb, wb)
			}
			// A Maildir records system flags only; keywords stay on the server.
			if fmt.Sprint(systemFlags(got[i].Flags)) != fmt.Sprint(systemFlags(want[i].Flags)) {
				t.Errorf("%s message %d: mbsync flags %v, IMAP flags %v", name, i+1, got[i].Flags, want[i].Flags)
			}
			compared++
		}
	}
	if compared < 5 {
		t.Errorf("mbsync comparison covered only %d messages", compared)
	}
	t.Logf("mbsync: %d messages in %d folders identical to the bridge's", compared, len(tree))

	// python's imaplib, another independent client.
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 not found: apt-get install -y python3")
		}
		t.Skip("python3 not found")
	}
	script := fmt.Sprintf(`
import imaplib
m = imaplib.IMAP4("127.0.0.1", %d)
m.login("me", %q)
typ, data = m.select('"Local/TB/Local Folders/Inbox"', readonly=True)
print("EXISTS", data[0].decode())
typ, data = m.fetch("1", "(BODY.PEEK[])")
print("SIZE", len(data[0][1]))
m.logout()
`, port, testPassword)
	out, err := exec.Command(py, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	wantOut := fmt.Sprintf("EXISTS %d\nSIZE %d\n", len(inbox), len(inbox[0].Body))
	if string(out) != wantOut {
		t.Errorf("imaplib printed %q, want %q", out, wantOut)
	}
}

func systemFlags(fl []imap.Flag) []imap.Flag {
	var out []imap.Flag
	for _, f := range fl {
		switch f {
		case imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft:
			out = append(out, f)
		}
	}
	return out
}

// mutf7 encodes a mailbox name in modified UTF-7 (RFC 3501 5.1.3).
func mutf7(s string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		u := utf16.Encode(run)
		buf := make([]byte, 0, len(u)*2)
		for _, x := range u {
			buf = append(buf, byte(x>>8), byte(x))
		}
		enc := base64.StdEncoding.WithPadding(base64.NoPadding).EncodeToString(buf)
		b.WriteString("&" + strings.ReplaceAll(enc, "/", ",") + "-")
		run = nil
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = append(run, r)
	}
	flush()
	return b.String()
}

// TestStatusAndImportWithoutBridge: with no bridge running, import indexes
// and prints a summary, and status reads the data dir itself.
func TestStatusAndImportWithoutBridge(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), map[string]string{"TB": fixture(t, "thunderbird")}, "")
	var out, errb bytes.Buffer
	if code := run([]string{"import", "-config", cfgPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("import exited %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Local/Local Folders/Inbox") || !strings.Contains(out.String(), "Indexed ") {
		t.Errorf("import output lacks the summary:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"status", "-config", cfgPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "not running") || !strings.Contains(out.String(), "Local/Local Folders/Inbox") {
		t.Errorf("status output:\n%s", out.String())
	}
	// Importing again adds nothing.
	out.Reset()
	if code := run([]string{"import", "-config", cfgPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("second import exited %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Indexed 0 new/updated") {
		t.Errorf("second import indexed something:\n%s", out.String())
	}
}

func TestSubcommandHelp(t *testing.T) {
	for _, c := range commands() {
		var out, errb bytes.Buffer
		code := run([]string{c.name, "-h"}, strings.NewReader(""), &out, &errb)
		if code == 1 {
			t.Errorf("%s -h exited 1: %s", c.name, errb.String())
		}
		if !strings.Contains(out.String()+errb.String(), "popbridge "+c.name) {
			t.Errorf("%s -h prints no usage: %q", c.name, out.String()+errb.String())
		}
	}
	_ = bufio.NewReader
}
