package backend

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"

	"github.com/popbridge/popbridge/store"
)

func pstPath(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/mooijtech/go-pst/v6").Output()
	if err != nil {
		t.Fatalf("locating the go-pst module (sample PSTs): %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "data", name)
}

// walkMIME reads every part of a message; it fails on broken MIME.
func walkMIME(body []byte) (html bool, err error) {
	e, err := gomessage.Read(bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	err = e.Walk(func(path []int, part *gomessage.Entity, err error) error {
		if err != nil {
			return err
		}
		if t, _, _ := part.Header.ContentType(); t == "text/html" {
			html = true
		}
		if part.MultipartReader() != nil {
			return nil // Walk reads the children
		}
		_, err = io.Copy(io.Discard, part.Body)
		return err
	})
	return html, err
}

// TestPSTThroughIMAP serves Outlook's support.pst: every message's BODY[]
// is valid MIME with RFC822.SIZE equal to its length, HTML bodies are there,
// UIDs survive a restart, and a PST folder copied into Dovecot verifies.
func TestPSTThroughIMAP(t *testing.T) {
	p := pstPath(t, "support.pst")
	re := newRemoteEnv(t, nil, Source{Name: "Outlook", Path: p, Format: "pst"})
	c := re.client(nil)
	list, err := c.List("", "Local/*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	total, html := 0, 0
	var withMail []string
	for _, l := range list {
		if len(l.Attrs) > 0 && strings.EqualFold(string(l.Attrs[0]), `\Noselect`) {
			continue
		}
		msgs := fetchAll(t, c, l.Mailbox)
		if len(msgs) > 0 {
			withMail = append(withMail, l.Mailbox)
		}
		for _, m := range msgs {
			if int64(len(m.Body)) != m.Size {
				t.Errorf("%s UID %d: RFC822.SIZE %d, BODY[] %d bytes", l.Mailbox, m.UID, m.Size, len(m.Body))
			}
			h, err := walkMIME(m.Body)
			if err != nil {
				t.Errorf("%s UID %d: not valid MIME: %v", l.Mailbox, m.UID, err)
			}
			if h {
				html++
			}
			total++
		}
	}
	if total != 17 || html < 10 {
		t.Fatalf("support.pst: %d messages (%d with HTML); want 17 (16 with HTML)", total, html)
	}
	before := fetchAll(t, c, withMail[0])
	c.Close()
	re.restart()
	c = re.client(nil)
	after := fetchAll(t, c, withMail[0])
	if len(before) != len(after) || before[0].UID != after[0].UID || !bytes.Equal(before[0].Body, after[0].Body) {
		t.Errorf("UIDs or bytes changed across a restart")
	}
	// Drag a PST folder to the server, then prove it arrived.
	if _, err := c.Select(withMail[0], nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("FromOutlook", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(imap.SeqSet{{Start: 1, Stop: 0}}, "FromOutlook").Wait(); err != nil {
		t.Fatal(err)
	}
	srv := re.dc.Messages(t, re.user, "FromOutlook")
	if len(srv) != len(after) {
		t.Fatalf("server has %d of %d messages", len(srv), len(after))
	}
	rep, err := re.acct.Verify(context.Background(), MigrateOptions{Folders: []string{withMail[0]}, Mapping: map[string]string{withMail[0]: "FromOutlook"}})
	if err != nil || !rep.OK {
		t.Errorf("verify: %v %+v", err, rep)
	}
	_ = store.SrcCache
}
