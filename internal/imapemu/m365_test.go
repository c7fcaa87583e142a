package imapemu

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/testenv"
)

func TestM365List(t *testing.T) {
	t.Parallel()
	s := StartM365(t, Options{})
	r := testenv.DialRaw(t, s.IMAPAddr())
	if r.Greeting != "* OK The Microsoft Exchange IMAP4 service is ready. [VABFAFMAVABFAE0AVQBMAEEAVABPAFIA]" {
		t.Errorf("greeting %q", r.Greeting)
	}
	want := "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"
	if u := r.OK("CAPABILITY"); !slices.Equal(u, []string{want}) {
		t.Errorf("CAPABILITY before login %q", u)
	}
	r.Login("alice", "alice-pw")
	want = "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"
	if u := r.OK("CAPABILITY"); !slices.Equal(u, []string{want}) {
		t.Errorf("CAPABILITY after login %q", u)
	}
	// No QUOTA: Exchange answers it as an unknown command.
	if _, st := r.Cmd("GETQUOTAROOT INBOX"); !strings.HasPrefix(st, "BAD") {
		t.Errorf("GETQUOTAROOT: %q, want BAD", st)
	}
	got := listing(t, s.Client(t, "alice"))
	wantList := map[string][]string{
		"INBOX":                {`\HasNoChildren`},
		"Archive":              {`\Archive`, `\HasNoChildren`},
		"Calendar":             {`\HasNoChildren`},
		"Contacts":             {`\HasNoChildren`},
		"Conversation History": {`\HasNoChildren`},
		"Deleted Items":        {`\HasNoChildren`, `\Trash`},
		"Drafts":               {`\Drafts`, `\HasNoChildren`},
		"Journal":              {`\HasNoChildren`},
		"Junk Email":           {`\HasNoChildren`, `\Junk`},
		"Notes":                {`\HasNoChildren`},
		"Outbox":               {`\HasNoChildren`},
		"Sent Items":           {`\HasNoChildren`, `\Sent`},
		"Tasks":                {`\HasNoChildren`},
	}
	if !maps.EqualFunc(got, wantList, slices.Equal) {
		t.Errorf("LIST:\n got %v\nwant %v", got, wantList)
	}
}

// Folders hold independent copies.
func TestM365Copies(t *testing.T) {
	t.Parallel()
	s := StartM365(t, Options{})
	c := s.Client(t, "alice")
	m := msg("copy", 500)
	uid := s.Append(t, "alice", "INBOX", m, nil, time.Time{})
	// Same Message-ID again: a second message (no dedup on Exchange).
	s.Append(t, "alice", "INBOX", m, nil, time.Time{})
	if n := s.Usage(t, "alice").Messages; n != 2 {
		t.Errorf("%d messages after appending the same message twice, want 2", n)
	}
	selectBox(t, c, "INBOX")
	cp, err := c.Copy(imap.UIDSetNum(uid), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if cp.UIDValidity == 0 {
		t.Errorf("COPY gave no COPYUID: %+v", cp)
	}
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	arch := s.Messages(t, "alice", "Archive")
	if len(arch) != 1 || !bytes.Equal(arch[0].Body, m) || len(arch[0].Flags) != 0 {
		t.Errorf("Archive copy %+v: want the bytes, without the \\Seen set in INBOX afterwards", arch)
	}
	// MOVE to Deleted Items; expunge there deletes.
	if _, err := c.Move(imap.UIDSetNum(uid), "Deleted Items").Wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages(t, "alice", "INBOX")); n != 1 {
		t.Errorf("INBOX has %d messages after MOVE, want 1", n)
	}
	del := s.Messages(t, "alice", "Deleted Items")
	if len(del) != 1 {
		t.Fatalf("Deleted Items: %+v", del)
	}
	selectBox(t, c, "Deleted Items")
	storeExpunge(t, c, del[0].UID)
	if n := s.Usage(t, "alice").Messages; n != 2 {
		t.Errorf("%d messages left, want 2 (INBOX and Archive)", n)
	}
	if err := c.Delete("Sent Items").Wait(); err == nil {
		t.Error("DELETE Sent Items succeeded")
	}
}

func TestM365SizeLimit(t *testing.T) {
	t.Parallel()
	s := StartM365(t, Options{Limits: Limits{MaxMessageSize: 10000}})
	c := s.Client(t, "alice")
	big := msg("big", 12000)
	_, err := appendRaw(c, "Sent Items", big, nil)
	want := fmt.Sprintf("Message size %d bytes exceeds the maximum message size of 10000 bytes.", len(big))
	if e := imapErr(t, err); e.Type != imap.StatusResponseTypeNo || e.Code != imap.ResponseCodeTooBig || e.Text != want {
		t.Errorf("oversized APPEND: %s [%s] %q, want NO [TOOBIG] %q", e.Type, e.Code, e.Text, want)
	}
	// The connection stays usable and the next message goes in.
	if _, err := appendRaw(c, "Sent Items", msg("small", 100), nil); err != nil {
		t.Errorf("APPEND after the refused one: %v", err)
	}
	if d := StartM365(t, Options{}).Limits(); d.MaxMessageSize != 35<<20 {
		t.Errorf("default limit %d, want 35 MB", d.MaxMessageSize)
	}
}

func TestM365Throttle(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s := StartM365(t, Options{Now: clock.now, Limits: Limits{CommandsPerWindow: 3, Window: 10 * time.Second}})
	r := testenv.DialRaw(t, s.IMAPAddr())
	r.Login("alice", "alice-pw") // LOGIN is not counted
	for i := range 3 {
		if _, st := r.Cmd("NOOP"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("command %d: %q", i+1, st)
		}
	}
	clock.add(2500 * time.Millisecond)
	if _, st := r.Cmd("NOOP"); st != "NO Request is throttled. Suggested Backoff Time: 7500 milliseconds" {
		t.Errorf("fourth command: %q", st)
	}
	// go-imap's client sees the NO as an error of the command.
	c := s.Client(t, "alice")
	var e *imap.Error
	if err := c.Noop().Wait(); !errors.As(err, &e) || !strings.HasPrefix(e.Text, "Request is throttled.") {
		t.Errorf("NOOP through go-imap: %v", err)
	}
	// A throttled APPEND is refused before its literal (as Exchange does);
	// the raw client sees the NO instead of "+".
	if _, st := r.CmdLit("APPEND INBOX", msg("throttled", 0)); !strings.HasPrefix(st, "NO Request is throttled.") {
		t.Errorf("throttled APPEND: %q", st)
	}
	clock.add(7500 * time.Millisecond)
	if _, st := r.CmdLit("APPEND INBOX", msg("later", 0)); !strings.HasPrefix(st, "OK [APPENDUID") {
		t.Errorf("APPEND in the next window: %q", st)
	}
}
