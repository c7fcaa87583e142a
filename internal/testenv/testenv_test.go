package testenv

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// testMsg builds a small CRLF message; size pads the body to about size
// bytes.
func testMsg(subject string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender <sender@example.org>\r\n")
	fmt.Fprintf(&b, "To: alice@example.org\r\n")
	fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	fmt.Fprintf(&b, "Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n")
	fmt.Fprintf(&b, "Message-ID: <%s@example.org>\r\n", strings.ReplaceAll(subject, " ", "."))
	fmt.Fprintf(&b, "\r\n")
	fmt.Fprintf(&b, "Body of %s.\r\n", subject)
	fmt.Fprintf(&b, ".leading dot line\r\n") // exercises POP3 dot-stuffing
	for b.Len() < size {
		b.WriteString(strings.Repeat("x", 76) + "\r\n")
	}
	return b.Bytes()
}

type appended struct {
	body  []byte
	flags []imap.Flag
	date  time.Time
}

func TestDovecot(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{
		TLS: true,
		Users: []DovecotUser{
			{Name: "alice", Password: "alice-pw", QuotaBytes: 1 << 20, QuotaMessages: 100},
			{Name: "bob", Password: "bob pw with spaces", QuotaMessages: 1},
		},
	})
	if d.IMAPSPort == 0 || d.POP3SPort == 0 || len(d.CertPEM) == 0 {
		t.Fatalf("TLS ports/cert missing: imaps %d pop3s %d cert %d bytes", d.IMAPSPort, d.POP3SPort, len(d.CertPEM))
	}

	// Whole seconds in a non-local zone: INTERNALDATE keeps seconds only.
	zone := time.FixedZone("", -5*3600)
	want := map[string][]appended{
		"INBOX": {
			{testMsg("first", 0), nil, time.Date(2001, 2, 3, 4, 5, 6, 0, zone)},
			{testMsg("second", 3000), []imap.Flag{imap.FlagSeen, imap.FlagFlagged}, time.Date(2010, 11, 12, 13, 14, 15, 0, time.UTC)},
			{testMsg("third", 0), []imap.Flag{imap.FlagAnswered, imap.FlagSeen}, time.Date(2024, 2, 29, 23, 59, 59, 0, zone)},
		},
		"Sent": {
			{testMsg("sent one", 0), []imap.Flag{imap.FlagSeen}, time.Date(2020, 6, 1, 8, 0, 0, 0, time.UTC)},
		},
	}
	for _, mbox := range []string{"INBOX", "Sent"} {
		var last imap.UID
		for _, a := range want[mbox] {
			uid := d.Append(t, "alice", mbox, a.body, a.flags, a.date)
			if uid <= last {
				t.Fatalf("append to %s: UID %d after %d", mbox, uid, last)
			}
			last = uid
		}
	}

	checkMessages := func(t *testing.T, what string) map[string][]Msg {
		t.Helper()
		got := map[string][]Msg{}
		for mbox, wantMsgs := range want {
			msgs := d.Messages(t, "alice", mbox)
			if len(msgs) != len(wantMsgs) {
				t.Fatalf("%s: %s has %d messages, want %d", what, mbox, len(msgs), len(wantMsgs))
			}
			for i, m := range msgs {
				w := wantMsgs[i]
				if !bytes.Equal(m.Body, w.body) {
					t.Errorf("%s: %s #%d body differs:\n got %q\nwant %q", what, mbox, i, m.Body, w.body)
				}
				if wf := normFlags(w.flags); !slices.Equal(m.Flags, wf) {
					t.Errorf("%s: %s #%d flags %v, want %v", what, mbox, i, m.Flags, wf)
				}
				if !m.InternalDate.Equal(w.date) {
					t.Errorf("%s: %s #%d INTERNALDATE %v, want %v", what, mbox, i, m.InternalDate, w.date)
				}
			}
			got[mbox] = msgs
		}
		return got
	}
	before := checkMessages(t, "after append")

	t.Run("ListSpecialUse", func(t *testing.T) {
		c := d.Client(t, "alice")
		list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]imap.MailboxAttr{}
		for _, l := range list {
			if l.Delim != '/' {
				t.Errorf("%s: delimiter %q, want '/'", l.Mailbox, l.Delim)
			}
			got[l.Mailbox] = l.Attrs
		}
		wantAttr := map[string]imap.MailboxAttr{
			"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts, "Trash": imap.MailboxAttrTrash,
			"Junk": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive,
		}
		if len(got) != len(wantAttr)+1 {
			t.Errorf("LIST returned %v, want INBOX and %d special-use folders", slices.Sorted(maps.Keys(got)), len(wantAttr))
		}
		if _, ok := got["INBOX"]; !ok {
			t.Error("LIST has no INBOX")
		}
		for name, attr := range wantAttr {
			if !slices.Contains(got[name], attr) {
				t.Errorf("LIST %s attrs %v, want %s", name, got[name], attr)
			}
		}
	})

	t.Run("Quota", func(t *testing.T) {
		c := d.Client(t, "alice")
		roots, err := c.GetQuotaRoot("INBOX").Wait()
		if err != nil {
			t.Fatal(err)
		}
		if len(roots) != 1 {
			t.Fatalf("GETQUOTAROOT INBOX: %d quota roots %+v, want 1", len(roots), roots)
		}
		st := roots[0].Resources[imap.QuotaResourceStorage]
		if st.Limit != 1024 { // KiB
			t.Errorf("STORAGE limit %d, want 1024 (1 MiB)", st.Limit)
		}
		var usedBytes int64
		for _, msgs := range want {
			for _, m := range msgs {
				usedBytes += int64(len(m.body))
			}
		}
		if wantKiB := (usedBytes + 1023) / 1024; st.Usage != wantKiB { // Dovecot rounds up
			t.Errorf("STORAGE usage %d KiB, want %d (%d bytes)", st.Usage, wantKiB, usedBytes)
		}
		if m := roots[0].Resources[imap.QuotaResourceMessage]; m.Limit != 100 || m.Usage != 4 {
			t.Errorf("MESSAGE usage/limit %d/%d, want 4/100", m.Usage, m.Limit)
		}

		big := testMsg("too big", 1<<20)
		_, err = appendMsg(c, "INBOX", big, nil, time.Time{})
		assertOverQuota(t, err, "alice 1 MiB append")

		// bob may hold one message.
		d.Append(t, "bob", "INBOX", testMsg("bob 1", 0), nil, time.Time{})
		cb := d.Client(t, "bob")
		_, err = appendMsg(cb, "INBOX", testMsg("bob 2", 0), nil, time.Time{})
		assertOverQuota(t, err, "bob's second append")
		if n := len(d.Messages(t, "bob", "INBOX")); n != 1 {
			t.Errorf("bob's INBOX has %d messages, want 1", n)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		for _, dial := range []struct {
			name string
			fn   func() (*imapclient.Client, error)
		}{
			{"IMAPS", func() (*imapclient.Client, error) {
				return imapclient.DialTLS(d.IMAPSAddr(), &imapclient.Options{TLSConfig: d.TLSConfig()})
			}},
			{"STARTTLS", func() (*imapclient.Client, error) {
				return imapclient.DialStartTLS(d.IMAPAddr(), &imapclient.Options{TLSConfig: d.TLSConfig()})
			}},
		} {
			c, err := dial.fn()
			if err != nil {
				t.Fatalf("%s: %v", dial.name, err)
			}
			if err := c.Login("alice", "alice-pw").Wait(); err != nil {
				t.Fatalf("%s login: %v", dial.name, err)
			}
			st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
			if err != nil || st.NumMessages == nil || *st.NumMessages != 3 {
				t.Errorf("%s: STATUS INBOX = %+v, %v; want 3 messages", dial.name, st, err)
			}
			c.Close()
		}
		conn, err := tls.Dial("tcp", d.POP3SAddr(), d.TLSConfig())
		if err != nil {
			t.Fatalf("POP3S: %v", err)
		}
		defer conn.Close()
		greet, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.HasPrefix(greet, "+OK") {
			t.Errorf("POP3S greeting %q, %v", greet, err)
		}
	})

	t.Run("Mbsync", func(t *testing.T) {
		RequireMbsync(t)
		// Plain IMAP, everything; then IMAPS with chosen folders.
		for _, run := range []struct {
			name     string
			o        MbsyncOptions
			folders  []string
			expected []string
		}{
			{"plain", MbsyncOptions{Port: d.IMAPPort, Patterns: []string{"*"}},
				nil, []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"}},
			{"imaps", MbsyncOptions{Port: d.IMAPSPort, TLS: true, CertPEM: d.CertPEM, Patterns: []string{"INBOX", "Sent"}},
				nil, []string{"INBOX", "Sent"}},
		} {
			o := run.o
			o.Host, o.User, o.Pass = d.Host, "alice", "alice-pw"
			o.LocalDir = filepath.Join(t.TempDir(), "Mail")
			out := Mbsync(t, o)
			tree := ReadMaildirTree(t, o.LocalDir)
			if got := slices.Sorted(maps.Keys(tree)); !slices.Equal(got, run.expected) {
				t.Fatalf("%s: folders %v, want %v; mbsync said:\n%s", run.name, got, run.expected, out)
			}
			for name, local := range tree {
				// mbsync writes LF line endings and adds one X-TUID
				// header line; otherwise the bytes are the server's
				// BODY[] unchanged.
				remote := before[name]
				if len(local) != len(remote) {
					t.Errorf("%s: %s has %d messages locally, %d on the server", run.name, name, len(local), len(remote))
					continue
				}
				for i := range local {
					stripped := StripMbsyncTUID(local[i].Body)
					if len(stripped) != len(local[i].Body)-len("X-TUID: 123456789012\n") {
						t.Errorf("%s: %s #%d: no X-TUID line in %q", run.name, name, i, local[i].Body)
					}
					if wantBody := CRLFToLF(remote[i].Body); !bytes.Equal(stripped, wantBody) {
						t.Errorf("%s: %s #%d body without X-TUID:\n got %q\nwant %q", run.name, name, i, stripped, wantBody)
					}
					if !slices.Equal(local[i].Flags, remote[i].Flags) {
						t.Errorf("%s: %s #%d flags %v, want %v", run.name, name, i, local[i].Flags, remote[i].Flags)
					}
				}
			}
			// A second run into the same tree is incremental: nothing new.
			Mbsync(t, o)
			if again := ReadMaildirTree(t, o.LocalDir); len(again["INBOX"]) != 3 {
				t.Errorf("%s: second run left %d INBOX messages, want 3", run.name, len(again["INBOX"]))
			}
		}
	})

	t.Run("DovecotMaildir", func(t *testing.T) {
		// Dovecot's own store is Maildir++; it keeps CRLF messages as LF.
		tree := ReadMaildirTree(t, d.MailDir("alice"))
		for _, name := range []string{"INBOX", "Sent"} {
			local := tree[name]
			if len(local) != len(before[name]) {
				t.Fatalf("%s: %d messages on disk, want %d", name, len(local), len(before[name]))
			}
			for i := range local {
				if !bytes.Equal(CRLFToLF(local[i].Body), CRLFToLF(before[name][i].Body)) {
					t.Errorf("%s #%d: disk body differs from IMAP", name, i)
				}
				if !slices.Equal(local[i].Flags, before[name][i].Flags) {
					t.Errorf("%s #%d flags on disk %v, want %v", name, i, local[i].Flags, before[name][i].Flags)
				}
			}
		}
	})

	t.Run("POP3", func(t *testing.T) {
		p := dialPOP3(t, d.POP3Addr())
		p.cmd("USER alice")
		p.cmd("PASS alice-pw")
		count, size := 0, 0
		if _, err := fmt.Sscanf(p.cmd("STAT"), "%d %d", &count, &size); err != nil {
			t.Fatalf("STAT: %v", err)
		}
		inbox := before["INBOX"]
		wantSize := 0
		for _, m := range inbox {
			wantSize += len(m.Body)
		}
		if count != len(inbox) || size != wantSize {
			t.Errorf("STAT %d %d, want %d %d", count, size, len(inbox), wantSize)
		}
		p.cmd("UIDL")
		uidls := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSuffix(string(p.multiline()), "\r\n"), "\r\n") {
			n, uidl, ok := strings.Cut(line, " ")
			if !ok || uidl == "" {
				t.Fatalf("UIDL line %q", line)
			}
			if n != strconv.Itoa(len(uidls)+1) {
				t.Errorf("UIDL line %q out of order", line)
			}
			uidls[uidl] = true
		}
		if len(uidls) != len(inbox) {
			t.Errorf("UIDL listed %d distinct ids, want %d", len(uidls), len(inbox))
		}
		for i, m := range inbox {
			p.cmd(fmt.Sprintf("RETR %d", i+1))
			if got := p.multiline(); !bytes.Equal(got, m.Body) {
				t.Errorf("RETR %d:\n got %q\nwant %q", i+1, got, m.Body)
			}
		}
		p.cmd("QUIT")
	})

	t.Run("StopRestart", func(t *testing.T) {
		// The POP3 RETRs above mark messages \Seen when the session QUITs,
		// so compare against a fresh snapshot.
		snap := map[string][]Msg{}
		for _, mbox := range []string{"INBOX", "Sent"} {
			snap[mbox] = d.Messages(t, "alice", mbox)
		}
		imapPort, pop3Port := d.IMAPPort, d.POP3Port
		d.Stop(t)
		d.Stop(t) // idempotent
		for _, addr := range []string{d.IMAPAddr(), d.POP3Addr(), d.IMAPSAddr(), d.POP3SAddr()} {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after Stop", addr)
			}
		}
		d.Restart(t)
		if d.IMAPPort != imapPort || d.POP3Port != pop3Port {
			t.Errorf("ports changed on restart: %d/%d → %d/%d", imapPort, pop3Port, d.IMAPPort, d.POP3Port)
		}
		for mbox, msgs := range snap {
			got := d.Messages(t, "alice", mbox)
			if len(got) != len(msgs) {
				t.Fatalf("%s after restart: %d messages, want %d", mbox, len(got), len(msgs))
			}
			for i := range got {
				if got[i].UID != msgs[i].UID || !bytes.Equal(got[i].Body, msgs[i].Body) ||
					!slices.Equal(got[i].Flags, msgs[i].Flags) || !got[i].InternalDate.Equal(msgs[i].InternalDate) {
					t.Errorf("%s #%d after restart: %+v, want %+v", mbox, i, got[i], msgs[i])
				}
			}
		}
	})
}

