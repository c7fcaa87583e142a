package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestStripMbsyncTUID(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"last header", "A: 1\nX-TUID: abcdefghijkl\n\nbody\n", "A: 1\n\nbody\n"},
		{"first header", "X-TUID: abcdefghijkl\nA: 1\n\nbody\n", "A: 1\n\nbody\n"},
		{"crlf", "A: 1\r\nX-TUID: abcdefghijkl\r\n\r\nbody\r\n", "A: 1\r\n\r\nbody\r\n"},
		{"none", "A: 1\n\nbody\n", "A: 1\n\nbody\n"},
		{"in body only", "A: 1\n\nX-TUID: abcdefghijkl\n", "A: 1\n\nX-TUID: abcdefghijkl\n"},
		{"wrong length", "X-TUID: short\n\n", "X-TUID: short\n\n"},
		{"no newline at all", "X-TUID: abcdefghijkl", "X-TUID: abcdefghijkl"},
		{"empty", "", ""},
	} {
		if got := StripMbsyncTUID([]byte(tc.in)); string(got) != tc.want {
			t.Errorf("%s: StripMbsyncTUID(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestMaildirFileNames(t *testing.T) {
	uidlist := map[string]int64{"1700000000.M5P9.host": 7, "1700000001.M1P9.host": 8}
	for _, tc := range []struct {
		name  string
		flags []imap.Flag
		uid   int64
	}{
		{"1700000000.123_1.host,U=12:2,S", []imap.Flag{imap.FlagSeen}, 12},
		{"1700000000.123_1.host,U=3:2,FRS", []imap.Flag{imap.FlagAnswered, imap.FlagFlagged, imap.FlagSeen}, 3},
		{"1700000000.123_1.host,U=3:2,DTa", []imap.Flag{imap.FlagDeleted, imap.FlagDraft}, 3},
		{"1700000000.123_1.host,U=4", nil, 4},
		{"1700000000.123_1.host:2,", nil, -1},
		{"1700000000.M5P9.host,S=100,W=102:2,S", []imap.Flag{imap.FlagSeen}, 7},
		{"1700000001.M1P9.host:2,", nil, 8},
		{"garbage,U=x:2,Q", nil, -1},
	} {
		if got := maildirFlags(tc.name); !slices.Equal(got, tc.flags) {
			t.Errorf("maildirFlags(%q) = %v, want %v", tc.name, got, tc.flags)
		}
		if got := maildirUID(tc.name, uidlist); got != tc.uid {
			t.Errorf("maildirUID(%q) = %d, want %d", tc.name, got, tc.uid)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkMaildir(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadMaildirTreeVerbatim(t *testing.T) {
	root := t.TempDir()
	mkMaildir(t, filepath.Join(root, "INBOX"))
	mkMaildir(t, filepath.Join(root, "INBOX", "sub"))
	mkMaildir(t, filepath.Join(root, "Local", "2001"))
	writeFile(t, filepath.Join(root, "Local", "notes.txt"), "not a maildir") // Local itself has no cur/new
	writeFile(t, filepath.Join(root, "INBOX", ".mbsyncstate"), "state")
	// U=10 sorts after U=9 numerically, although "10" < "9" as text.
	writeFile(t, filepath.Join(root, "INBOX", "cur", "1.1_1.h,U=10:2,S"), "ten")
	writeFile(t, filepath.Join(root, "INBOX", "new", "1.1_2.h,U=9"), "nine")
	writeFile(t, filepath.Join(root, "INBOX", "tmp", "1.1_3.h,U=1"), "in tmp: ignored")
	writeFile(t, filepath.Join(root, "INBOX", "sub", "cur", "2.2_1.h,U=1:2,RS"), "sub one")
	writeFile(t, filepath.Join(root, "Local", "2001", "cur", "3.3_1.h,U=1:2,"), "old")

	got := ReadMaildirTree(t, root)
	want := map[string][]MaildirMsg{
		"INBOX":      {{[]byte("nine"), nil}, {[]byte("ten"), []imap.Flag{imap.FlagSeen}}},
		"INBOX/sub":  {{[]byte("sub one"), []imap.Flag{imap.FlagAnswered, imap.FlagSeen}}},
		"Local/2001": {{[]byte("old"), nil}},
	}
	compareTree(t, got, want)
}

func TestReadMaildirTreeMaildirPlusPlus(t *testing.T) {
	root := t.TempDir()
	mkMaildir(t, root)
	mkMaildir(t, filepath.Join(root, ".Sent"))
	mkMaildir(t, filepath.Join(root, ".Local.2001"))
	// Dovecot's uidlist orders INBOX, whatever the file names say.
	writeFile(t, filepath.Join(root, "dovecot-uidlist"), "3 V1 N3 Gabc\n1 :200.M9P1.h\n2 :100.M10P1.h,S=5\n")
	writeFile(t, filepath.Join(root, "cur", "200.M9P1.h:2,S"), "first")
	writeFile(t, filepath.Join(root, "cur", "100.M10P1.h,S=5:2,F"), "second")
	writeFile(t, filepath.Join(root, ".Sent", "cur", "1.M1P1.h:2,S"), "sent")
	writeFile(t, filepath.Join(root, ".Local.2001", "new", "1.M1P1.h"), "old")

	got := ReadMaildirTree(t, root)
	want := map[string][]MaildirMsg{
		"INBOX":      {{[]byte("first"), []imap.Flag{imap.FlagSeen}}, {[]byte("second"), []imap.Flag{imap.FlagFlagged}}},
		"Sent":       {{[]byte("sent"), []imap.Flag{imap.FlagSeen}}},
		"Local/2001": {{[]byte("old"), nil}},
	}
	compareTree(t, got, want)
}

func compareTree(t *testing.T, got, want map[string][]MaildirMsg) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("folders %v, want %v", keys(got), keys(want))
	}
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Errorf("%s: %d messages, want %d", name, len(g), len(w))
			continue
		}
		for i := range w {
			if !bytes.Equal(g[i].Body, w[i].Body) || !slices.Equal(g[i].Flags, w[i].Flags) {
				t.Errorf("%s #%d = %q %v, want %q %v", name, i, g[i].Body, g[i].Flags, w[i].Body, w[i].Flags)
			}
		}
	}
}

func keys(m map[string][]MaildirMsg) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
