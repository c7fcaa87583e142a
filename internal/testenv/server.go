package testenv

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Server is what every IMAP server the tests start has in common: the
// private Dovecot, Courier and Cyrus of this package and the provider
// emulators of internal/imapemu. Conformance tests take a Server and run
// the same flows against each.
type Server interface {
	// Kind names the server in test names and messages: "dovecot",
	// "courier", "cyrus", "gmail", "m365".
	Kind() string
	// IMAPAddr is host:port of the plain IMAP listener on loopback.
	IMAPAddr() string
	// Password is user's password; the test fails for an unknown user.
	Password(t testing.TB, user string) string
	// PersonalNamespace is what the server answers to NAMESPACE for the
	// personal namespace: Prefix "" and Delim '/' for Dovecot and the
	// emulators, Prefix "INBOX." and Delim '.' for Courier and Cyrus.
	PersonalNamespace() imap.NamespaceDescriptor
	// Client is a logged-in go-imap client, closed at cleanup.
	Client(t testing.TB, user string) *imapclient.Client
	// Append stores msg verbatim in mailbox (the server's own name, e.g.
	// "INBOX.Sent" on Courier) and returns its UID.
	Append(t testing.TB, user, mailbox string, msg []byte, flags []imap.Flag, date time.Time) imap.UID
	// Messages lists mailbox in UID order, read-only.
	Messages(t testing.TB, user, mailbox string) []Msg
	// Stop ends the server like a crash; Restart brings it back on the same
	// port with the same mail.
	Stop(t testing.TB)
	Restart(t testing.TB)
}

var (
	_ Server = (*Dovecot)(nil)
	_ Server = (*Courier)(nil)
	_ Server = (*Cyrus)(nil)
)

// Kind is "dovecot".
func (d *Dovecot) Kind() string { return "dovecot" }

// Password is user's password.
func (d *Dovecot) Password(t testing.TB, user string) string {
	t.Helper()
	return d.password(t, user)
}

// PersonalNamespace is Dovecot's: no prefix, "/" as the delimiter.
func (d *Dovecot) PersonalNamespace() imap.NamespaceDescriptor {
	return imap.NamespaceDescriptor{Prefix: "", Delim: '/'}
}
