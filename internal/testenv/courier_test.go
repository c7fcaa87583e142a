package testenv

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestCourier(t *testing.T) {
	t.Parallel()
	c := StartCourier(t, CourierOptions{
		Users: []CourierUser{
			{Name: "alice", Password: "alice pw"},
			{Name: "bob", Password: "bob-pw", QuotaBytes: 20000, QuotaMessages: 3},
		},
		Folders: []string{"Sent", "Drafts", "Trash"},
	})

	t.Run("Capability", func(t *testing.T) {
		r := DialRaw(t, c.IMAPAddr())
		if !strings.HasPrefix(r.Greeting, "* OK [CAPABILITY IMAP4rev1 ") || !strings.Contains(r.Greeting, courierBanner) {
			t.Errorf("greeting %q", r.Greeting)
		}
		r.Login("alice", "alice pw")
		caps := capsOf(t, r.OK("CAPABILITY"))
		for _, want := range []string{"IMAP4rev1", "UIDPLUS", "CHILDREN", "NAMESPACE", "QUOTA", "IDLE"} {
			if !slices.Contains(caps, want) {
				t.Errorf("CAPABILITY %v lacks %s", caps, want)
			}
		}
		for _, not := range []string{"MOVE", "SPECIAL-USE", "LIST-EXTENDED", "STARTTLS"} {
			if slices.Contains(caps, not) {
				t.Errorf("CAPABILITY %v has %s; Debian's Courier does not", caps, not)
			}
		}
		if u := r.OK("NAMESPACE"); !slices.Equal(u, []string{`* NAMESPACE (("INBOX." ".")) NIL (("#shared." ".")("shared." "."))`}) {
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
		want := []string{"INBOX", "INBOX.Drafts", "INBOX.Sent", "INBOX.Trash"}
		if names := slices.Sorted(mapsKeys(got)); !slices.Equal(names, want) {
			t.Fatalf("LIST names %v, want %v", names, want)
		}
		for name, l := range got {
			if l.Delim != '.' {
				t.Errorf("%s: delimiter %q, want '.'", name, l.Delim)
			}
			for _, a := range l.Attrs {
				switch a {
				case imap.MailboxAttrSent, imap.MailboxAttrTrash, imap.MailboxAttrDrafts, imap.MailboxAttrJunk, imap.MailboxAttrArchive, imap.MailboxAttrAll:
					t.Errorf("%s has special-use attribute %s; Courier has none", name, a)
				}
			}
		}
		if !slices.Contains(got["INBOX"].Attrs, imap.MailboxAttrHasChildren) {
			t.Errorf("INBOX attrs %v, want \\HasChildren", got["INBOX"].Attrs)
		}
		lsub, err := cl.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var subscribed []string
		for _, l := range lsub {
			subscribed = append(subscribed, l.Mailbox)
		}
		slices.Sort(subscribed)
		// Courier always reports INBOX as subscribed.
		if !slices.Equal(subscribed, want) {
			t.Errorf("subscribed %v, want %v", subscribed, want)
		}
		// Outside the personal namespace and with the wrong delimiter,
		// Courier refuses to create.
		for _, bad := range []string{"Top", "INBOX/Sub", "Sent/Sub"} {
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
		// Without a maildirsize file Courier still advertises QUOTA and
		// answers with a QUOTA response that has no resource list, which
		// RFC 2087's grammar does not allow.
		r := DialRaw(t, c.IMAPAddr())
		r.Login("alice", "alice pw")
		if u := r.OK("GETQUOTAROOT INBOX"); !slices.Equal(u, []string{`* QUOTAROOT "INBOX" "ROOT"`, `* QUOTA "ROOT"`}) {
			t.Errorf("alice GETQUOTAROOT INBOX: %q", u)
		}
		// go-imap's client cannot parse that answer and closes the
		// connection: the failure issue J describes.
		strict := c.Client(t, "alice")
		if _, err := strict.GetQuotaRoot("INBOX").Wait(); err == nil {
			t.Error("go-imap parsed Courier's bare QUOTA response; the bridge's workaround may be unnecessary")
		} else if err := strict.Noop().Wait(); err == nil {
			t.Error("go-imap kept the connection after failing to parse QUOTA")
		}
		rb := DialRaw(t, c.IMAPAddr())
		rb.Login("bob", "bob-pw")
		// 20000 bytes are reported as 20 KiB (rounded), usage 0.
		if u := rb.OK("GETQUOTAROOT INBOX"); !slices.Equal(u, []string{`* QUOTAROOT "INBOX" "ROOT"`, `* QUOTA "ROOT" (STORAGE 0 20 MESSAGE 0 3)`}) {
			t.Errorf("bob GETQUOTAROOT INBOX: %q", u)
		}
		if u := rb.OK("GETQUOTAROOT INBOX.Trash"); len(u) != 2 || u[0] != `* QUOTAROOT "INBOX.Trash" "ROOT"` {
			t.Errorf("bob GETQUOTAROOT INBOX.Trash: %q", u)
		}
		cl := c.Client(t, "bob")
		_, err := appendMsg(cl, "INBOX", testMsg("too big for bob", 30000), nil, time.Time{})
		assertCourierOverQuota(t, err, "30 kB append")
		for i := range 3 {
			c.Append(t, "bob", "INBOX", testMsg("bob "+string(rune('a'+i)), 0), nil, time.Time{})
		}
		_, err = appendMsg(cl, "INBOX", testMsg("bob 4", 0), nil, time.Time{})
		assertCourierOverQuota(t, err, "fourth message")
		if n := len(c.Messages(t, "bob", "INBOX")); n != 3 {
			t.Errorf("bob's INBOX has %d messages, want 3", n)
		}
	})

	t.Run("NoMove", func(t *testing.T) {
		r := DialRaw(t, c.IMAPAddr())
		r.Login("alice", "alice pw")
		r.OK("SELECT INBOX")
		if _, st := r.Cmd("UID MOVE 1 INBOX.Trash"); strings.HasPrefix(st, "OK") {
			t.Errorf("UID MOVE answered %q; Courier has no MOVE", st)
		}
	})

	t.Run("Quirks", func(t *testing.T) {
		// What Debian's Courier really does where it differs from RFC 3501
		// or from Dovecot; a bridge must cope with each.
		r := DialRaw(t, c.IMAPAddr())
		r.Login("alice", "alice pw")
		r.OK("CREATE INBOX.Quirks")
		// A bare-LF message is accepted and served with CRLF.
		r.CmdLit("APPEND INBOX.Quirks", []byte("Subject: lf\n\nbare LF\n"))
		u := r.OK("EXAMINE INBOX.Quirks")
		if !slices.Contains(u, "* 1 EXISTS") {
			t.Fatalf("EXAMINE after APPEND: %q", u)
		}
		if u := r.OK("UID FETCH 1:* (UID BODY.PEEK[])"); len(u) != 1 || !strings.HasSuffix(u[0], "{24}Subject: lf\r\n\r\nbare LF\r\n)") {
			t.Errorf("bare-LF message fetched as %q, want it with CRLF", u)
		}
		// UID FETCH n:* with n above the highest UID returns nothing
		// (RFC 3501 6.4.8 wants the message with the highest UID).
		if u := r.OK("UID FETCH 100:* (UID)"); len(u) != 0 {
			t.Errorf("UID FETCH 100:* answered %q; Courier used to answer nothing", u)
		}
		// No UNSELECT, ID, XLIST or LIST-EXTENDED.
		for _, cmd := range []string{"UNSELECT", `ID NIL`, `XLIST "" "*"`, `LIST "" "*" RETURN (SPECIAL-USE)`} {
			if _, st := r.Cmd("%s", cmd); st != "NO Error in IMAP command received by server." {
				t.Errorf("%s answered %q", cmd, st)
			}
		}
		// LSUB shows INBOX as \Noselect; a parent created implicitly is
		// \Noselect, and DELETE refuses it.
		r.OK("CREATE INBOX.p.c")
		if u := r.OK(`LIST "" "INBOX.p"`); !slices.Equal(u, []string{`* LIST (\Noselect \HasChildren) "." "INBOX.p"`}) {
			t.Errorf("LIST INBOX.p: %q", u)
		}
		if _, st := r.Cmd(`DELETE "INBOX.p"`); !strings.HasPrefix(st, "NO ") {
			t.Errorf("DELETE of a \\Noselect parent: %q, want NO", st)
		}
		if u := r.OK(`LSUB "" "INBOX"`); !slices.Equal(u, []string{`* LSUB (\Noselect \HasChildren) "." "INBOX"`}) {
			t.Errorf("LSUB INBOX: %q", u)
		}
	})

	t.Run("Idle", func(t *testing.T) {
		testIdlePush(t, c, "alice", "INBOX")
	})

	t.Run("AddUser", func(t *testing.T) {
		c.AddUser(t, CourierUser{Name: "carol", Password: "carol-pw"})
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

// assertCourierOverQuota: Courier refuses with NO and an ALERT, not with
// RFC 5530's OVERQUOTA code.
func assertCourierOverQuota(t *testing.T, err error, what string) {
	t.Helper()
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) {
		t.Fatalf("%s: got %v, want NO [ALERT] You exceeded your mail quota.", what, err)
	}
	if imapErr.Type != imap.StatusResponseTypeNo || imapErr.Code != imap.ResponseCodeAlert || imapErr.Text != "You exceeded your mail quota." {
		t.Errorf("%s: got %s [%s] %q, want NO [ALERT] You exceeded your mail quota.", what, imapErr.Type, imapErr.Code, imapErr.Text)
	}
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestCourierBadLogin has its own instance: Courier answers a failed LOGIN
// only after a fixed delay of about 5 seconds.
func TestCourierBadLogin(t *testing.T) {
	t.Parallel()
	c := StartCourier(t, CourierOptions{})
	r := DialRaw(t, c.IMAPAddr())
	if _, st := r.Cmd("LOGIN alice wrong"); !strings.HasPrefix(st, "NO") {
		t.Errorf("LOGIN with a wrong password: %q, want NO", st)
	}
}

// With IMAP_ENHANCEDIDLE=1 Courier watches the Maildir through FAM
// (gamin) instead of polling.
func TestCourierEnhancedIdle(t *testing.T) {
	t.Parallel()
	c := StartCourier(t, CourierOptions{EnhancedIdle: true, IdlePoll: time.Minute})
	r := DialRaw(t, c.IMAPAddr())
	r.Login("alice", "alice-pw")
	r.OK("SELECT INBOX")
	r.Send("i1 IDLE")
	if l := r.ReadLine(); l != "+ entering ENHANCED idle mode" {
		t.Fatalf("IDLE answered %q", l)
	}
	c.Append(t, "alice", "INBOX", testMsg("enhanced", 0), nil, time.Time{})
	if l := r.ReadLine(); l != "* 1 EXISTS" {
		t.Errorf("during IDLE: %q, want * 1 EXISTS", l)
	}
	r.Send("DONE")
	if _, st := r.Responses("i1"); !strings.HasPrefix(st, "OK") {
		t.Errorf("IDLE ended with %q", st)
	}
}
