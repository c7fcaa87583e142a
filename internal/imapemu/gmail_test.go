package imapemu

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/testenv"
)

func TestGmailList(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, Options{})
	r := testenv.DialRaw(t, s.IMAPAddr())
	if !strings.HasPrefix(r.Greeting, "* OK Gimap ready") {
		t.Errorf("greeting %q", r.Greeting)
	}
	r.Login("alice", "alice-pw")
	caps := strings.Fields(strings.TrimPrefix(r.OK("CAPABILITY")[0], "* CAPABILITY "))
	for _, want := range []string{"IMAP4rev1", "UIDPLUS", "MOVE", "SPECIAL-USE", "QUOTA", "IDLE", "NAMESPACE", "ID", "APPENDLIMIT=35651584"} {
		if !slices.Contains(caps, want) {
			t.Errorf("CAPABILITY %v lacks %s", caps, want)
		}
	}
	if u := r.OK("NAMESPACE"); !slices.Equal(u, []string{`* NAMESPACE (("" "/")) NIL NIL`}) {
		t.Errorf("NAMESPACE %q", u)
	}
	c := s.Client(t, "alice")
	got := listing(t, c)
	want := map[string][]string{
		"INBOX":             {`\HasNoChildren`},
		"[Gmail]":           {`\HasChildren`, `\Noselect`},
		"[Gmail]/All Mail":  {`\All`, `\HasNoChildren`},
		"[Gmail]/Drafts":    {`\Drafts`, `\HasNoChildren`},
		"[Gmail]/Important": {`\HasNoChildren`, `\Important`},
		"[Gmail]/Sent Mail": {`\HasNoChildren`, `\Sent`},
		"[Gmail]/Spam":      {`\HasNoChildren`, `\Junk`},
		"[Gmail]/Starred":   {`\Flagged`, `\HasNoChildren`},
		"[Gmail]/Trash":     {`\HasNoChildren`, `\Trash`},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("LIST:\n got %v\nwant %v", got, want)
	}
	// Labels are folders, "/" nests them; system folders stay.
	if err := c.Create("Work/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	got = listing(t, c)
	if !slices.Equal(got["Work"], []string{`\HasChildren`}) || !slices.Equal(got["Work/2024"], []string{`\HasNoChildren`}) {
		t.Errorf("labels listed as %v / %v", got["Work"], got["Work/2024"])
	}
	for _, name := range []string{"[Gmail]/Sent Mail", "INBOX"} {
		if err := c.Delete(name).Wait(); err == nil {
			t.Errorf("DELETE %s succeeded", name)
		}
	}
	if err := c.Create("[Gmail]/Mine", nil).Wait(); err == nil {
		t.Error("CREATE [Gmail]/Mine succeeded")
	}
	if _, err := c.Select("[Gmail]", nil).Wait(); err == nil {
		t.Error("SELECT [Gmail] (\\Noselect) succeeded")
	}
}