func assertOverQuota(t *testing.T, err error, what string) {
	t.Helper()
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) {
		t.Fatalf("%s: got %v, want NO [OVERQUOTA]", what, err)
	}
	if imapErr.Type != imap.StatusResponseTypeNo || imapErr.Code != imap.ResponseCodeOverQuota {
		t.Errorf("%s: got %s [%s] %s, want NO [OVERQUOTA]", what, imapErr.Type, imapErr.Code, imapErr.Text)
	}
}

func TestTwoDovecotsInParallel(t *testing.T) {
	t.Parallel()
	d1 := StartDovecot(t, DovecotOptions{})
	d2 := StartDovecot(t, DovecotOptions{Users: []DovecotUser{{Name: "carol", Password: "c"}}})
	if d1.Dir == d2.Dir || d1.IMAPPort == d2.IMAPPort || d1.POP3Port == d2.POP3Port {
		t.Fatalf("instances share dir or ports: %+v / %+v", d1, d2)
	}
	if d1.IMAPSPort != 0 || d1.POP3SPort != 0 || d1.CertPEM != nil {
		t.Errorf("TLS fields set without TLS: %d %d %d", d1.IMAPSPort, d1.POP3SPort, len(d1.CertPEM))
	}
	msg := testMsg("only in d1", 0)
	d1.Append(t, "alice", "INBOX", msg, nil, time.Time{})
	d2.Append(t, "carol", "Archive", testMsg("only in d2", 0), []imap.Flag{"$Label1"}, time.Time{})

	if got := d1.Messages(t, "alice", "INBOX"); len(got) != 1 || !bytes.Equal(got[0].Body, msg) {
		t.Errorf("d1 INBOX: %+v", got)
	}
	if got := d1.Messages(t, "alice", "Archive"); len(got) != 0 {
		t.Errorf("d1 Archive has %d messages, want 0", len(got))
	}
	if got := d2.Messages(t, "carol", "Archive"); len(got) != 1 || !slices.Equal(got[0].Flags, []imap.Flag{"$Label1"}) {
		t.Errorf("d2 Archive: %+v", got)
	}
	if got := d2.Messages(t, "carol", "INBOX"); len(got) != 0 {
		t.Errorf("d2 INBOX has %d messages, want 0", len(got))
	}
	bad, err := imapclient.DialInsecure(d2.IMAPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	var imapErr *imap.Error
	if err := bad.Login("alice", "alice-pw").Wait(); !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
		t.Errorf("d2 LOGIN as alice (a user of d1 only): %v, want NO [AUTHENTICATIONFAILED]", err)
	}
}

