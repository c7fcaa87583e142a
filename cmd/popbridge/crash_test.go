package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/internal/testenv"
)

// buildBinary builds popbridge once per test.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "popbridge")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runningStatus asks the running bridge only: polling with getStatus, which
// opens the data dir itself when no bridge answers yet, would hold the
// database lock that the starting bridge needs.
func runningStatus(cfg *Config) (*control.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return c.Status(ctx)
}

// proc is a `popbridge serve` child process.
type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

func startProc(t *testing.T, bin, cfgPath string, cfg *Config) *proc {
	t.Helper()
	p := &proc{out: &syncBuffer{}}
	p.cmd = exec.Command(bin, "serve", "-config", cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		rep, err := runningStatus(cfg)
		if err == nil && rep.Running && !rep.Indexed.IsZero() {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge process not ready: %v\n%s", err, p.out.String())
		}
		time.Sleep(20 * time.Millisecond) // readiness polling
	}
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// TestMoveSurvivesSIGKILL: the bridge process is killed with SIGKILL in
// the middle of a 2,000-message MOVE to the server; after a restart the
// MOVE is repeated. Every message ends up on the server exactly once, and
// none is hidden locally without being on the server.
func TestMoveSurvivesSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{})
	user := dc.Users[0]
	const n = 2000
	dir := t.TempDir()
	var mb strings.Builder
	pad := strings.Repeat("a line of an old message body, padded to make it realistic\n", 60)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&mb, "From old%d@example.com Mon Jan  2 15:04:05 2006\nFrom: Old %d <old%d@example.com>\nSubject: archived %d\nMessage-ID: <a%d@example.com>\nDate: Mon, 2 Jan 2006 15:04:05 +0000\n\nmessage %d\n%s\n", i, i, i, i, i, i, pad)
	}
	mboxPath := filepath.Join(dir, "Old.mbox")
	if err := os.WriteFile(mboxPath, []byte(mb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	extra := ""
	cfgPath := writeConfig(t, dir, port, map[string]string{"Old": mboxPath}, extra)
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = %q\npassword = %q\n", dc.IMAPPort, user.Name, user.Password)
	f.Close()
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)

	p := startProc(t, bin, cfgPath, cfg)
	c := dialBridge(t, port)
	if _, err := c.Select("Local/Old", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	go c.Move(imap.SeqSet{{Start: 1, Stop: 0}}, "INBOX").Wait()
	watcher := dc.Client(t, user.Name)
	deadline := time.Now().Add(120 * time.Second)
	for {
		st, err := watcher.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if *st.NumMessages >= 100 {
			if *st.NumMessages >= n {
				t.Fatal("the MOVE finished before the bridge could be killed")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload did not start\n%s", p.out.String())
		}
		time.Sleep(5 * time.Millisecond) // polling the server's progress
	}
	p.kill()
	c.Close()
	st, _ := watcher.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	t.Logf("killed the bridge with %d of %d messages on the server", *st.NumMessages, n)

	startProc(t, bin, cfgPath, cfg)
	c = dialBridge(t, port)
	local := fetchFolder(t, c, "Local/Old")
	if onServer := int(*st.NumMessages); len(local)+onServer < n {
		t.Fatalf("after the crash %d local + %d on the server < %d: a message was hidden before it was uploaded", len(local), onServer, n)
	}
	if _, err := c.Select("Local/Old", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.SeqSet{{Start: 1, Stop: 0}}, "INBOX").Wait(); err != nil {
		t.Fatalf("MOVE after restart: %v", err)
	}
	msgs := dc.Messages(t, user.Name, "INBOX")
	seen := map[string]int{}
	for _, m := range msgs {
		i := bytes.Index(m.Body, []byte("Subject: "))
		j := bytes.Index(m.Body[i:], []byte("\r\n"))
		seen[string(m.Body[i:i+j])]++
	}
	dups := 0
	for _, k := range seen {
		if k > 1 {
			dups++
		}
	}
	if len(msgs) != n || len(seen) != n || dups != 0 {
		t.Errorf("server INBOX: %d messages, %d distinct, %d duplicated; want %d exactly once", len(msgs), len(seen), dups, n)
	}
	if left := fetchFolder(t, c, "Local/Old"); len(left) != 0 {
		t.Errorf("%d messages still visible locally", len(left))
	}
	// The archive file itself is untouched.
	if b, err := os.ReadFile(mboxPath); err != nil || string(b) != mb.String() {
		t.Errorf("the archive mbox changed")
	}
}

func dialBridge(t *testing.T, port int) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(fmt.Sprintf("127.0.0.1:%d", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("me", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
