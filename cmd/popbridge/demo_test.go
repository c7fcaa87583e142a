package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestDemo runs `popbridge demo` and uses it as a newcomer would: log in
// with the printed password, see INBOX and Local/…, read both, drag an old
// message into INBOX.
func TestDemo(t *testing.T) {
	port := freePort(t)
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- demo(ctx, fmt.Sprintf("127.0.0.1:%d", port), "off", t.TempDir(), out, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	pwRe := regexp.MustCompile(`Password:\s+(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	var password string
	for {
		s := out.String()
		if m := pwRe.FindStringSubmatch(s); m != nil && strings.Contains(s, "archive indexed") {
			password = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo not ready:\n%s", s)
		}
		time.Sleep(20 * time.Millisecond) // readiness polling
	}
	if !strings.Contains(out.String(), fmt.Sprintf("Port:      %d", port)) {
		t.Errorf("demo does not print the client settings:\n%s", out.String())
	}
	c, err := imapclient.DialInsecure(fmt.Sprintf("127.0.0.1:%d", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("demo", password).Wait(); err != nil {
		t.Fatal(err)
	}
	names := listNames(t, c)
	for _, want := range []string{"INBOX", "Sent", "Local/Inbox", "Local/Sent", "Local/Projects/2019"} {
		if _, ok := names[want]; !ok {
			t.Errorf("demo LIST lacks %q: %v", want, names)
		}
	}
	inbox := fetchFolder(t, c, "INBOX")
	local := fetchFolder(t, c, "Local/Inbox")
	if len(inbox) != 3 || len(local) != 8 {
		t.Fatalf("demo INBOX has %d messages, Local/Inbox %d; want 3 and 8", len(inbox), len(local))
	}
	if _, err := c.Select("Local/Inbox", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "INBOX").Wait(); err != nil {
		t.Fatalf("drag Local/Inbox → INBOX: %v", err)
	}
	inbox2 := fetchFolder(t, c, "INBOX")
	if len(inbox2) != 4 || string(inbox2[3].Body) != string(local[0].Body) {
		t.Errorf("after the drag INBOX has %d messages; the new one matches: %v", len(inbox2), len(inbox2) == 4 && string(inbox2[3].Body) == string(local[0].Body))
	}
}