func TestNoSpecialUse(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{NoSpecialUse: true})
	c := d.Client(t, "alice")
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Mailbox != "INBOX" {
		t.Errorf("LIST = %+v, want only INBOX", list)
	}
	// Append creates a missing mailbox (TRYCREATE).
	msg := testMsg("old", 0)
	d.Append(t, "alice", "Local/2001", msg, []imap.Flag{imap.FlagSeen}, time.Time{})
	got := d.Messages(t, "alice", "Local/2001")
	if len(got) != 1 || !bytes.Equal(got[0].Body, msg) || !slices.Equal(got[0].Flags, []imap.Flag{imap.FlagSeen}) {
		t.Errorf("Local/2001 = %+v", got)
	}

	RequireMbsync(t)
	local := t.TempDir()
	Mbsync(t, MbsyncOptions{Port: d.IMAPPort, User: "alice", Pass: "alice-pw", Patterns: []string{"Local/*"}, LocalDir: local})
	tree := ReadMaildirTree(t, local)
	if len(tree) != 1 || len(tree["Local/2001"]) != 1 {
		t.Fatalf("tree = %v, want only Local/2001 with one message", slices.Sorted(maps.Keys(tree)))
	}
	if m := tree["Local/2001"][0]; !bytes.Equal(StripMbsyncTUID(m.Body), CRLFToLF(msg)) || !slices.Equal(m.Flags, []imap.Flag{imap.FlagSeen}) {
		t.Errorf("Local/2001 locally: %q %v", m.Body, m.Flags)
	}
}

