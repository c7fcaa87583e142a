package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/testenv"
)

func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// TestMigrateCLI: `popbridge migrate` killed with SIGKILL half-way, rerun,
// then `verify`; a message deleted on the server is named by verify and
// restored by migrate; verify also works through a running bridge.
func TestMigrateCLI(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{})
	user := dc.Users[0]
	const n = 1500
	dir := t.TempDir()
	var mb strings.Builder
	pad := strings.Repeat("an old line of text in a message body, for some bulk\n", 50)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&mb, "From old%d@example.com Mon Jan  2 15:04:05 2006\nFrom: Old %d <old%d@example.com>\nSubject: old mail %d\nMessage-ID: <o%d@example.com>\nDate: Mon, 2 Jan 2006 15:04:05 +0000\n\nbody %d\n%s\n", i, i, i, i, i, i, pad)
	}
	mboxPath := filepath.Join(dir, "Old.mbox")
	if err := os.WriteFile(mboxPath, []byte(mb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfgPath := writeConfig(t, dir, port, map[string]string{"Old": mboxPath}, "")
	appendUpstream(t, cfgPath, fmt.Sprintf("[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = %q\npassword = %q\n", dc.IMAPPort, user.Name, user.Password))
	bin := buildBinary(t)

	// Dry run: a plan, nothing uploaded.
	out, code := runBin(t, bin, "migrate", "-config", cfgPath, "-dry-run")
	if code != 0 || !strings.Contains(out, "Local/Old") || !strings.Contains(out, "TO UPLOAD") || !strings.Contains(out, "Folders to create on the server: Old") {
		t.Fatalf("dry run (exit %d):\n%s", code, out)
	}
	if len(dc.Messages(t, user.Name, "INBOX")) != 0 {
		t.Fatal("dry run uploaded")
	}

	// Killed half-way.
	cmd := exec.Command(bin, "migrate", "-config", cfgPath)
	var mout syncBuffer
	cmd.Stdout, cmd.Stderr = &mout, &mout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	watcher := dc.Client(t, user.Name)
	deadline := time.Now().Add(120 * time.Second)
	for {
		st, err := watcher.Status("Old", &imap.StatusOptions{NumMessages: true}).Wait()
		if err == nil && *st.NumMessages >= 100 {
			if *st.NumMessages >= n {
				t.Fatal("migrate finished before it could be killed")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("migrate did not start uploading:\n%s", mout.String())
		}
		time.Sleep(5 * time.Millisecond) // polling the server's progress
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	out, code = runBin(t, bin, "migrate", "-config", cfgPath)
	if code != 0 || !strings.Contains(out, "Everything in scope is on the server") {
		t.Fatalf("migrate after the kill (exit %d):\n%s", code, out)
	}
	msgs := dc.Messages(t, user.Name, "Old")
	subjects := map[string]bool{}
	for _, m := range msgs {
		i := bytes.Index(m.Body, []byte("Subject: "))
		j := bytes.Index(m.Body[i:], []byte("\r\n"))
		subjects[string(m.Body[i:i+j])] = true
	}
	if len(msgs) != n || len(subjects) != n {
		t.Fatalf("server folder Old: %d messages, %d unique; want %d exactly once", len(msgs), len(subjects), n)
	}
	out, code = runBin(t, bin, "migrate", "-config", cfgPath)
	// Summary line: source → target, in scope, uploaded, already there, failed, hidden.
	if code != 0 || !regexp.MustCompile(fmt.Sprintf(`Local/Old\s+→ Old\s+%d\s+0\s+%d\s+0\s+0`, n, n)).MatchString(out) {
		t.Errorf("rerun should upload 0 (exit %d):\n%s", code, out)
	}
	report := filepath.Join(dir, "missing.csv")
	out, code = runBin(t, bin, "verify", "-config", cfgPath, "-report", report)
	if code != 0 || !strings.Contains(out, "OK: every in-scope legacy message is on the server (compared by header fields and size)") {
		t.Fatalf("verify (exit %d):\n%s", code, out)
	}
	out, code = runBin(t, bin, "verify", "-content", "-config", cfgPath)
	if code != 0 || !strings.Contains(out, "OK: every in-scope legacy message is on the server (compared by full content)") ||
		!strings.Contains(out, fmt.Sprintf("verify: Old: %d/%d messages read", n, n)) {
		t.Fatalf("verify -content (exit %d):\n%s", code, out)
	}

	// Delete one message on the server: verify names it, exit 1.
	if _, err := watcher.Select("Old", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	d, err := watcher.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<o777@example.com>"}}}, nil).Wait()
	if err != nil || len(d.AllUIDs()) != 1 {
		t.Fatalf("search o777: %v", err)
	}
	watcher.Store(imap.UIDSetNum(d.AllUIDs()...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	if err := watcher.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	out, code = runBin(t, bin, "verify", "-config", cfgPath, "-report", report)
	if code != 1 || !strings.Contains(out, "old mail 777") || !strings.Contains(out, "o777@example.com") {
		t.Fatalf("verify after a server-side delete (exit %d):\n%s", code, out)
	}
	csvData, _ := os.ReadFile(report)
	if !strings.Contains(string(csvData), "o777@example.com") || strings.Count(string(csvData), "\n") != 2 {
		t.Errorf("CSV report:\n%s", csvData)
	}

	// With a bridge running, verify and migrate go through it.
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	startProc(t, bin, cfgPath, cfg)
	out, code = runBin(t, bin, "migrate", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("migrate through the running bridge (exit %d):\n%s", code, out)
	}
	out, code = runBin(t, bin, "verify", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("verify through the running bridge (exit %d):\n%s", code, out)
	}
	out, code = runBin(t, bin, "verify", "-content", "-config", cfgPath)
	if code != 0 || !strings.Contains(out, "(compared by full content)") {
		t.Fatalf("verify -content through the running bridge (exit %d):\n%s", code, out)
	}
	if got := len(dc.Messages(t, user.Name, "Old")); got != n {
		t.Errorf("server has %d messages after the restore, want %d", got, n)
	}
	out, code = runBin(t, bin, "status", "-config", cfgPath)
	if code != 0 || !strings.Contains(out, "running") || !strings.Contains(out, "ON SERVER") {
		t.Errorf("status (exit %d):\n%s", code, out)
	}
}
