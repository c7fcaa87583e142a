package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/testenv"
)

// TestPOPToUpstreamSurvivesSIGKILL: a POP account delivering straight into
// the server's INBOX; the bridge process is killed with SIGKILL in the
// middle of a round and restarted. Every POP message arrives exactly once.
func TestPOPToUpstreamSurvivesSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{Users: []testenv.DovecotUser{
		{Name: "alice", Password: "alice-pw"}, {Name: "oldpop", Password: "oldpop-pw"}}})
	const n = 120
	// The old POP mailbox.
	for i := 1; i <= n; i++ {
		msg := fmt.Sprintf("From: sender%d@example.com\r\nTo: me@old-isp.example\r\nSubject: pop message %d\r\nMessage-ID: <pop%d@example.com>\r\nDate: Tue, 3 Mar 2020 10:00:00 +0000\r\n\r\nbody %d\r\n%s", i, i, i, i, strings.Repeat("text text text\r\n", 40))
		dc.Append(t, "oldpop", "INBOX", []byte(msg), nil, time.Time{})
	}
	dir := t.TempDir()
	port := freePort(t)
	src, _ := filepath.Abs("../../testdata/archive/mbox/lf.mbox")
	cfgPath := writeConfig(t, dir, port, map[string]string{"lf": src}, "")
	appendUpstream(t, cfgPath, fmt.Sprintf(`[upstream]
host = "127.0.0.1"
port = %d
tls = "none"
username = "alice"
password = "alice-pw"

[[pop3]]
name = "old-isp"
host = "127.0.0.1"
port = %d
tls = "none"
username = "oldpop"
password = "oldpop-pw"
interval = "30s"
deliver_to = "INBOX"
`, dc.IMAPPort, dc.POP3Port))
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	p := startProc(t, bin, cfgPath, cfg)
	watcher := dc.Client(t, "alice")
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := watcher.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if *st.NumMessages >= 10 {
			if *st.NumMessages >= n {
				t.Fatal("the POP round finished before the bridge could be killed")
			}
			break
		}
		if time.Now().After(deadline) {
			rep, _ := getStatus(cfg)
			t.Fatalf("POP delivery did not start: %+v\n%s", rep, p.out.String())
		}
		time.Sleep(5 * time.Millisecond) // polling the server's progress
	}
	p.kill()
	p2 := startProc(t, bin, cfgPath, cfg)
	deadline = time.Now().Add(180 * time.Second)
	for {
		st, err := watcher.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if *st.NumMessages >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart only %d of %d POP messages arrived:\n%s", *st.NumMessages, n, p2.out.String())
		}
		time.Sleep(20 * time.Millisecond) // waiting for the second round
	}
	// Let the round finish, then count: exactly once each.
	deadline = time.Now().Add(60 * time.Second)
	for {
		rep, err := runningStatus(cfg)
		if err == nil && len(rep.POP3) == 1 && rep.POP3[0].LastResult != "" && !rep.POP3[0].LastSuccess.IsZero() && rep.POP3[0].Tracked >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POP status never showed a finished round: %+v %v", rep, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	msgs := dc.Messages(t, "alice", "INBOX")
	seen := map[string]int{}
	for _, m := range msgs {
		i := bytes.Index(m.Body, []byte("Subject: "))
		j := bytes.Index(m.Body[i:], []byte("\r\n"))
		seen[string(m.Body[i:i+j])]++
	}
	if len(msgs) != n || len(seen) != n {
		t.Errorf("server INBOX: %d messages, %d distinct; want %d exactly once", len(msgs), len(seen), n)
	}
}
