package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/legacytest"
	"github.com/popbridge/popbridge/internal/testenv"
)

// TestMigrateLegacyCLI: Becky!, Outlook Express, Windows Live Mail and
// Apple Mail stores, recognised by `format = "auto"`, go to a private
// Dovecot with `popbridge migrate`, and `popbridge verify` proves it.
func TestMigrateLegacyCLI(t *testing.T) {
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{})
	user := dc.Users[0]
	dir := t.TempDir()
	msg := func(i int) []byte {
		return []byte(fmt.Sprintf("From: Old %d <old%d@example.jp>\r\nSubject: legacy cli %d\r\nMessage-ID: <cli%d@example.jp>\r\nDate: Mon, 2 Jan 2006 15:04:05 +0900\r\n\r\nbody %d\r\n", i, i, i, i, i))
	}
	becky := filepath.Join(dir, "becky")
	if err := legacytest.WriteBecky(becky, []legacytest.BeckyMailbox{{Dir: "4a5b6c7d.mb", Name: "Home", Folders: []legacytest.BeckyFolder{
		{Dir: "!!!!Inbox", Msgs: []legacytest.BeckyMsg{{Raw: msg(1), Status: legacytest.BeckyRead}, {Raw: msg(2)}}},
		{Dir: "!!!!Outbox", Msgs: []legacytest.BeckyMsg{{Raw: msg(3), Status: legacytest.BeckyRead}}},
	}}}); err != nil {
		t.Fatal(err)
	}
	oe := filepath.Join(dir, "oe")
	in, _ := legacytest.DBXFile([]legacytest.DBXMsg{{Raw: msg(4), Flags: legacytest.DBXRead | legacytest.DBXAnswered}, {Raw: msg(5)}}, legacytest.DBXOptions{})
	writeBin(t, filepath.Join(oe, "Inbox.dbx"), in)
	wlm := filepath.Join(dir, "Windows Live Mail")
	if err := legacytest.WriteWLM(wlm, []legacytest.WLMFolder{{Dir: "Inbox", Msgs: [][]byte{msg(6)}}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	apple := filepath.Join(dir, "Mail")
	lfmsg := func(i int) []byte { return []byte(strings.ReplaceAll(string(msg(i)), "\r\n", "\n")) }
	if _, err := legacytest.WriteAppleMail(apple, 10, []legacytest.AppleMailbox{{Name: "Archive", Msgs: []legacytest.AppleMsg{{ID: 1, Raw: lfmsg(7), Flags: legacytest.EMLXRead}}}}, nil); err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, dir, freePort(t), map[string]string{"Becky": becky, "OE": oe, "WLM": wlm, "Apple": apple}, "")
	appendUpstream(t, cfgPath, fmt.Sprintf("[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = %q\npassword = %q\n", dc.IMAPPort, user.Name, user.Password))
	bin := buildBinary(t)
	if out, code := runBin(t, bin, "migrate", "-config", cfgPath); code != 0 {
		t.Fatalf("migrate (exit %d):\n%s", code, out)
	}
	if out, code := runBin(t, bin, "verify", "-config", cfgPath); code != 0 {
		t.Fatalf("verify (exit %d):\n%s", code, out)
	}
	total := 0
	seen := map[string]bool{}
	c := dc.Client(t, user.Name)
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		for _, m := range dc.Messages(t, user.Name, l.Mailbox) {
			total++
			seen[string(m.Body)] = true
			if strings.Contains(string(m.Body), "legacy cli 4") && !(hasIMAPFlag(m.Flags, imap.FlagSeen) && hasIMAPFlag(m.Flags, imap.FlagAnswered)) {
				t.Errorf("message 4 has flags %v", m.Flags)
			}
		}
	}
	if total != 7 {
		t.Errorf("%d messages on the server, want 7", total)
	}
	for i := 1; i <= 7; i++ {
		if !seen[string(msg(i))] {
			t.Errorf("message %d is not on the server byte for byte (%d messages there)", i, total)
		}
	}
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

func hasIMAPFlag(fl []imap.Flag, f imap.Flag) bool {
	for _, x := range fl {
		if x == f {
			return true
		}
	}
	return false
}

func writeBin(t *testing.T, path string, data []byte) {
	t.Helper()
	cfgWriteFile(t, path, string(data), 0o644)
}
