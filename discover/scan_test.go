package discover

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/backend/archive"
)

func tbMsg(subject, status string) string {
	return "From a@example.com Mon Jan  2 15:04:05 2006\nX-Mozilla-Status: " + status + "\nFrom: a@example.com\nSubject: " + subject + "\n\nbody of " + subject + "\n\n"
}

func TestScanThunderbird(t *testing.T) {
	home := t.TempDir()
	m1, gone, m3, s1, sub1, sub2 := tbMsg("one", "0001"), tbMsg("deleted", "0009"), tbMsg("three", "0000"), tbMsg("sent", "0001"), tbMsg("sub 1", "0000"), tbMsg("sub 2", "0000")
	plantStores(t, home, map[string]string{
		"p/prefs.js":                         "",
		"p/Mail/Local Folders/Inbox":         m1 + gone + m3,
		"p/Mail/Local Folders/Inbox.msf":     "",
		"p/Mail/Local Folders/Sent":          s1,
		"p/Mail/Local Folders/Inbox.sbd/Sub": sub1 + sub2,
		"p/Mail/Local Folders/Trash":         "",
	})
	sc := ScanStore(context.Background(), Store{Path: filepath.Join(home, "p"), Format: "thunderbird", Client: "Thunderbird", Name: "default"})
	if sc.Error != "" || sc.Locked {
		t.Fatalf("scan: %+v", sc)
	}
	want := map[string]ScannedFolder{
		"Local Folders/Inbox":     {"Local Folders/Inbox", 2, int64(len(m1) + len(m3))},
		"Local Folders/Inbox/Sub": {"Local Folders/Inbox/Sub", 2, int64(len(sub1) + len(sub2))},
		"Local Folders/Sent":      {"Local Folders/Sent", 1, int64(len(s1))},
		"Local Folders/Trash":     {"Local Folders/Trash", 0, 0},
	}
	if len(sc.Folders) != len(want) {
		t.Fatalf("folders %+v", sc.Folders)
	}
	for _, f := range sc.Folders {
		if want[f.Name] != f {
			t.Errorf("folder %+v, want %+v", f, want[f.Name])
		}
	}
	if sc.Messages != 5 || sc.Bytes != int64(len(m1)+len(m3)+len(s1)+len(sub1)+len(sub2)) {
		t.Errorf("totals %d messages %d bytes", sc.Messages, sc.Bytes)
	}
}

// goPSTSample copies one of go-pst's sample files (a real Outlook PST).
func goPSTSample(t *testing.T, name, to string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/mooijtech/go-pst/v6").Output()
	if err != nil {
		t.Fatalf("locating the go-pst module (sample PSTs): %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "data", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanPSTAndLocked(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "Outlook.pst")
	goPSTSample(t, "support.pst", p)
	st := Store{Path: p, Format: "pst", Client: "Outlook", Name: "Outlook"}
	sc := ScanStore(context.Background(), st)
	if sc.Error != "" || sc.Locked || len(sc.Folders) == 0 {
		t.Fatalf("scan: %+v", sc)
	}
	// The same counts as reading every message.
	folders, _, err := archive.Walk(p, archive.FormatPST)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		stats, _, err := archive.ScanPST(p, f.Ref, func(archive.PSTMessage) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		total += stats.Messages
	}
	fi, _ := os.Stat(p)
	if sc.Messages != total || total == 0 || sc.Bytes != fi.Size() {
		t.Fatalf("scan counted %d messages, %d bytes; reading them gives %d, the file has %d bytes", sc.Messages, sc.Bytes, total, fi.Size())
	}

	// Outlook holds the file: the scan says so and reads nothing.
	openForScan = func(name string) (*os.File, error) {
		return nil, &os.PathError{Op: "open", Path: name, Err: ErrLocked}
	}
	defer func() { openForScan = os.Open }()
	sc = ScanStore(context.Background(), st)
	if !sc.Locked || sc.Error == "" || len(sc.Folders) != 0 || sc.Messages != 0 {
		t.Fatalf("locked scan: %+v", sc)
	}
	// A Thunderbird mbox held open the same way.
	home := t.TempDir()
	plantStores(t, home, map[string]string{"p/prefs.js": "", "p/Mail/Local Folders/Inbox": tbOneMessage})
	sc = ScanStore(context.Background(), Store{Path: filepath.Join(home, "p"), Format: "thunderbird"})
	if !sc.Locked || len(sc.Folders) != 0 {
		t.Fatalf("locked mbox scan: %+v", sc)
	}
	openForScan = os.Open

	if sc := ScanStore(context.Background(), Store{Path: filepath.Join(dir, "missing.pst"), Format: "pst"}); sc.Error == "" || sc.Locked {
		t.Fatalf("missing file: %+v", sc)
	}
}
