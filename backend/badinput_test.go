package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/archive"
)

// TestSearchDecodedJapanese: a UTF-8 query finds ISO-2022-JP and Shift_JIS
// messages (RFC 2047 subjects and bodies).
func TestSearchDecodedJapanese(t *testing.T) {
	p, err := filepath.Abs("../testdata/archive/mbox/japanese.mbox")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Source{Name: "jp", Path: p, Format: "mbox"})
	c := e.client(nil)
	if _, err := c.Select("Local/jp", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		c    imap.SearchCriteria
		want string
	}{
		{"subject ISO-2022-JP", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "議事録"}}}, "[1]"},
		{"subject Shift_JIS", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "見積書"}}}, "[2]"},
		{"body ISO-2022-JP", imap.SearchCriteria{Body: []string{"会議"}}, "[1]"},
		{"body Shift_JIS", imap.SearchCriteria{Body: []string{"機能一覧"}}, "[2]"},
		{"from decoded name", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "山田"}}}, "[1]"},
		{"text either", imap.SearchCriteria{Text: []string{"お送り"}}, "[1 2]"},
		{"no match", imap.SearchCriteria{Body: []string{"存在しない"}}, "[]"},
	}
	for _, tc := range cases {
		d, err := c.UIDSearch(&tc.c, nil).Wait()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := fmt.Sprint(d.AllUIDs()); got != tc.want {
			t.Errorf("%s: UIDs %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestBadInput: broken archives are reported naming the file, the rest is
// served, and a big message comes through byte-exact.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	// A Thunderbird-style folder set: good, truncated, garbage, empty, huge,
	// broken MIME.
	writeFile(t, filepath.Join(dir, "Inbox"), mbox(1, 2))
	writeFile(t, filepath.Join(dir, "Inbox.msf"), "// mork")
	writeFile(t, filepath.Join(dir, "Truncated"), mbox(3)+"From x@example.com Mon Jan  2 15:04:05 2006\nFrom: cut@exa")
	writeFile(t, filepath.Join(dir, "Garbage"), "\x00\x01\x02 this is not mail \xff\xfe")
	writeFile(t, filepath.Join(dir, "Empty"), "")
	big := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\n", 50<<20/77)
	writeFile(t, filepath.Join(dir, "Big"), "From big@example.com Mon Jan  2 15:04:05 2006\nFrom: big@example.com\nSubject: 50 MB\n\n"+big)
	writeFile(t, filepath.Join(dir, "Broken"), "From b@example.com Mon Jan  2 15:04:05 2006\nFrom: b@example.com\nContent-Type: multipart/mixed; boundary=\"zz\"\n\n--zz\nContent-Type: text/plain\n\nunterminated part\n")
	e := newEnv(t, Source{Name: "tb", Path: dir, Format: "thunderbird"})

	probs := strings.Join(e.acct.Problems(), "\n")
	if !strings.Contains(probs, filepath.Join(dir, "Garbage")) {
		t.Errorf("garbage file not reported by name; problems:\n%s", probs)
	}
	if !strings.Contains(probs, filepath.Join(dir, "Truncated")) {
		t.Errorf("truncated mbox not reported by name; problems:\n%s", probs)
	}
	c := e.client(nil)
	if got := fetchAll(t, c, "Local/Inbox"); len(got) != 2 || string(got[1].Body) != served(2, "") {
		t.Errorf("the good folder is not served intact: %d messages", len(got))
	}
	if got := fetchAll(t, c, "Local/Truncated"); len(got) < 1 || string(got[0].Body) != served(3, "") {
		t.Errorf("the intact message before the truncation is not served: %d messages", len(got))
	}
	bigGot := fetchAll(t, c, "Local/Big")
	wantBig := strings.ReplaceAll("From: big@example.com\nSubject: 50 MB\n\n"+big, "\n", "\r\n")
	if len(bigGot) != 1 || !bytes.Equal(bigGot[0].Body, []byte(wantBig)) || bigGot[0].Size != int64(len(wantBig)) {
		t.Errorf("50 MB message not byte-exact (got %d messages)", len(bigGot))
	}
	if _, err := c.Select("Local/Broken", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].BodyStructure == nil {
		t.Errorf("BODYSTRUCTURE of a broken MIME tree: %v (%d messages)", err, len(msgs))
	}
	// The index survives a second run with the same problems, reported once.
	if _, err := e.acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Inbox.msf")); err != nil {
		t.Fatal(err)
	}
}

// TestNonUTF8ArchivePath: an mbox whose file name is CP932 bytes (copied
// from an old Windows disk to a Linux one) is indexed and served, also
// after a restart (the path survives the store).
func TestNonUTF8ArchivePath(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "\x91\x97\x90M\x8d\xcf\x82\xdd") // "送信済み" in CP932
	if err := os.WriteFile(name, []byte(mbox(1, 2)), 0o600); err != nil {
		t.Skipf("this file system refuses non-UTF-8 names: %v", err)
	}
	e := newEnv(t, Source{Name: "Old", Path: name, Format: archive.FormatMbox})
	for round := 0; round < 2; round++ {
		c := e.client(nil)
		got := fetchAll(t, c, "Local/Old")
		if len(got) != 2 || string(got[1].Body) != served(2, "") {
			t.Fatalf("round %d: %d messages: %+v", round, len(got), got)
		}
		c.Close()
		e.restart()
	}
}

// TestPermissionHint: a store popbridge may not read gets a problem that
// says what to do (macOS's Full Disk Access for Apple Mail's folder).
func TestPermissionHint(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/Users/me/Library/Mail/V10/Mailboxes", "Full Disk Access"},
		{"/home/me/mail/Inbox", "check that your user account can open it"},
	} {
		if got := permissionHint(archive.Problem{Path: c.path, Err: fmt.Errorf("open %s: %w", c.path, os.ErrPermission)}); !strings.Contains(got, c.want) {
			t.Errorf("%s: %q", c.path, got)
		}
	}
	if got := permissionHint(archive.Problem{Path: "/x", Err: os.ErrNotExist}); got != "" {
		t.Errorf("not a permission problem: %q", got)
	}
}
