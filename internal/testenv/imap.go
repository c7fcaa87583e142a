package testenv

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TLSConfig trusts exactly this Dovecot's self-signed certificate, for a
// client dialing IMAPSAddr/POP3SAddr or using STARTTLS. Nil without TLS.
func (d *Dovecot) TLSConfig() *tls.Config {
	if d.CertPEM == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(d.CertPEM)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// dial returns a logged-in client over plain IMAP; the caller closes it.
func (d *Dovecot) dial(t testing.TB, user string) (*imapclient.Client, error) {
	t.Helper()
	return dialLogin(d.IMAPAddr(), user, d.password(t, user))
}

// Client returns a go-imap client, logged in as user over plain IMAP and
// closed at cleanup.
func (d *Dovecot) Client(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	return Login(t, d.IMAPAddr(), user, d.password(t, user))
}

// Append appends msg verbatim to mailbox (creating the mailbox if the server
// says TRYCREATE) with the given flags and INTERNALDATE (zero = now) and
// returns the new UID. Dovecot stores the bytes as given but always serves
// CRLF line endings, so use CRLF messages for byte-exact round trips.
func (d *Dovecot) Append(t testing.TB, user, mailbox string, msg []byte, flags []imap.Flag, date time.Time) imap.UID {
	t.Helper()
	return AppendMessage(t, d.IMAPAddr(), user, d.password(t, user), mailbox, msg, flags, date)
}

// Messages returns every message in mailbox in UID order (EXAMINE, so no
// flags change).
func (d *Dovecot) Messages(t testing.TB, user, mailbox string) []Msg {
	t.Helper()
	return MailboxMessages(t, d.IMAPAddr(), user, d.password(t, user), mailbox)
}

// Msg is one message as the IMAP server has it.
type Msg struct {
	UID          imap.UID
	Flags        []imap.Flag // sorted; \Recent is left out
	InternalDate time.Time
	Body         []byte // BODY[] exactly as fetched
}

// dialLogin connects over plain IMAP and logs in; the caller closes the
// client.
func dialLogin(addr, user, pass string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Login returns a go-imap client connected to addr over plain IMAP, logged
// in with LOGIN, and logged out and closed at cleanup. Every server of this
// package and of internal/imapemu has a Client method built on it.
func Login(t testing.TB, addr, user, pass string) *imapclient.Client {
	t.Helper()
	c, err := dialLogin(addr, user, pass)
	if err != nil {
		t.Fatalf("testenv: IMAP login %s@%s: %v", user, addr, err)
	}
	t.Cleanup(func() {
		_ = c.Logout().Wait()
		_ = c.Close()
	})
	return c
}

// AppendMessage logs in to addr, appends msg verbatim to mailbox (creating
// the mailbox if the server answers TRYCREATE) with the given flags and
// INTERNALDATE (zero = now), and returns the UID from APPENDUID.
func AppendMessage(t testing.TB, addr, user, pass, mailbox string, msg []byte, flags []imap.Flag, date time.Time) imap.UID {
	t.Helper()
	c, err := dialLogin(addr, user, pass)
	if err != nil {
		t.Fatalf("testenv: IMAP login %s@%s: %v", user, addr, err)
	}
	defer c.Close()
	uid, err := appendMsg(c, mailbox, msg, flags, date)
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeTryCreate {
		if err := c.Create(mailbox, nil).Wait(); err != nil {
			t.Fatalf("testenv: create mailbox %q for %s: %v", mailbox, user, err)
		}
		uid, err = appendMsg(c, mailbox, msg, flags, date)
	}
	if err != nil {
		t.Fatalf("testenv: append to %q for %s: %v", mailbox, user, err)
	}
	_ = c.Logout().Wait()
	return uid
}

func appendMsg(c *imapclient.Client, mailbox string, msg []byte, flags []imap.Flag, date time.Time) (imap.UID, error) {
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags, Time: date})
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	if data.UID == 0 {
		return 0, errors.New("server returned no APPENDUID")
	}
	return data.UID, nil
}

// MailboxMessages logs in to addr and returns every message in mailbox in
// UID order, fetched with BODY.PEEK[] after EXAMINE, so no flag changes.
func MailboxMessages(t testing.TB, addr, user, pass, mailbox string) []Msg {
	t.Helper()
	c, err := dialLogin(addr, user, pass)
	if err != nil {
		t.Fatalf("testenv: IMAP login %s@%s: %v", user, addr, err)
	}
	defer c.Close()
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("testenv: examine %q for %s: %v", mailbox, user, err)
	}
	if sel.NumMessages == 0 {
		_ = c.Logout().Wait()
		return nil
	}
	section := &imap.FetchItemBodySection{Peek: true}
	items := &imap.FetchOptions{
		UID:          true,
		Flags:        true,
		InternalDate: true,
		BodySection:  []*imap.FetchItemBodySection{section},
	}
	// By UID: a response without INTERNALDATE was an unsolicited FETCH (a
	// flag change reported meanwhile) that imapclient took for the
	// answer; those messages are asked for once more.
	bufs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, items).Collect()
	if err != nil {
		t.Fatalf("testenv: fetch %q for %s: %v", mailbox, user, err)
	}
	var again []imap.UID
	first := len(bufs)
	for _, b := range bufs {
		if b.InternalDate.IsZero() {
			again = append(again, b.UID)
		}
	}
	if len(again) > 0 {
		more, err := c.Fetch(imap.UIDSetNum(again...), items).Collect()
		if err != nil {
			t.Fatalf("testenv: fetch %q for %s again: %v", mailbox, user, err)
		}
		bufs = append(bufs, more...)
	}
	msgs := make([]Msg, 0, len(bufs))
	for i, b := range bufs {
		if b.InternalDate.IsZero() {
			if i < first {
				continue // asked for again
			}
			t.Fatalf("testenv: %q UID %d: the server answered FETCH without INTERNALDATE", mailbox, b.UID)
		}
		msgs = append(msgs, Msg{
			UID:          b.UID,
			Flags:        normFlags(b.Flags),
			InternalDate: b.InternalDate,
			Body:         b.FindBodySection(section),
		})
	}
	slices.SortFunc(msgs, func(a, b Msg) int { return cmp.Compare(a.UID, b.UID) })
	_ = c.Logout().Wait()
	return msgs
}

// normFlags drops \Recent and sorts, so flag lists compare with
// slices.Equal. A nil result means "no flags".
func normFlags(flags []imap.Flag) []imap.Flag {
	var out []imap.Flag
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}
