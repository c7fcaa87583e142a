package imapemu

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/popbridge/popbridge/internal/testenv"
)

// Both emulators behave like any IMAP server for the basics: bytes, flags
// and dates round-trip exactly, IDLE pushes, a crash keeps the mail.
func TestEmulatorsConform(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		start func(testing.TB, Options) *Server
		boxes []string
	}{
		{StartGmail, []string{"INBOX", "[Gmail]/Sent Mail", "Work/Sub"}},
		{StartM365, []string{"INBOX", "Sent Items", "Work/Sub"}},
	} {
		s := tc.start(t, Options{})
		t.Run(s.Kind(), func(t *testing.T) {
			c := s.Client(t, "alice")
			if err := c.Create("Work/Sub", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			zone := time.FixedZone("", 9*3600)
			for _, box := range tc.boxes {
				want := []struct {
					body  []byte
					flags []imap.Flag
					date  time.Time
				}{
					{msg(box+"-1", 0), nil, time.Date(2001, 2, 3, 4, 5, 6, 0, zone)},
					{msg(box+"-2", 5000), []imap.Flag{imap.FlagSeen, imap.FlagAnswered, "$Label1"}, time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
				}
				var got []imap.UID
				for _, w := range want {
					got = append(got, s.Append(t, "alice", box, w.body, w.flags, w.date))
				}
				msgs := s.Messages(t, "alice", box)
				if !slices.Equal(uids(msgs), got) {
					t.Fatalf("%s: UIDs %v, APPENDUID said %v", box, uids(msgs), got)
				}
				for i, m := range msgs {
					wf := slices.Clone(want[i].flags)
					slices.Sort(wf)
					if !bytes.Equal(m.Body, want[i].body) || !slices.Equal(m.Flags, wf) || !m.InternalDate.Equal(want[i].date) {
						t.Errorf("%s #%d: %q %v %v, want %q %v %v", box, i, m.Body, m.Flags, m.InternalDate, want[i].body, wf, want[i].date)
					}
				}
			}

			// IDLE: another connection's APPEND arrives as EXISTS.
			counts := make(chan uint32, 4)
			ic, err := imapclient.DialInsecure(s.IMAPAddr(), &imapclient.Options{
				UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					if d.NumMessages != nil {
						counts <- *d.NumMessages
					}
				}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ic.Close()
			if err := ic.Login("alice", "alice-pw").Wait(); err != nil {
				t.Fatal(err)
			}
			if d := selectBox(t, ic, "INBOX"); d.NumMessages != 2 {
				t.Fatalf("INBOX has %d messages, want 2", d.NumMessages)
			}
			idle, err := ic.Idle()
			if err != nil {
				t.Fatal(err)
			}
			s.Append(t, "alice", "INBOX", msg("pushed", 0), nil, time.Time{})
			select {
			case n := <-counts:
				if n != 3 {
					t.Errorf("IDLE announced %d EXISTS, want 3", n)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no EXISTS during IDLE")
			}
			if err := idle.Close(); err != nil {
				t.Fatal(err)
			}
			if err := idle.Wait(); err != nil {
				t.Fatal(err)
			}

			// Stop is a crash; Restart keeps port and mail.
			before := s.Messages(t, "alice", "INBOX")
			addr := s.IMAPAddr()
			s.Stop(t)
			if err := ic.Noop().Wait(); err == nil {
				t.Error("a client connection survived Stop")
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s accepts connections after Stop", addr)
			}
			s.Restart(t)
			if s.IMAPAddr() != addr {
				t.Errorf("address %s after restart, want %s", s.IMAPAddr(), addr)
			}
			after := s.Messages(t, "alice", "INBOX")
			if !slices.Equal(uids(after), uids(before)) {
				t.Errorf("INBOX UIDs %v after restart, want %v", uids(after), uids(before))
			}
		})
	}
}

// xoauth2 is the XOAUTH2 SASL client (go-sasl has only OAUTHBEARER).
type xoauth2 struct{ user, token string }

func (x xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}
func (x xoauth2) Next([]byte) ([]byte, error) { return []byte{}, nil }

func TestAuthentication(t *testing.T) {
	t.Parallel()
	for _, s := range []*Server{StartGmail(t, Options{}), StartM365(t, Options{})} {
		t.Run(s.Kind(), func(t *testing.T) {
			try := func(what string, auth func(*imapclient.Client) error) error {
				c, err := imapclient.DialInsecure(s.IMAPAddr(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				err = auth(c)
				if err == nil {
					// Logged in: the account is usable.
					if _, err := c.Select("INBOX", nil).Wait(); err != nil {
						t.Errorf("%s: SELECT after login: %v", what, err)
					}
				}
				return err
			}
			ok := map[string]func(*imapclient.Client) error{
				"LOGIN":   func(c *imapclient.Client) error { return c.Login("alice", "alice-pw").Wait() },
				"PLAIN":   func(c *imapclient.Client) error { return c.Authenticate(sasl.NewPlainClient("", "alice", "alice-pw")) },
				"XOAUTH2": func(c *imapclient.Client) error { return c.Authenticate(xoauth2{"alice", "alice-token"}) },
			}
			bad := map[string]func(*imapclient.Client) error{
				"LOGIN":   func(c *imapclient.Client) error { return c.Login("alice", "wrong").Wait() },
				"PLAIN":   func(c *imapclient.Client) error { return c.Authenticate(sasl.NewPlainClient("", "alice", "wrong")) },
				"XOAUTH2": func(c *imapclient.Client) error { return c.Authenticate(xoauth2{"alice", "alice-pw"}) },
			}
			if s.Kind() == "gmail" {
				ok["OAUTHBEARER"] = func(c *imapclient.Client) error {
					return c.Authenticate(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "alice", Token: "alice-token"}))
				}
			}
			for name, f := range ok {
				if err := try(name, f); err != nil {
					t.Errorf("%s with good credentials: %v", name, err)
				}
			}
			for name, f := range bad {
				err := try(name, f)
				var ie *imap.Error
				if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
					t.Errorf("%s with bad credentials: %v, want NO", name, err)
				}
			}
			// A password as a synchronising literal; an unknown command
			// before login does not end the connection.
			r := testenv.DialRaw(t, s.IMAPAddr())
			if _, st := r.Cmd("XYZZY"); !strings.HasPrefix(st, "BAD") {
				t.Errorf("unknown command before login: %q", st)
			}
			r.Send(`a1 LOGIN alice {8}`)
			if l := r.ReadLine(); !strings.HasPrefix(l, "+ ") {
				t.Fatalf("literal in LOGIN: %q", l)
			}
			r.Send("alice-pw")
			if _, st := r.Responses("a1"); !strings.HasPrefix(st, "OK") {
				t.Errorf("LOGIN with a literal password: %q", st)
			}
		})
	}
}

// The front follows literals and IDLE: pipelined commands, a literal the
// inner server refuses and one it accepts leave the session in step.
func TestFrontCommandBoundaries(t *testing.T) {
	t.Parallel()
	s := StartM365(t, Options{})
	r := testenv.DialRaw(t, s.IMAPAddr())
	r.Login("alice", "alice-pw")
	// Non-synchronising literal (LITERAL+) containing lines that look like
	// commands the front would answer itself.
	body := "Subject: tricky\r\n\r\nb1 CAPABILITY\r\nb2 ID NIL\r\n"
	r.Send(fmt.Sprintf("a1 APPEND INBOX {%d+}", len(body)))
	r.Send(body) // the literal, then the CRLF that ends the command
	r.Send("a2 NOOP")
	if _, st := r.Responses("a1"); !strings.HasPrefix(st, "OK [APPENDUID") {
		t.Fatalf("APPEND with LITERAL+: %q", st)
	}
	if _, st := r.Responses("a2"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("NOOP after it: %q", st)
	}
	// The inner server refuses a 5000-byte literal in SEARCH before "+".
	r.Send("a3 UID SEARCH HEADER Subject {5000}")
	if l := r.ReadLine(); !strings.HasPrefix(l, "a3 NO") && !strings.HasPrefix(l, "a3 BAD") {
		t.Fatalf("large SEARCH literal: %q, want a3 NO or BAD", l)
	}
	r.OK("SELECT INBOX")
	if u := r.OK("UID FETCH 1 (BODY.PEEK[])"); len(u) != 1 || !strings.Contains(u[0], "b2 ID NIL") {
		t.Fatalf("fetched %q", u)
	}
	// IDLE's DONE is passed on, not taken for a command.
	r.Send("a4 IDLE")
	if l := r.ReadLine(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	r.Send("DONE")
	if _, st := r.Responses("a4"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("IDLE ended with %q", st)
	}
	if caps := r.OK("CAPABILITY"); len(caps) != 1 || !strings.Contains(caps[0], " MOVE ") {
		t.Errorf("CAPABILITY after IDLE: %q", caps)
	}
}

func TestFailureInjection(t *testing.T) {
	t.Parallel()
	s := StartGmail(t, Options{})
	c := s.Client(t, "alice")
	s.Fail(Failure{Command: "APPEND", Response: GmailUnavailable})
	_, err := appendRaw(c, "INBOX", msg("refused", 0), nil)
	if e := imapErr(t, err); e.Code != imap.ResponseCodeUnavailable || e.Text != "Temporary System Problem. Try again later. (Failure)" {
		t.Errorf("injected failure: %+v", e)
	}
	// Only once.
	if _, err := appendRaw(c, "INBOX", msg("accepted", 0), nil); err != nil {
		t.Fatalf("second APPEND: %v", err)
	}
	if n := len(s.Messages(t, "alice", "INBOX")); n != 1 {
		t.Errorf("INBOX has %d messages, want 1", n)
	}
	// With BYE the connection goes.
	s.Fail(Failure{Command: "SELECT", Response: GmailUnavailable, Bye: "[UNAVAILABLE] Temporary System Problem. Try again later."})
	if _, err := c.Select("INBOX", nil).Wait(); err == nil {
		t.Fatal("SELECT succeeded despite the injected failure")
	}
	if err := c.Noop().Wait(); err == nil {
		t.Error("connection still usable after the injected BYE")
	}
	// Before login too.
	s.Fail(Failure{Command: "LOGIN", Response: "NO [UNAVAILABLE] Temporary System Problem. Try again later. (Failure)"})
	r := testenv.DialRaw(t, s.IMAPAddr())
	if _, st := r.Cmd("LOGIN alice alice-pw"); !strings.HasPrefix(st, "NO [UNAVAILABLE]") {
		t.Errorf("LOGIN with injected failure: %q", st)
	}
	r.Login("alice", "alice-pw")
}

// The FETCH items a bridge's first sync asks for, and EXAMINE's read-only
// state.
func TestFetchItems(t *testing.T) {
	t.Parallel()
	for _, s := range []*Server{StartGmail(t, Options{}), StartM365(t, Options{})} {
		t.Run(s.Kind(), func(t *testing.T) {
			m := msg("items", 0)
			uid := s.Append(t, "alice", "INBOX", m, nil, time.Date(2022, 5, 6, 7, 8, 9, 0, time.UTC))
			c := s.Client(t, "alice")
			if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				t.Fatal(err)
			}
			hdr := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID", "Subject"}, Peek: true}
			all := &imap.FetchItemBodySection{Peek: true}
			got, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
				UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
				BodySection: []*imap.FetchItemBodySection{hdr, all},
			}).Collect()
			if err != nil || len(got) != 1 {
				t.Fatalf("FETCH: %+v, %v", got, err)
			}
			f := got[0]
			if f.UID != uid || f.RFC822Size != int64(len(m)) || !f.InternalDate.Equal(time.Date(2022, 5, 6, 7, 8, 9, 0, time.UTC)) {
				t.Errorf("UID %d size %d date %v", f.UID, f.RFC822Size, f.InternalDate)
			}
			if f.Envelope == nil || f.Envelope.Subject != "items" || f.Envelope.MessageID != "items@example.org" ||
				len(f.Envelope.From) != 1 || f.Envelope.From[0].Addr() != "sender@example.org" {
				t.Errorf("ENVELOPE %+v", f.Envelope)
			}
			if h := string(f.FindBodySection(hdr)); h != "Subject: items\r\nMessage-ID: <items@example.org>\r\n\r\n" {
				t.Errorf("HEADER.FIELDS %q", h)
			}
			if !bytes.Equal(f.FindBodySection(all), m) {
				t.Errorf("BODY[] %q", f.FindBodySection(all))
			}
			// EXAMINE is read-only: STORE and EXPUNGE are refused and
			// BODY[] does not set \Seen.
			if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err == nil {
				t.Error("STORE after EXAMINE succeeded")
			}
			if _, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect(); err != nil {
				t.Fatal(err)
			}
			if got := s.Messages(t, "alice", "INBOX"); len(got[0].Flags) != 0 {
				t.Errorf("flags after BODY[] in EXAMINE: %v", got[0].Flags)
			}
		})
	}
}