func TestDovecotBcrypt(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, DovecotOptions{BcryptCost: 4, NoSpecialUse: true})
	users, err := os.ReadFile(filepath.Join(d.Dir, "users"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(users, []byte("alice:{BLF-CRYPT}$2a$04$")) || bytes.Contains(users, []byte("alice-pw")) {
		t.Errorf("passwd-file %q, want a {BLF-CRYPT} cost-4 hash and no plain password", users)
	}
	c := d.Client(t, "alice") // logs in with the right password
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	c2, err := imapclient.DialInsecure(fmt.Sprintf("%s:%d", d.Host, d.IMAPPort), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var imapErr *imap.Error
	if err := c2.Login("alice", "wrong").Wait(); !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
		t.Errorf("LOGIN with a wrong password: %v, want NO [AUTHENTICATIONFAILED]", err)
	}
}

// fakeTB records what missing does instead of stopping the test; the
// embedded nil TB panics if anything else is called.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }
func (f *fakeTB) Skip(args ...any)  { f.skip = fmt.Sprint(args...) }

func TestMissingBinaryMessage(t *testing.T) {
	const want = "dovecot not found: apt-get install -y dovecot-imapd dovecot-pop3d"
	for _, tc := range []struct {
		ci    string
		fatal string
		skip  string
	}{
		{"true", want, ""},
		{"", "", want},
		{"false", "", want},
	} {
		t.Setenv("CI", tc.ci)
		f := &fakeTB{}
		missing(f, "dovecot", dovecotPackages)
		if f.fatal != tc.fatal || f.skip != tc.skip {
			t.Errorf("CI=%q: fatal %q skip %q; want fatal %q skip %q", tc.ci, f.fatal, f.skip, tc.fatal, tc.skip)
		}
	}
}

// pop3 is a minimal POP3 client for the test.
type pop3 struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialPOP3(t *testing.T, addr string) *pop3 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	p := &pop3{t: t, c: c, r: bufio.NewReader(c)}
	p.status("greeting")
	return p
}

func (p *pop3) status(what string) string {
	p.t.Helper()
	line, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("POP3 %s: %v", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	rest, ok := strings.CutPrefix(line, "+OK")
	if !ok {
		p.t.Fatalf("POP3 %s: %q", what, line)
	}
	return strings.TrimSpace(rest)
}

func (p *pop3) cmd(line string) string {
	p.t.Helper()
	if _, err := io.WriteString(p.c, line+"\r\n"); err != nil {
		p.t.Fatal(err)
	}
	return p.status(strings.Fields(line)[0])
}

// multiline reads a dot-terminated response, undoing dot-stuffing; every
// line keeps its CRLF.
func (p *pop3) multiline() []byte {
	p.t.Helper()
	var out []byte
	for {
		line, err := p.r.ReadBytes('\n')
		if err != nil {
			p.t.Fatalf("POP3 multi-line response: %v", err)
		}
		if string(line) == ".\r\n" {
			return out
		}
		out = append(out, bytes.TrimPrefix(line, []byte("."))...)
	}
}
