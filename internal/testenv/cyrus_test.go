package testenv

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestCyrus(t *testing.T) {
	t.Parallel()
	c := StartCyrus(t, CyrusOptions{
		Users: []CyrusUser{
			{Name: "alice", Password: "alice pw"},
			{Name: "bob", Password: "bob-pw", QuotaBytes: 20 * 1024, QuotaMessages: 3},
		},
		Folders:    []string{"Sent", "Drafts", "Trash", "Projects"},
		SpecialUse: true,
	})

	t.Run("Capability", func(t *testing.T) {
		r := DialRaw(t, c.IMAPAddr())
		if !strings.HasPrefix(r.Greeting, "* OK [CAPABILITY IMAP4rev1 ") || !strings.Contains(r.Greeting, " Cyrus IMAP 3.6") {
			t.Errorf("greeting %q", r.Greeting)
		}
		r.Login("alice", "alice pw")
		caps := capsOf(t, r.OK("CAPABILITY"))
		for _, want := range []string{"IMAP4rev1", "UIDPLUS", "CHILDREN", "NAMESPACE", "QUOTA", "IDLE", "MOVE", "SPECIAL-USE", "LIST-EXTENDED", "ID", "UNSELECT"} {
			if !slices.Contains(caps, want) {
				t.Errorf("CAPABILITY %v lacks %s", caps, want)
			}
		}
		if u := r.OK("NAMESPACE"); !slices.Equal(u, []string{`* NAMESPACE (("INBOX." ".")) (("user." ".")) (("" "."))`}) {
			t.Errorf("NAMESPACE answered %q", u)
		}
	})

	t.Run("List", func(t *testing.T) {
		cl := c.Client(t, "alice")
		ns, err := cl.Namespace().Wait()
		if err != nil {
			t.Fatal(err)
		}
		if len(ns.Personal) != 1 || ns.Personal[0] != c.PersonalNamespace() {
			t.Errorf("NAMESPACE personal %+v, want %+v", ns.Personal, c.PersonalNamespace())
		}
		got := listNames(t, cl, nil)
		want := map[string]imap.MailboxAttr{
			"INBOX": "", "INBOX.Drafts": imap.MailboxAttrDrafts, "INBOX.Sent": imap.MailboxAttrSent,
			"INBOX.Trash": imap.MailboxAttrTrash, "INBOX.Projects": "",
		}
		if names, wantNames := slices.Sorted(mapsKeys(got)), slices.Sorted(mapsKeys(want)); !slices.Equal(names, wantNames) {
			t.Fatalf("LIST names %v, want %v", names, wantNames)
		}
		for name, attr := range want {
			l := got[name]
			if l.Delim != '.' {
				t.Errorf("%s: delimiter %q, want '.'", name, l.Delim)
			}
			if attr != "" && !slices.Contains(l.Attrs, attr) {
				t.Errorf("%s attrs %v, want %s", name, l.Attrs, attr)
			}
		}
		for _, bad := range []string{"Top", "INBOX/Sub", "INBOX.a/b"} {
			err := cl.Create(bad, nil).Wait()
			var imapErr *imap.Error
			if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeNo {
				t.Errorf("CREATE %q: %v, want NO", bad, err)
			}
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		testRoundTrip(t, c, "alice", "INBOX", "INBOX.Sent")
	})

	t.Run("Quota", func(t *testing.T) {
		r := DialRaw(t, c.IMAPAddr())
		r.Login("alice", "alice pw")
		// autocreate_quota: 0 and no SETQUOTA: a quota root without limits.
		if u := r.OK("GETQUOTAROOT INBOX"); !slices.Equal(u, []string{`* QUOTAROOT INBOX INBOX`, `* QUOTA INBOX ()`}) {
			t.Errorf("alice GETQUOTAROOT INBOX: %q", u)
		}
		cl := c.Client(t, "bob")
		roots, err := cl.GetQuotaRoot("INBOX.Trash").Wait()
		if err != nil {
			t.Fatal(err)
		}
		if len(roots) != 1 || roots[0].Root != "INBOX" ||
			roots[0].Resources[imap.QuotaResourceStorage] != (imapclient.QuotaResourceData{Usage: 0, Limit: 20}) ||
			roots[0].Resources[imap.QuotaResourceMessage] != (imapclient.QuotaResourceData{Usage: 0, Limit: 3}) {
			t.Errorf("bob GETQUOTAROOT INBOX.Trash: %+v", roots)
		}
		_, err = appendMsg(cl, "INBOX", testMsg("too big for bob", 30000), nil, time.Time{})
		assertCyrusOverQuota(t, err, "30 kB append")
		for i := range 3 {
			c.Append(t, "bob", "INBOX.Trash", testMsg("bob "+string(rune('a'+i)), 0), nil, time.Time{})
		}
		_, err = appendMsg(cl, "INBOX", testMsg("bob 4", 0), nil, time.Time{})
		assertCyrusOverQuota(t, err, "fourth message")
		if n := len(c.Messages(t, "bob", "INBOX.Trash")); n != 3 {
			t.Errorf("bob's INBOX.Trash has %d messages, want 3", n)
		}
	})

	t.Run("Move", func(t *testing.T) {
		cl := c.Client(t, "alice")
		uid := c.Append(t, "alice", "INBOX.Projects", testMsg("to move", 0), nil, time.Time{})
		if _, err := cl.Select("INBOX.Projects", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		data, err := cl.Move(imap.UIDSetNum(uid), "INBOX.Trash").Wait()
		if err != nil {
			t.Fatal(err)
		}
		if data.DestUIDs.String() == "" || data.UIDValidity == 0 {
			t.Errorf("MOVE gave no COPYUID: %+v", data)
		}
		if n := len(c.Messages(t, "alice", "INBOX.Projects")); n != 0 {
			t.Errorf("INBOX.Projects still has %d messages after MOVE", n)
		}
	})

	t.Run("Quirks", func(t *testing.T) {
		r := DialRaw(t, c.IMAPAddr())
		r.Login("alice", "alice pw")
		// Bare LF is refused (Dovecot and Courier accept it).
		if _, st := r.CmdLit("APPEND INBOX", []byte("Subject: lf\n\nbare LF\n")); st != "NO Message contains bare newlines" {
			t.Errorf("bare-LF APPEND answered %q", st)
		}
		// A top-level name outside INBOX. is refused for lack of rights.
		if _, st := r.Cmd(`CREATE "Top"`); st != "NO Permission denied" {
			t.Errorf("CREATE Top answered %q", st)
		}
		// DELETE refuses a folder with children.
		r.OK(`CREATE "INBOX.p.c"`)
		if _, st := r.Cmd(`DELETE "INBOX.p"`); st != "NO [HASCHILDREN] Mailbox has inferior hierarchical names" {
			t.Errorf("DELETE INBOX.p answered %q", st)
		}
		// Without special-use folders, LIST (SPECIAL-USE) is empty and
		// XLIST still marks INBOX.
		u := r.OK(`XLIST "" "INBOX"`)
		if !slices.Equal(u, []string{`* XLIST (\HasChildren \Inbox) "." INBOX`}) {
			t.Errorf("XLIST INBOX: %q", u)
		}
		// UID FETCH n:* beyond the last UID returns the last message.
		uid := c.Append(t, "alice", "INBOX.p.c", testMsg("last", 0), nil, time.Time{})
		r.OK(`EXAMINE "INBOX.p.c"`)
		if u := r.OK("UID FETCH %d:* (UID)", uid+10); !slices.Equal(u, []string{fmt.Sprintf("* 1 FETCH (UID %d)", uid)}) {
			t.Errorf("UID FETCH %d:* answered %q", uid+10, u)
		}
	})

	t.Run("Idle", func(t *testing.T) {
		testIdlePush(t, c, "alice", "INBOX")
	})

	t.Run("AddUser", func(t *testing.T) {
		c.AddUser(t, CyrusUser{Name: "carol", Password: "carol-pw"})
		msg := testMsg("for carol", 0)
		c.Append(t, "carol", "INBOX.Sent", msg, []imap.Flag{imap.FlagSeen}, time.Time{})
		got := c.Messages(t, "carol", "INBOX.Sent")
		if len(got) != 1 || string(got[0].Body) != string(msg) {
			t.Errorf("carol's INBOX.Sent: %+v", got)
		}
	})

	t.Run("StopRestart", func(t *testing.T) {
		testStopRestart(t, c, "alice", "INBOX")
	})
}

// assertCyrusOverQuota: Cyrus 3.6 refuses with a plain NO "Over quota",
// without RFC 5530's OVERQUOTA code.
func assertCyrusOverQuota(t *testing.T, err error, what string) {
	t.Helper()
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) {
		t.Fatalf("%s: got %v, want NO Over quota", what, err)
	}
	if imapErr.Type != imap.StatusResponseTypeNo || imapErr.Code != "" || imapErr.Text != "Over quota" {
		t.Errorf("%s: got %s [%s] %q, want NO Over quota", what, imapErr.Type, imapErr.Code, imapErr.Text)
	}
}

// TestCyrusBadLogin has its own instance: Cyrus delays a failed LOGIN by
// a few seconds.
func TestCyrusBadLogin(t *testing.T) {
	t.Parallel()
	c := StartCyrus(t, CyrusOptions{})
	r := DialRaw(t, c.IMAPAddr())
	if _, st := r.Cmd("LOGIN alice wrong"); !strings.HasPrefix(st, "NO") {
		t.Errorf("LOGIN with a wrong password: %q, want NO", st)
	}
}
