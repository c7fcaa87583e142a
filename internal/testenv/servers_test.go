package testenv

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// capsOf returns the capability atoms of a "* CAPABILITY ..." line.
func capsOf(t testing.TB, lines []string) []string {
	t.Helper()
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("no CAPABILITY line in %q", lines)
	return nil
}

// idleWatcher is a logged-in client that reports every new message count
// the server announces.
func idleWatcher(t testing.TB, s Server, user, mailbox string) (*imapclient.Client, <-chan uint32) {
	t.Helper()
	counts := make(chan uint32, 16)
	c, err := imapclient.DialInsecure(s.IMAPAddr(), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					counts <- *data.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, s.Password(t, user)).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		t.Fatalf("select %s: %v", mailbox, err)
	}
	return c, counts
}

// testIdlePush checks that a client in IDLE hears of a message appended by
// another connection.
func testIdlePush(t *testing.T, s Server, user, mailbox string) {
	c, counts := idleWatcher(t, s, user, mailbox)
	before := len(s.Messages(t, user, mailbox))
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	s.Append(t, user, mailbox, testMsg(fmt.Sprintf("idle push %d", before), 0), nil, time.Time{})
	select {
	case n := <-counts:
		if n != uint32(before+1) {
			t.Errorf("IDLE announced %d EXISTS, want %d", n, before+1)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no EXISTS during IDLE within 15 s after an APPEND", s.Kind())
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE ended with %v", err)
	}
}

// testRoundTrip appends messages with flags and dates to each mailbox and
// reads them back byte for byte.
func testRoundTrip(t *testing.T, s Server, user string, mailboxes ...string) {
	zone := time.FixedZone("", 9*3600)
	for _, mbox := range mailboxes {
		want := []appended{
			{testMsg(mbox+" first", 0), nil, time.Date(2001, 2, 3, 4, 5, 6, 0, zone)},
			{testMsg(mbox+" second", 5000), []imap.Flag{imap.FlagSeen, imap.FlagFlagged, "$Label1"}, time.Date(2015, 6, 7, 8, 9, 10, 0, time.UTC)},
			{testMsg(mbox+" third", 0), []imap.Flag{imap.FlagAnswered, imap.FlagSeen}, time.Date(2024, 2, 29, 23, 59, 59, 0, zone)},
		}
		var uids []imap.UID
		for _, a := range want {
			uid := s.Append(t, user, mbox, a.body, a.flags, a.date)
			if len(uids) > 0 && uid <= uids[len(uids)-1] {
				t.Fatalf("%s: APPENDUID %d after %d", mbox, uid, uids[len(uids)-1])
			}
			uids = append(uids, uid)
		}
		got := s.Messages(t, user, mbox)
		if len(got) != len(want) {
			t.Fatalf("%s has %d messages, want %d", mbox, len(got), len(want))
		}
		for i, m := range got {
			if m.UID != uids[i] {
				t.Errorf("%s #%d: UID %d, APPENDUID said %d", mbox, i, m.UID, uids[i])
			}
			if !bytes.Equal(m.Body, want[i].body) {
				t.Errorf("%s #%d body differs:\n got %q\nwant %q", mbox, i, m.Body, want[i].body)
			}
			if wf := normFlags(want[i].flags); !slices.Equal(m.Flags, wf) {
				t.Errorf("%s #%d flags %v, want %v", mbox, i, m.Flags, wf)
			}
			if !m.InternalDate.Equal(want[i].date) {
				t.Errorf("%s #%d INTERNALDATE %v, want %v", mbox, i, m.InternalDate, want[i].date)
			}
		}
	}
}

// testStopRestart checks that a crash and restart keep port and mail.
func testStopRestart(t *testing.T, s Server, user, mailbox string) {
	before := s.Messages(t, user, mailbox)
	addr := s.IMAPAddr()
	s.Stop(t)
	s.Stop(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", addr)
	}
	s.Restart(t)
	if s.IMAPAddr() != addr {
		t.Errorf("address changed on restart: %s → %s", addr, s.IMAPAddr())
	}
	after := s.Messages(t, user, mailbox)
	if len(after) != len(before) {
		t.Fatalf("%s after restart: %d messages, want %d", mailbox, len(after), len(before))
	}
	for i := range after {
		if after[i].UID != before[i].UID || !bytes.Equal(after[i].Body, before[i].Body) || !slices.Equal(after[i].Flags, before[i].Flags) {
			t.Errorf("%s #%d after restart: %+v, want %+v", mailbox, i, after[i], before[i])
		}
	}
}

// listNames returns mailbox → LIST data.
func listNames(t testing.TB, c *imapclient.Client, opts *imap.ListOptions) map[string]*imap.ListData {
	t.Helper()
	list, err := c.List("", "*", opts).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*imap.ListData{}
	for _, l := range list {
		out[l.Mailbox] = l
	}
	return out
}
