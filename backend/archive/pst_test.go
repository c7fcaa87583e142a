package archive

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// The sample PSTs that ship in the go-pst module.
var pstSampleDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/mooijtech/go-pst/v6").Output()
	if err != nil {
		return "", fmt.Errorf("go list go-pst: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "data"), nil
})

func pstSample(t testing.TB, name string) string {
	t.Helper()
	dir, err := pstSampleDir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// folderScan is what ScanPST gave for one folder.
type folderScan struct {
	folder   Folder
	msgs     []PSTMessage
	stats    PSTStats
	problems []Problem
}

// scanPSTFile walks path and scans every selectable folder.
func scanPSTFile(t testing.TB, path string) ([]Folder, []Problem, []folderScan) {
	t.Helper()
	folders, problems, err := Walk(path, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var scans []folderScan
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		s := folderScan{folder: f}
		var err error
		s.stats, s.problems, err = ScanPST(f.Loc, f.Ref, func(m PSTMessage) error {
			s.msgs = append(s.msgs, m)
			return nil
		})
		if err != nil {
			t.Fatalf("ScanPST %q: %v", f.Path, err)
		}
		scans = append(scans, s)
	}
	return folders, problems, scans
}

// sampleScans memoizes scanPSTFile of the sample files (read-only use).
var sampleScans sync.Map // path -> []folderScan

func scanSample(t testing.TB, path string) []folderScan {
	if v, ok := sampleScans.Load(path); ok {
		return v.([]folderScan)
	}
	_, _, scans := scanPSTFile(t, path)
	sampleScans.Store(path, scans)
	return scans
}

// mimeSummary is what a parsed message holds.
type mimeSummary struct {
	subject, messageID string
	filenames          []string // of attachments, sorted
	html, text, inline int      // part counts
	embedded           int      // message/rfc822 parts
}

// parseMIME parses raw with go-message, reads every part (recursing into
// message/rfc822 parts) and returns a summary.
func parseMIME(raw []byte) (mimeSummary, error) {
	var s mimeSummary
	err := parseMIMEInto(raw, &s, 0, false)
	slices.Sort(s.filenames)
	return s, err
}

// parseMIMELenient is parseMIME for a third party's output: malformed
// embedded messages and parameters are tolerated.
func parseMIMELenient(raw []byte) (mimeSummary, error) {
	var s mimeSummary
	err := parseMIMEInto(raw, &s, 0, true)
	slices.Sort(s.filenames)
	return s, err
}

var filenameParam = regexp.MustCompile(`(?i)filename(\*)?=(?:utf-8'')?"?([^";\r\n]+)"?`)

func parseMIMEInto(raw []byte, s *mimeSummary, depth int, lenient bool) error {
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if depth == 0 {
		h := mail.Header{Header: ent.Header}
		if s.subject, err = h.Subject(); err != nil {
			return fmt.Errorf("subject: %w", err)
		}
		s.messageID = strings.Trim(h.Get("Message-Id"), "<> \t")
	}
	return ent.Walk(func(path []int, part *message.Entity, err error) error {
		if err != nil {
			return err
		}
		mt, _, err := part.Header.ContentType()
		if err != nil {
			return fmt.Errorf("part %v: content type: %w", path, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return fmt.Errorf("part %v (%s): %w", path, mt, err)
		}
		var disp string
		var dparams map[string]string
		if part.Header.Has("Content-Disposition") {
			disp, dparams, err = part.Header.ContentDisposition()
		}
		if err != nil && lenient {
			raw := part.Header.Get("Content-Disposition")
			if m := filenameParam.FindStringSubmatch(raw); m != nil {
				name := m[2]
				if m[1] != "" {
					name, _ = url.PathUnescape(name)
				}
				dparams = map[string]string{"filename": name}
			}
			disp, _, _ = strings.Cut(strings.ToLower(raw), ";")
		} else if err != nil {
			return fmt.Errorf("part %v: content disposition: %w", path, err)
		}
		if name := dparams["filename"]; name != "" {
			s.filenames = append(s.filenames, name)
		}
		switch {
		case mt == "message/rfc822":
			s.embedded++
			if err := parseMIMEInto(body, s, depth+1, lenient); err != nil && !lenient {
				return err
			}
			return nil
		case mt == "text/html" && disp != "attachment":
			s.html++
		case mt == "text/plain" && disp != "attachment":
			s.text++
		case disp == "inline" && part.Header.Get("Content-Id") != "":
			s.inline++
		}
		return nil
	})
}

// checkWireFormat checks CRLF-only line ends and line lengths.
func checkWireFormat(t testing.TB, where string, raw []byte) {
	t.Helper()
	for i, c := range raw {
		switch {
		case c == '\n' && (i == 0 || raw[i-1] != '\r'):
			t.Fatalf("%s: bare LF at %d", where, i)
		case c == '\r' && (i+1 >= len(raw) || raw[i+1] != '\n'):
			t.Fatalf("%s: bare CR at %d", where, i)
		}
	}
	for n, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("%s: line %d has %d bytes", where, n+1, len(line))
		}
	}
}