// One message, several folders; All Mail has everything but Trash and
// Spam; storage counts each message once.
func TestGmailLabels(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, Options{})
	c := s.Client(t, "alice")
	if err := c.Create("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	m := msg("one", 2000)
	inboxUID := s.Append(t, "alice", "INBOX", m, nil, time.Time{})
	selectBox(t, c, "INBOX")
	cp, err := c.Copy(imap.UIDSetNum(inboxUID), "Work").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Folders(t, "alice", "one@example.org"); !slices.Equal(got, []string{"INBOX", "Work", "[Gmail]/All Mail"}) {
		t.Errorf("after COPY to Work the message is in %v", got)
	}
	work := s.Messages(t, "alice", "Work")
	if len(work) != 1 || !bytes.Equal(work[0].Body, m) {
		t.Fatalf("Work: %+v", work)
	}
	if dest, _ := cp.DestUIDs.Nums(); !slices.Equal(dest, []imap.UID{work[0].UID}) {
		t.Errorf("COPYUID dest %v, Work has UID %d", cp.DestUIDs, work[0].UID)
	}
	if u := s.Usage(t, "alice"); u.Messages != 1 || u.StorageBytes != int64(len(m)) {
		t.Errorf("usage %+v, want one message of %d bytes", u, len(m))
	}
	// A flag is the message's: \Seen in INBOX shows in All Mail and Work.
	if err := c.Store(imap.UIDSetNum(inboxUID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	for _, box := range []string{"Work", "[Gmail]/All Mail"} {
		if got := s.Messages(t, "alice", box); len(got) != 1 || !slices.Equal(got[0].Flags, []imap.Flag{imap.FlagSeen}) {
			t.Errorf("%s after \\Seen in INBOX: %+v", box, got)
		}
	}
	// \Flagged puts it in Starred.
	if err := c.Store(imap.UIDSetNum(inboxUID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.Folders(t, "alice", "one@example.org"); !slices.Equal(got, []string{"INBOX", "Work", "[Gmail]/All Mail", "[Gmail]/Starred"}) {
		t.Errorf("after \\Flagged the message is in %v", got)
	}
	// An APPEND to Starred is flagged.
	s.Append(t, "alice", "[Gmail]/Starred", msg("starred", 0), nil, time.Time{})
	if got := s.Messages(t, "alice", "[Gmail]/All Mail"); len(got) != 2 || !slices.Contains(got[1].Flags, imap.FlagFlagged) {
		t.Errorf("All Mail after APPEND to Starred: %+v", got)
	}
	// An APPEND to All Mail has no label.
	s.Append(t, "alice", "[Gmail]/All Mail", msg("archived", 0), nil, time.Time{})
	if got := s.Folders(t, "alice", "archived@example.org"); !slices.Equal(got, []string{"[Gmail]/All Mail"}) {
		t.Errorf("appended to All Mail, the message is in %v", got)
	}
}

// APPEND of a Message-ID the account already has attaches a label.
func TestGmailDedupByMessageID(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, Options{})
	m := msg("dup", 1000)
	inbox := s.Append(t, "alice", "INBOX", m, []imap.Flag{imap.FlagSeen}, time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	// The same Message-ID, other bytes (a re-encoded copy).
	other := bytes.Replace(m, []byte("Body of dup."), []byte("Body of dup, re-encoded."), 1)
	sent := s.Append(t, "alice", "[Gmail]/Sent Mail", other, []imap.Flag{imap.FlagAnswered}, time.Time{})
	if u := s.Usage(t, "alice"); u.Messages != 1 || u.StorageBytes != int64(len(m)) || u.UploadedToday != int64(len(m)+len(other)) {
		t.Errorf("usage %+v: want 1 message of %d bytes, %d bytes uploaded", u, len(m), len(m)+len(other))
	}
	got := s.Messages(t, "alice", "[Gmail]/Sent Mail")
	if len(got) != 1 || got[0].UID != sent || !bytes.Equal(got[0].Body, m) {
		t.Fatalf("Sent Mail: %+v; want the first copy with APPENDUID %d", got, sent)
	}
	if !slices.Equal(got[0].Flags, []imap.Flag{imap.FlagAnswered, imap.FlagSeen}) {
		t.Errorf("flags %v, want the union \\Answered \\Seen", got[0].Flags)
	}
	// Again into the same folder: the same UID, nothing new.
	if again := s.Append(t, "alice", "[Gmail]/Sent Mail", m, nil, time.Time{}); again != sent {
		t.Errorf("second APPEND to Sent Mail: UID %d, want %d", again, sent)
	}
	if again := s.Append(t, "alice", "INBOX", m, nil, time.Time{}); again != inbox {
		t.Errorf("APPEND to INBOX again: UID %d, want %d", again, inbox)
	}
	if got := s.Folders(t, "alice", "dup@example.org"); !slices.Equal(got, []string{"INBOX", "[Gmail]/All Mail", "[Gmail]/Sent Mail"}) {
		t.Errorf("the message is in %v", got)
	}
	// A message without Message-ID is never merged.
	noID := []byte("Subject: no id\r\n\r\nx\r\n")
	a := s.Append(t, "alice", "INBOX", noID, nil, time.Time{})
	b := s.Append(t, "alice", "INBOX", noID, nil, time.Time{})
	if a == b || s.Usage(t, "alice").Messages != 3 {
		t.Errorf("messages without Message-ID merged: UIDs %d %d, usage %+v", a, b, s.Usage(t, "alice"))
	}
}

// EXPUNGE and MOVE follow Gmail's rules per folder.
func TestGmailDeleteAndMove(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, Options{})
	c := s.Client(t, "alice")
	for _, l := range []string{"Work", "Home"} {
		if err := c.Create(l, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	where := func(id string) []string { return s.Folders(t, "alice", id+"@example.org") }
	s.Append(t, "alice", "INBOX", msg("a", 0), nil, time.Time{})
	s.Append(t, "alice", "Work", msg("a", 0), nil, time.Time{}) // dedup: label Work
	s.Append(t, "alice", "Home", msg("a", 0), nil, time.Time{})
	if got := where("a"); !slices.Equal(got, []string{"Home", "INBOX", "Work", "[Gmail]/All Mail"}) {
		t.Fatalf("a is in %v", got)
	}
	uidIn := func(box, id string) imap.UID {
		for _, m := range s.Messages(t, "alice", box) {
			if bytes.Contains(m.Body, []byte("<"+id+"@")) {
				return m.UID
			}
		}
		t.Fatalf("%s not in %s", id, box)
		return 0
	}
	// Expunge from a label removes only that label.
	selectBox(t, c, "Work")
	storeExpunge(t, c, uidIn("Work", "a"))
	if got := where("a"); !slices.Equal(got, []string{"Home", "INBOX", "[Gmail]/All Mail"}) {
		t.Errorf("after expunge from Work, a is in %v", got)
	}
	// From INBOX: archived.
	selectBox(t, c, "INBOX")
	storeExpunge(t, c, uidIn("INBOX", "a"))
	if got := where("a"); !slices.Equal(got, []string{"Home", "[Gmail]/All Mail"}) {
		t.Errorf("after expunge from INBOX, a is in %v", got)
	}
	// MOVE from a label to another replaces the label.
	selectBox(t, c, "Home")
	mv, err := c.Move(imap.UIDSetNum(uidIn("Home", "a")), "Work").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := where("a"); !slices.Equal(got, []string{"Work", "[Gmail]/All Mail"}) {
		t.Errorf("after MOVE Home→Work, a is in %v", got)
	}
	if mv.UIDValidity == 0 || mv.DestUIDs == nil || mv.DestUIDs.String() == "" {
		t.Errorf("MOVE gave no COPYUID: %+v", mv)
	}
	// Expunge from All Mail moves to Trash; from Trash it is gone.
	selectBox(t, c, "[Gmail]/All Mail")
	storeExpunge(t, c, uidIn("[Gmail]/All Mail", "a"))
	if got := where("a"); !slices.Equal(got, []string{"[Gmail]/Trash"}) {
		t.Errorf("after expunge from All Mail, a is in %v", got)
	}
	selectBox(t, c, "[Gmail]/Trash")
	storeExpunge(t, c, uidIn("[Gmail]/Trash", "a"))
	if got := where("a"); got != nil {
		t.Errorf("after expunge from Trash, a is in %v", got)
	}
	if u := s.Usage(t, "alice"); u.Messages != 0 || u.StorageBytes != 0 {
		t.Errorf("usage after deleting for good: %+v", u)
	}
	// MOVE to Trash takes every label; MOVE out of Trash brings it back.
	s.Append(t, "alice", "Work", msg("b", 0), nil, time.Time{})
	s.Append(t, "alice", "INBOX", msg("b", 0), nil, time.Time{})
	selectBox(t, c, "INBOX")
	if _, err := c.Move(imap.UIDSetNum(uidIn("INBOX", "b")), "[Gmail]/Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if got := where("b"); !slices.Equal(got, []string{"[Gmail]/Trash"}) {
		t.Errorf("after MOVE to Trash, b is in %v", got)
	}
	selectBox(t, c, "[Gmail]/Trash")
	if _, err := c.Move(imap.UIDSetNum(uidIn("[Gmail]/Trash", "b")), "INBOX").Wait(); err != nil {
		t.Fatal(err)
	}
	if got := where("b"); !slices.Equal(got, []string{"INBOX", "[Gmail]/All Mail"}) {
		t.Errorf("after MOVE out of Trash, b is in %v", got)
	}
	// Deleting a label keeps the messages in All Mail.
	s.Append(t, "alice", "Home", msg("c", 0), nil, time.Time{})
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("Home").Wait(); err != nil {
		t.Fatal(err)
	}
	if got := where("c"); !slices.Equal(got, []string{"[Gmail]/All Mail"}) {
		t.Errorf("after DELETE Home, c is in %v", got)
	}
}

// The session that expunges and every other one selected on the folder
// see EXPUNGE; one selected on All Mail sees nothing when only a label
// goes.
func TestGmailUpdatesAcrossFolders(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, Options{})
	s.Append(t, "alice", "INBOX", msg("x", 0), nil, time.Time{})
	s.Append(t, "alice", "INBOX", msg("y", 0), nil, time.Time{})
	watch := func(box string) (*imapclient.Client, chan uint32) {
		exp := make(chan uint32, 4)
		wc, err := imapclient.DialInsecure(s.IMAPAddr(), &imapclient.Options{
			UnilateralDataHandler: &imapclient.UnilateralDataHandler{Expunge: func(seq uint32) { exp <- seq }},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { wc.Close() })
		if err := wc.Login("alice", "alice-pw").Wait(); err != nil {
			t.Fatal(err)
		}
		selectBox(t, wc, box)
		return wc, exp
	}
	inboxWatch, inboxExp := watch("INBOX")
	allWatch, allExp := watch("[Gmail]/All Mail")
	c := s.Client(t, "alice")
	selectBox(t, c, "INBOX")
	storeExpunge(t, c, 1)
	if err := inboxWatch.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-inboxExp:
		if seq != 1 {
			t.Errorf("other INBOX session: EXPUNGE %d, want 1", seq)
		}
	default:
		t.Error("other INBOX session got no EXPUNGE")
	}
	if err := allWatch.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-allExp:
		t.Errorf("All Mail session got EXPUNGE %d for a message that only lost its INBOX label", seq)
	default:
	}
}

func TestGmailLimits(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s := StartGmail(t, Options{Now: clock.now, Limits: Limits{
		MaxMessageSize:    4000,
		StorageBytes:      10 * 1024,
		UploadBytesPerDay: 16000,
	}})
	c := s.Client(t, "alice")
	// Too large: BAD [TOOBIG], as Gmail answers.
	_, err := appendRaw(c, "INBOX", msg("big", 5000), nil)
	if e := imapErr(t, err); e.Type != imap.StatusResponseTypeBad || e.Code != imap.ResponseCodeTooBig || !strings.HasPrefix(e.Text, "Message too large.") {
		t.Errorf("5 kB APPEND with a 4000-byte limit: %+v", e)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has("APPENDLIMIT=4000") {
		t.Errorf("CAPABILITY %v lacks APPENDLIMIT=4000", caps)
	}
	// QUOTA: root "", STORAGE in KiB.
	for i := range 3 {
		if _, err := appendRaw(c, "INBOX", msg("fill"+string(rune('a'+i)), 3000), nil); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	roots, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	used := s.Usage(t, "alice").StorageBytes
	if len(roots) != 1 || roots[0].Root != "" || roots[0].Resources[imap.QuotaResourceStorage] != (imapclient.QuotaResourceData{Usage: (used + 1023) / 1024, Limit: 10}) {
		t.Errorf("GETQUOTAROOT INBOX: %+v (used %d bytes)", roots, used)
	}
	// Storage full: NO [OVERQUOTA].
	_, err = appendRaw(c, "INBOX", msg("overflow", 2000), nil)
	if e := imapErr(t, err); e.Code != imap.ResponseCodeOverQuota {
		t.Errorf("APPEND beyond the storage quota: %+v", e)
	}
	// A duplicate needs no storage, but still counts as an upload.
	if _, err := appendRaw(c, "[Gmail]/Sent Mail", msg("filla", 3000), nil); err != nil {
		t.Errorf("duplicate APPEND on a full account: %v", err)
	}
	// Daily upload limit: 3×3000 + 2000 + 3000 bytes uploaded so far (the
	// refused ones count too); the next fails until the day changes.
	if up := s.Usage(t, "alice").UploadedToday; up < 9000 {
		t.Fatalf("uploaded today %d", up)
	}
	_, err = appendRaw(c, "[Gmail]/Sent Mail", msg("fillb", 3000), nil)
	if e := imapErr(t, err); e.Code != imap.ResponseCodeOverQuota || e.Text != "Account exceeded command or bandwidth limits. (Failure)" {
		t.Errorf("APPEND beyond the daily upload limit: %+v", e)
	}
	clock.add(24 * time.Hour)
	if _, err := appendRaw(c, "[Gmail]/Sent Mail", msg("fillb", 3000), nil); err != nil {
		t.Errorf("APPEND on the next day: %v", err)
	}
}

func TestGmailThrottle(t *testing.T) {
	t.Parallel()
	clock := newClock()
	s := StartGmail(t, Options{Now: clock.now, Limits: Limits{CommandsPerWindow: 5, Window: time.Minute}})
	r := testenv.DialRaw(t, s.IMAPAddr())
	r.Login("alice", "alice-pw")
	for i := range 5 {
		if _, st := r.Cmd("NOOP"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("command %d: %q", i+1, st)
		}
	}
	clock.add(20 * time.Second)
	if _, st := r.Cmd("NOOP"); st != "NO [THROTTLED] Too many commands; try again in 40 seconds. (Failure)" {
		t.Errorf("sixth command in the window: %q", st)
	}
	clock.add(40 * time.Second)
	if _, st := r.Cmd("NOOP"); !strings.HasPrefix(st, "OK") {
		t.Errorf("first command of the next window: %q", st)
	}
}
