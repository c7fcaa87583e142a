package imapemu

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/testenv"
)

// msg builds a small CRLF message with a Message-ID derived from id; size
// pads the body to about size bytes.
func msg(id string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender <sender@example.org>\r\nTo: alice@example.org\r\nSubject: %s\r\n", id)
	fmt.Fprintf(&b, "Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%s@example.org>\r\n\r\nBody of %s.\r\n", id, id)
	for b.Len() < size {
		b.WriteString(strings.Repeat("x", 76) + "\r\n")
	}
	return b.Bytes()
}

// fakeClock is a settable clock for limits. It is locked: the race
// detector cannot see the ordering that the IMAP round trips give.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)} }

func imapErr(t *testing.T, err error) *imap.Error {
	t.Helper()
	e, ok := err.(*imap.Error)
	if !ok {
		t.Fatalf("got %v (%T), want an IMAP status error", err, err)
	}
	return e
}

func appendRaw(c *imapclient.Client, mailbox string, body []byte, flags []imap.Flag) (*imap.AppendData, error) {
	cmd := c.Append(mailbox, int64(len(body)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(body); err != nil {
		cmd.Close()
		return nil, err
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	return cmd.Wait()
}

func uids(msgs []testenv.Msg) []imap.UID {
	var out []imap.UID
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

func subjects(msgs []testenv.Msg) []string {
	var out []string
	for _, m := range msgs {
		_, after, _ := bytes.Cut(m.Body, []byte("Subject: "))
		s, _, _ := bytes.Cut(after, []byte("\r\n"))
		out = append(out, string(s))
	}
	slices.Sort(out)
	return out
}

// listing is LIST "" "*" as name → attributes (sorted strings).
func listing(t *testing.T, c *imapclient.Client) map[string][]string {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, l := range list {
		if l.Delim != '/' {
			t.Errorf("%s: delimiter %q, want '/'", l.Mailbox, l.Delim)
		}
		var attrs []string
		for _, a := range l.Attrs {
			attrs = append(attrs, string(a))
		}
		slices.Sort(attrs)
		out[l.Mailbox] = attrs
	}
	return out
}

func selectBox(t *testing.T, c *imapclient.Client, name string) *imap.SelectData {
	t.Helper()
	d, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", name, err)
	}
	return d
}

// storeExpunge marks uid \Deleted and UID EXPUNGEs it in the selected
// mailbox.
func storeExpunge(t *testing.T, c *imapclient.Client, uid imap.UID) {
	t.Helper()
	set := imap.UIDSetNum(uid)
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(set).Close(); err != nil {
		t.Fatal(err)
	}
}