func folderPaths(folders []Folder) []string {
	var out []string
	for _, f := range folders {
		p := strings.Join(f.Path, "/")
		if f.SpecialUse != "" {
			p += " " + f.SpecialUse
		}
		if f.NoSelect {
			p += " (noselect)"
		}
		out = append(out, p)
	}
	return out
}

func TestPSTWalkSamples(t *testing.T) {
	for _, c := range []struct {
		file     string
		folders  []string
		problems []string
	}{
		{"32-bit.pst", []string{`Deleted Items \Trash`}, []string{`folder "Calendar": skipped 1 appointment (not mail)`}},
		{"enron.pst", []string{
			`Deleted Items \Trash`, "Inbox", "Outbox", `Sent Items \Sent`, "bailey-s",
			"bailey-s/All documents", "bailey-s/Calendar", "bailey-s/Contacts", `bailey-s/Deleted Items \Trash`,
			`bailey-s/Drafts \Drafts`, "bailey-s/Inbox", "bailey-s/Notes inbox", `bailey-s/Sent \Sent`, `bailey-s/Sent Items \Sent`,
		}, nil},
		{"support.pst", []string{
			"Bozze", `Deleted Items \Trash`, `Drafts \Drafts`, "Posta eliminata", "Posta in arrivo", "Posta in uscita",
			"Posta indesiderata", "Posta inviata", "Recoverable Items", "Recoverable Items/Deletions",
			"Recoverable Items/Purges", "Recoverable Items/Versions", `Sent \Sent`, `Sent Messages \Sent`, `Trash \Trash`,
		}, nil},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := pstSample(t, c.file)
			folders, problems, err := Walk(path, FormatAuto)
			if err != nil {
				t.Fatal(err)
			}
			if got := folderPaths(folders); !slices.Equal(got, c.folders) {
				t.Errorf("folders:\n got %q\nwant %q", got, c.folders)
			}
			var got []string
			for _, p := range problems {
				if p.Path != path {
					t.Errorf("problem names %q, want %q", p.Path, path)
				}
				got = append(got, p.Err.Error())
			}
			if !slices.Equal(got, c.problems) {
				t.Errorf("problems:\n got %q\nwant %q", got, c.problems)
			}
			for _, f := range folders {
				if !f.NoSelect && (f.Kind != KindPST || f.Loc != path || f.Ref == "") {
					t.Errorf("folder %q: kind %v loc %q ref %q", f.Path, f.Kind, f.Loc, f.Ref)
				}
			}
		})
	}
}

func TestPSTScanSamples(t *testing.T) {
	for _, c := range []struct {
		file               string
		counts             map[string]int // messages per folder (others 0)
		html, attachments  int
		withHeaders, flags int
	}{
		{"32-bit.pst", map[string]int{}, 0, 0, 0, 0},
		{"enron.pst", map[string]int{
			"bailey-s/All documents": 846, "bailey-s/Calendar": 791, "bailey-s/Contacts": 10,
			"bailey-s/Deleted Items": 441, "bailey-s/Drafts": 41, "bailey-s/Inbox": 4,
			"bailey-s/Notes inbox": 10, "bailey-s/Sent": 20, "bailey-s/Sent Items": 15,
		}, 0, 168, 2178, 2178},
		{"support.pst", map[string]int{"Drafts": 6, "Sent Messages": 11}, 16, 2, 17, 17},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := pstSample(t, c.file)
			_, _, again := scanPSTFile(t, path)
			scans := scanSample(t, path)
			html, atts, withHeaders, flagged := 0, 0, 0, 0
			for i, s := range scans {
				name := strings.Join(s.folder.Path, "/")
				if len(s.msgs) != c.counts[name] || s.stats.Messages != len(s.msgs) {
					t.Errorf("folder %q: %d messages (stats %+v), want %d", name, len(s.msgs), s.stats, c.counts[name])
				}
				for _, p := range s.problems {
					t.Errorf("folder %q: problem %v", name, p)
				}
				if len(again[i].msgs) != len(s.msgs) {
					t.Fatalf("folder %q: second scan %d messages, first %d", name, len(again[i].msgs), len(s.msgs))
				}
				ids := make(map[string]bool)
				for k, m := range s.msgs {
					where := fmt.Sprintf("%s %q item %s", c.file, name, m.ID)
					if ids[m.ID] {
						t.Errorf("%s: duplicate ID", where)
					}
					ids[m.ID] = true
					m2 := again[i].msgs[k]
					if m2.ID != m.ID || !bytes.Equal(m2.Raw, m.Raw) || !slices.Equal(m2.Flags, m.Flags) || !m2.Received.Equal(m.Received) {
						t.Fatalf("%s: second scan differs", where)
					}
					checkWireFormat(t, where, m.Raw)
					sum, err := parseMIME(m.Raw)
					if err != nil {
						t.Fatalf("%s: %v\n%s", where, err, m.Raw)
					}
					html += sum.html
					atts += len(sum.filenames)
					if sum.messageID != "" {
						withHeaders++
					}
					if slices.Contains(m.Flags, `\Seen`) {
						flagged++
					}
					if m.Received.IsZero() {
						t.Errorf("%s: no received time", where)
					}
				}
			}
			if html != c.html || atts != c.attachments || withHeaders != c.withHeaders || flagged != c.flags {
				t.Errorf("html parts %d, attachments %d, with Message-ID %d, \\Seen %d; want %d, %d, %d, %d",
					html, atts, withHeaders, flagged, c.html, c.attachments, c.withHeaders, c.flags)
			}
		})
	}
}

// requireReadpst returns the path of pst-utils' readpst: a missing binary
// fails under CI and skips elsewhere.
func requireReadpst(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("readpst")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("readpst not found: apt-get install -y pst-utils")
		}
		t.Skip("readpst not found (apt-get install -y pst-utils)")
	}
	return p
}

// readpstItem is one message that readpst wrote.
type readpstItem struct {
	folder string
	sum    mimeSummary
}

// runReadpst converts file with readpst -r -e -D (one .eml per message,
// deleted-items folders included) and parses what it wrote.
func runReadpst(t *testing.T, bin, file string) []readpstItem {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin, "-q", "-j", "0", "-D", "-r", "-e", "-o", dir, file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("readpst: %v\n%s", err, out)
	}
	var items []readpstItem
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".eml") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(p))
		parts := strings.Split(filepath.ToSlash(rel), "/")
		sum, err := parseMIMELenient(raw)
		if err != nil && !message.IsUnknownCharset(err) {
			return fmt.Errorf("%s: %w", p, err)
		}
		// readpst's top directory is the store's display name.
		items = append(items, readpstItem{folder: strings.Join(parts[1:], "/"), sum: sum})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func TestPSTReadpstAgreement(t *testing.T) {
	bin := requireReadpst(t)
	for _, file := range []string{"32-bit.pst", "enron.pst", "support.pst"} {
		t.Run(file, func(t *testing.T) {
			path := pstSample(t, file)
			scans := scanSample(t, path)
			theirs := runReadpst(t, bin, path)
			type key struct{ folder, id, subject, files string }
			count := make(map[key]int)
			ours := make(map[string]int)
			for _, s := range scans {
				name := strings.Join(s.folder.Path, "/")
				for _, m := range s.msgs {
					sum, err := parseMIME(m.Raw)
					if err != nil {
						t.Fatal(err)
					}
					count[key{name, sum.messageID, strings.Join(strings.Fields(sum.subject), " "), strings.Join(sum.filenames, "|")}]++
					ours[name]++
				}
			}
			perFolder := make(map[string]int)
			for _, it := range theirs {
				k := key{it.folder, it.sum.messageID, strings.Join(strings.Fields(it.sum.subject), " "), strings.Join(it.sum.filenames, "|")}
				perFolder[it.folder]++
				if count[k] == 0 {
					t.Errorf("readpst has %+v, we do not", k)
					continue
				}
				count[k]--
			}
			for k, n := range count {
				if n > 0 {
					t.Errorf("we have %+v (x%d), readpst does not", k, n)
				}
			}
			for f, n := range ours {
				if perFolder[f] != n {
					t.Errorf("folder %q: readpst %d messages, we %d", f, perFolder[f], n)
				}
			}
			for f, n := range perFolder {
				if ours[f] != n {
					t.Errorf("folder %q: readpst %d messages, we %d", f, n, ours[f])
				}
			}
			total := 0
			for _, n := range ours {
				total += n
			}
			t.Logf("%d messages in %d folders agree with readpst", total, len(ours))
		})
	}
}

// peakRSS returns the process's peak resident set size in MiB (VmHWM), 0
// where /proc is not there.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// resetPeakRSS restarts VmHWM from the current RSS (Linux clear_refs 5),
// so a benchmark's peak excludes what set-up needed.
func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// benchScan indexes path the way an import does: Walk, then ScanPST on
// every folder, with the file opened afresh each time.
func benchScan(b *testing.B, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	resetPeakRSS()
	b.SetBytes(fi.Size())
	msgs, rebuilt := 0, 0
	for b.Loop() {
		dropPSTCache()
		folders, _, err := Walk(path, FormatPST)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range folders {
			if f.NoSelect {
				continue
			}
			if _, _, err := ScanPST(path, f.Ref, func(m PSTMessage) error {
				msgs++
				rebuilt += len(m.Raw)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(msgs)/sec, "msgs/s")
	b.ReportMetric(float64(rebuilt)/sec/1e6, "rebuilt-MB/s")
	b.ReportMetric(peakRSS(), "peak-RSS-MiB")
}

func BenchmarkScanPST(b *testing.B) {
	benchScan(b, pstSample(b, "enron.pst"))
}

// BenchmarkScanPSTLarge indexes a ~250 MB synthetic PST: 20,000 messages
// with text, HTML and a 8 KiB attachment each.
func BenchmarkScanPSTLarge(b *testing.B) {
	path := filepath.Join(b.TempDir(), "large.pst")
	func() {
		pb := newPSTBuilder(true, true)
		att := bytes.Repeat([]byte("attachment data "), 512)
		var folders []*tFolder
		nid := uint32(0x200004)
		for f := range 10 {
			fo := &tFolder{nid: uint32(0x8062 + 0x20*f), name: pUni(prDisplayName, fmt.Sprintf("Folder %d", f))}
			for i := range 2000 {
				body := strings.Repeat(fmt.Sprintf("message %d of folder %d, some text to read. ", i, f), 40)
				fo.items = append(fo.items, &tItem{nid: nid, class: "IPM.Note", props: []tProp{
					pUni(prSubject, fmt.Sprintf("message %d", i)),
					pUni(prTransportHeaders, fmt.Sprintf("From: a@example.com\r\nTo: b@example.com\r\nSubject: message %d\r\nMessage-ID: <%d.%d@example.com>\r\nDate: Mon, 1 Apr 2019 09:00:00 +0900\r\n", i, f, i)),
					pUni(prBody, body),
					pBin(prHTML, []byte("<html><body><p>"+body+"</p></body></html>")),
					pInt32(prMessageFlags, 1),
					pTime(prDeliveryTime, 1554076800+int64(i)),
				}, attachments: []*tAttach{{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachLongFilename, "a.bin"), pBin(prAttachData, att)}}}})
				nid += 0x20
			}
			folders = append(folders, fo)
		}
		pb.store(nil, folders)
		if err := os.WriteFile(path, pb.bytes(), 0o444); err != nil {
			b.Fatal(err)
		}
	}()
	benchScan(b, path)
}
