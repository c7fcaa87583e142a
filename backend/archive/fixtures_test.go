package archive

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixtureRoot is the hand-made fixture tree (see its README.md).
const fixtureRoot = "../../testdata/archive"

const demoRoot = "../../testdata/demo"

// fixtureSources are the fixture roots treated as archive sources.
var fixtureSources = []string{
	"mbox/crlf.mbox",
	"mbox/empty.mbox",
	"mbox/japanese.mbox",
	"mbox/leading-junk.mbox", // not detected: needs FormatMbox
	"mbox/lf.mbox",
	"mbox/mboxo.mbox",
	"mbox/mboxrd.mbox",
	"mbox/nomsgid-1969.mbox",
	"mbox/status.mbox",
	"mbox/truncated.mbox",
	"thunderbird",
	"tb-maildir",
	"maildir",
	"eml",
}

// sourceFormat is the format a fixture source is configured with.
func sourceFormat(src string) Format {
	if src == "mbox/leading-junk.mbox" {
		return FormatMbox
	}
	return FormatAuto
}

type metaWant struct {
	flags    []string
	expunged bool
	uidl     string
}

func flags(f ...string) []string { return f }

// fixtureMeta lists, for every folder of every fixture source (by its
// location relative to fixtureRoot), what is known about each message in
// archive order, expunged ones included. Folders without messages list none.
var fixtureMeta = map[string][]metaWant{
	"mbox/crlf.mbox":         {{}, {}},
	"mbox/empty.mbox":        nil,
	"mbox/japanese.mbox":     {{}, {}},
	"mbox/leading-junk.mbox": {{}},
	"mbox/lf.mbox":           {{}, {uidl: "0000001a5c7d3e21"}, {}},
	"mbox/mboxo.mbox":        {{}, {}},
	"mbox/mboxrd.mbox":       {{}, {}},
	"mbox/nomsgid-1969.mbox": {{}, {}},
	"mbox/status.mbox": {
		{flags: flags(`\Answered`, `\Seen`), uidl: "UID1-abc"},
		{},
		{flags: flags(`\Draft`, `\Flagged`, `\Seen`)},
		{flags: flags(`\Deleted`)},
	},
	"mbox/truncated.mbox": {{}, {}},

	"thunderbird/Mail/Local Folders/Inbox": {
		{flags: flags(`\Seen`)},
		{flags: flags(`\Seen`), expunged: true},
		{flags: flags(`$label1`, `\Answered`, `\Flagged`, `\Seen`, `todo`)},
		{flags: flags(`$Forwarded`, `$label2`, `\Seen`)},
	},
	"thunderbird/Mail/Local Folders/Sent":              {{flags: flags(`$MDNSent`, `\Seen`)}, {flags: flags(`\Seen`)}},
	"thunderbird/Mail/Local Folders/Trash":             nil,
	"thunderbird/Mail/Local Folders/Unsent Messages":   nil,
	"thunderbird/Mail/Local Folders/Drafts":            {{}},
	"thunderbird/Mail/Local Folders/Projects":          {{flags: flags(`\Seen`)}},
	"thunderbird/Mail/Local Folders/Projects.sbd/2019": {{flags: flags(`\Flagged`, `\Seen`, `todo`)}, {}},
	"thunderbird/Mail/Local Folders/送信済みアイテム":          {{flags: flags(`\Seen`)}},
	"thunderbird/Mail/Local Folders/Archives.sbd/2018": {{flags: flags(`\Seen`)}},
	"thunderbird/Mail/pop.example.com/Inbox":           {{flags: flags(`\Seen`), uidl: "GmailId16a0b1c2d3e4f5a6"}, {}},
	"thunderbird/Mail/pop.example.com/Trash":           nil,

	"tb-maildir/Inbox":          {{flags: flags(`\Seen`)}, {flags: flags(`\Seen`), expunged: true}, {}},
	"tb-maildir/Inbox.sbd/Work": {{flags: flags(`\Flagged`, `\Seen`)}},
	"tb-maildir/Sent":           {{flags: flags(`\Seen`)}},

	"maildir":                {{flags: flags(`\Answered`, `\Seen`, `todo`)}, {flags: flags(`\Seen`)}, {}},
	"maildir/.Work":          {{flags: flags(`\Flagged`, `\Seen`)}},
	"maildir/.Work.Reports":  {{flags: flags(`$Forwarded`, `\Seen`)}, {}},
	"maildir/.&kAFP4W4IMH8-": {{flags: flags(`\Seen`)}},
	"maildir/.Archive.2019":  {{flags: flags(`\Seen`)}},
	"maildir/.Q&A":           {{}},
	"maildir/.Trash":         {{flags: flags(`\Deleted`, `\Seen`)}},

	"eml":                  {{}, {}, {flags: flags(`$label3`, `\Flagged`, `\Seen`)}, {}},
	"eml/sub":              {{}, {}},
	"eml/empty-mid/deeper": {{}},
	"eml/仕事":               {{}},
}

// fixtureMessage is one message read from a fixture folder.
type fixtureMessage struct {
	meta   Meta
	served []byte
	where  string
}

// readFolder reads every message of a selectable folder the way the index
// will: ScanMbox + ServeMbox, or ListFiles + ServeFile.
func readFolder(t testing.TB, f Folder) ([]fixtureMessage, []Problem) {
	t.Helper()
	var msgs []fixtureMessage
	switch f.Kind {
	case KindMbox:
		file, err := os.Open(f.Loc)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		fi, err := file.Stat()
		if err != nil {
			t.Fatal(err)
		}
		next, problems, err := ScanMbox(file, f.Loc, 0, fi.Size(), func(e MboxEntry) error {
			msgs = append(msgs, fixtureMessage{
				meta:   ParseMeta(e.Raw),
				served: ServeMbox(e.Raw),
				where:  fmt.Sprintf("%s at offset %d", f.Loc, e.Offset),
			})
			return nil
		})
		if err != nil || next != fi.Size() {
			t.Fatalf("ScanMbox(%s) = %d, %v; want %d, nil", f.Loc, next, err, fi.Size())
		}
		return msgs, problems
	default:
		files, problems, err := ListFiles(f)
		if err != nil {
			t.Fatalf("ListFiles(%s): %v", f.Loc, err)
		}
		for _, fe := range files {
			raw, err := os.ReadFile(fe.Path)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(raw)) != fe.Size {
				t.Errorf("%s: Size = %d, file has %d bytes", fe.Path, fe.Size, len(raw))
			}
			m := ParseMeta(raw)
			m.Flags = unionFlags(m.Flags, fe.Flags)
			msgs = append(msgs, fixtureMessage{meta: m, served: ServeFile(raw), where: fe.Path})
		}
		return msgs, problems
	}
}

func unionFlags(a, b []string) []string {
	u := append(slices.Clone(a), b...)
	if len(u) == 0 {
		return nil
	}
	slices.Sort(u)
	return slices.Compact(u)
}

func relLoc(t testing.TB, loc string) string {
	t.Helper()
	root, err := filepath.Abs(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, loc)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(rel)
}

// TestFixturesServed walks every fixture source, reads every message and
// compares the served bytes with testdata/archive/expected byte for byte,
// and the flags, expunged bit and UIDL with fixtureMeta.
func TestFixturesServed(t *testing.T) {
	seenFolders := map[string]bool{}
	for _, src := range fixtureSources {
		folders, _, err := Walk(filepath.Join(fixtureRoot, src), sourceFormat(src))
		if err != nil {
			t.Fatalf("Walk(%s): %v", src, err)
		}
		for _, f := range folders {
			if f.NoSelect {
				continue
			}
			rel := relLoc(t, f.Loc)
			seenFolders[rel] = true
			want, ok := fixtureMeta[rel]
			if !ok {
				t.Errorf("folder %s (%q) is missing from fixtureMeta", rel, f.Path)
				continue
			}
			msgs, _ := readFolder(t, f)
			if len(msgs) != len(want) {
				t.Errorf("%s: %d messages, want %d", rel, len(msgs), len(want))
				continue
			}
			shown := 0
			for i, m := range msgs {
				w := want[i]
				if !slices.Equal(m.meta.Flags, w.flags) || m.meta.Expunged != w.expunged || m.meta.UIDL != w.uidl {
					t.Errorf("%s message %d (%s): meta = %+v; want flags %q expunged %v uidl %q",
						rel, i+1, m.where, m.meta, w.flags, w.expunged, w.uidl)
				}
				if m.meta.Expunged {
					continue
				}
				shown++
				expPath := filepath.Join(fixtureRoot, "expected", filepath.FromSlash(rel), fmt.Sprintf("%d.eml", shown))
				exp, err := os.ReadFile(expPath)
				if err != nil {
					t.Errorf("%s message %d: %v", rel, i+1, err)
					continue
				}
				if !bytes.Equal(m.served, exp) {
					t.Errorf("%s message %d (%s): served bytes differ from %s\n got: %q\nwant: %q",
						rel, i+1, m.where, expPath, m.served, exp)
				}
			}
			// No expected file beyond the shown messages.
			extra := filepath.Join(fixtureRoot, "expected", filepath.FromSlash(rel), fmt.Sprintf("%d.eml", shown+1))
			if _, err := os.Stat(extra); err == nil {
				t.Errorf("%s: %s exists but only %d messages are shown", rel, extra, shown)
			}
		}
	}
	for rel := range fixtureMeta {
		if !seenFolders[rel] {
			t.Errorf("fixtureMeta lists %s, but no fixture walk found it", rel)
		}
	}
	// Every expected/ directory belongs to a folder that was read.
	expRoot := filepath.Join(fixtureRoot, "expected")
	err := filepath.WalkDir(expRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".eml") {
			dir, _ := filepath.Rel(expRoot, filepath.Dir(p))
			if !seenFolders[filepath.ToSlash(dir)] {
				t.Errorf("%s has no matching fixture folder", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type wantFolder struct {
	path       string // components joined with "/"
	kind       Kind
	loc        string // relative to the walked root ("" for the root itself)
	specialUse string
	noSelect   bool
}

func checkFolders(t *testing.T, root string, got []Folder, want []wantFolder) {
	t.Helper()
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	var gotW []wantFolder
	for _, f := range got {
		w := wantFolder{path: strings.Join(f.Path, "/"), specialUse: f.SpecialUse, noSelect: f.NoSelect}
		if !f.NoSelect {
			w.kind = f.Kind
			if !filepath.IsAbs(f.Loc) {
				t.Errorf("folder %q: Loc %q is not absolute", f.Path, f.Loc)
			}
			rel, err := filepath.Rel(absRoot, f.Loc)
			if err != nil {
				t.Fatal(err)
			}
			if rel != "." {
				w.loc = filepath.ToSlash(rel)
			}
		} else if f.Kind != 0 || f.Loc != "" {
			t.Errorf("NoSelect folder %q has Kind %v Loc %q", f.Path, f.Kind, f.Loc)
		}
		gotW = append(gotW, w)
	}
	if !slices.Equal(gotW, want) {
		t.Errorf("Walk(%s) folders:\n got: %+v\nwant: %+v", root, gotW, want)
	}
	checkFolderInvariants(t, got)
}

// checkFolderInvariants checks what the package doc promises for every
// Walk result.
func checkFolderInvariants(t testing.TB, folders []Folder) {
	t.Helper()
	have := map[string]bool{}
	for i, f := range folders {
		if i > 0 && comparePath(folders[i-1].Path, f.Path) >= 0 {
			t.Errorf("folders not sorted or duplicated: %q then %q", folders[i-1].Path, f.Path)
		}
		have[pathKey(f.Path)] = true
		for _, c := range f.Path {
			if c == "" || strings.ContainsFunc(c, badNameRune) || !utf8Valid(c) {
				t.Errorf("bad component %q in %q", c, f.Path)
			}
		}
		if f.NoSelect && f.SpecialUse != "" {
			t.Errorf("NoSelect folder %q has special use %s", f.Path, f.SpecialUse)
		}
	}
	for _, f := range folders {
		for i := 1; i < len(f.Path); i++ {
			if !have[pathKey(f.Path[:i])] {
				t.Errorf("folder %q has no parent %q in the list", f.Path, f.Path[:i])
			}
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

func problemsMatch(t *testing.T, what string, got []Problem, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d problems %v; want %d matching %q", what, len(got), got, len(want), want)
		return
	}
	for i, p := range got {
		if !strings.Contains(p.Error(), want[i]) {
			t.Errorf("%s: problem %d = %q; want it to contain %q", what, i, p.Error(), want[i])
		}
	}
}

func TestWalkThunderbirdProfile(t *testing.T) {
	root := filepath.Join(fixtureRoot, "thunderbird")
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	lf := "Mail/Local Folders/"
	checkFolders(t, root, folders, []wantFolder{
		{path: "Local Folders", noSelect: true},
		{path: "Local Folders/Archives", noSelect: true},
		{path: "Local Folders/Archives/2018", kind: KindMbox, loc: lf + "Archives.sbd/2018"},
		{path: "Local Folders/Drafts", kind: KindMbox, loc: lf + "Drafts", specialUse: `\Drafts`},
		{path: "Local Folders/Inbox", kind: KindMbox, loc: lf + "Inbox"},
		{path: "Local Folders/Projects", kind: KindMbox, loc: lf + "Projects"},
		{path: "Local Folders/Projects/2019", kind: KindMbox, loc: lf + "Projects.sbd/2019"},
		{path: "Local Folders/Sent", kind: KindMbox, loc: lf + "Sent", specialUse: `\Sent`},
		{path: "Local Folders/Trash", kind: KindMbox, loc: lf + "Trash", specialUse: `\Trash`},
		{path: "Local Folders/Unsent Messages", kind: KindMbox, loc: lf + "Unsent Messages"},
		{path: "Local Folders/送信済みアイテム", kind: KindMbox, loc: lf + "送信済みアイテム", specialUse: `\Sent`},
		{path: "pop.example.com", noSelect: true},
		{path: "pop.example.com/Inbox", kind: KindMbox, loc: "Mail/pop.example.com/Inbox"},
		{path: "pop.example.com/Trash", kind: KindMbox, loc: "Mail/pop.example.com/Trash", specialUse: `\Trash`},
	})
	problemsMatch(t, "thunderbird", problems, "Local Folders/Unknown: not an mbox file")
	if problems[0].Offset != -1 {
		t.Errorf("problem offset = %d, want -1", problems[0].Offset)
	}

	// The account directory on its own is a Thunderbird mail directory.
	root = filepath.Join(fixtureRoot, "thunderbird/Mail/Local Folders")
	if f, err := Detect(root); err != nil || f != FormatThunderbird {
		t.Errorf("Detect(%s) = %v, %v", root, f, err)
	}
	folders, _, err = Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(folders) != 10 || strings.Join(folders[5].Path, "/") != "Projects/2019" {
		t.Errorf("Walk(Local Folders) = %d folders, [5] = %q", len(folders), folders[min(5, len(folders)-1)].Path)
	}
	// So is Mail/ (accounts as first component).
	root = filepath.Join(fixtureRoot, "thunderbird/Mail")
	folders2, _, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	all, _, _ := Walk(filepath.Join(fixtureRoot, "thunderbird"), FormatAuto)
	if len(folders2) != len(all) {
		t.Errorf("Walk(Mail) = %d folders, Walk(profile) = %d", len(folders2), len(all))
	}
}

func TestWalkThunderbirdMaildirStore(t *testing.T) {
	root := filepath.Join(fixtureRoot, "tb-maildir")
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, root, folders, []wantFolder{
		{path: "Inbox", kind: KindMaildir, loc: "Inbox"},
		{path: "Inbox/Work", kind: KindMaildir, loc: "Inbox.sbd/Work"},
		{path: "Sent", kind: KindMaildir, loc: "Sent", specialUse: `\Sent`},
	})
	problemsMatch(t, "tb-maildir", problems)
}

func TestWalkMaildir(t *testing.T) {
	root := filepath.Join(fixtureRoot, "maildir")
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, root, folders, []wantFolder{
		{path: "", kind: KindMaildir},
		{path: "Archive", noSelect: true},
		{path: "Archive/2019", kind: KindMaildir, loc: ".Archive.2019"},
		{path: "Q&A", kind: KindMaildir, loc: ".Q&A"},
		{path: "Trash", kind: KindMaildir, loc: ".Trash", specialUse: `\Trash`},
		{path: "Work", kind: KindMaildir, loc: ".Work"},
		{path: "Work/Reports", kind: KindMaildir, loc: ".Work.Reports"},
		{path: "送信済み", kind: KindMaildir, loc: ".&kAFP4W4IMH8-", specialUse: `\Sent`},
	})
	problemsMatch(t, "maildir", problems)
}

func TestWalkEML(t *testing.T) {
	root := filepath.Join(fixtureRoot, "eml")
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, root, folders, []wantFolder{
		{path: "", kind: KindEML},
		{path: "empty-mid", noSelect: true},
		{path: "empty-mid/deeper", kind: KindEML, loc: "empty-mid/deeper"},
		{path: "sub", kind: KindEML, loc: "sub"},
		{path: "仕事", kind: KindEML, loc: "仕事"},
	})
	problemsMatch(t, "eml", problems)
}

func TestWalkMboxFiles(t *testing.T) {
	for _, src := range fixtureSources {
		if !strings.HasPrefix(src, "mbox/") {
			continue
		}
		root := filepath.Join(fixtureRoot, src)
		folders, problems, err := Walk(root, sourceFormat(src))
		if err != nil {
			t.Fatalf("Walk(%s): %v", src, err)
		}
		checkFolders(t, root, folders, []wantFolder{{kind: KindMbox}})
		if src == "mbox/leading-junk.mbox" {
			if _, err := Detect(root); !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), `format = "mbox"`) {
				t.Errorf("Detect(%s) err = %v; want ErrUnknownFormat with a hint", src, err)
			}
		}
		problemsMatch(t, src, problems)
	}

	// The mbox directory as a whole: files holding mbox data are folders
	// named after the file; the empty one has an extension and no .msf, so
	// it is not taken for a folder; non-mbox files with an extension are
	// ignored silently.
	root := filepath.Join(fixtureRoot, "mbox")
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var want []wantFolder
	for _, n := range []string{"crlf.mbox", "japanese.mbox", "lf.mbox", "mboxo.mbox", "mboxrd.mbox", "nomsgid-1969.mbox", "status.mbox", "truncated.mbox"} {
		want = append(want, wantFolder{path: n, kind: KindMbox, loc: n})
	}
	checkFolders(t, root, folders, want)
	problemsMatch(t, "mbox dir", problems)
}

func TestGarbageFile(t *testing.T) {
	path := filepath.Join(fixtureRoot, "mbox/garbage.bin")
	if _, err := Detect(path); !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "garbage.bin") {
		t.Errorf("Detect(garbage) err = %v; want ErrUnknownFormat naming the file", err)
	}
	if _, _, err := Walk(path, FormatAuto); !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "garbage.bin") {
		t.Errorf("Walk(garbage) err = %v; want ErrUnknownFormat naming the file", err)
	}
	// Forced to mbox: one folder, a problem, and no messages.
	folders, problems, err := Walk(path, FormatMbox)
	if err != nil || len(folders) != 1 {
		t.Fatalf("Walk(garbage, mbox) = %v, %v", folders, err)
	}
	problemsMatch(t, "garbage walk", problems) // reported once, by the scan
	msgs, problems := readFolder(t, folders[0])
	if len(msgs) != 0 {
		t.Errorf("garbage: %d messages", len(msgs))
	}
	problemsMatch(t, "garbage scan", problems, "garbage.bin at offset 0: not an mbox file")
}

func TestScanFixtureProblems(t *testing.T) {
	for _, c := range []struct {
		src  string
		want []string
	}{
		{"mbox/truncated.mbox", []string{"truncated.mbox at offset 222: last message ends in the middle of a line"}},
		{"mbox/leading-junk.mbox", []string{"leading-junk.mbox at offset 0: 48 bytes before the first \"From \" line skipped"}},
		{"mbox/empty.mbox", nil},
		{"mbox/lf.mbox", nil},
	} {
		loc, _ := filepath.Abs(filepath.Join(fixtureRoot, c.src))
		_, problems := readFolder(t, Folder{Kind: KindMbox, Loc: loc})
		problemsMatch(t, c.src, problems, c.want...)
	}
}

func TestFixtureFromDates(t *testing.T) {
	loc, _ := filepath.Abs(filepath.Join(fixtureRoot, "mbox/nomsgid-1969.mbox"))
	f, err := os.Open(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	var dates []time.Time
	if _, _, err := ScanMbox(f, loc, 0, fi.Size(), func(e MboxEntry) error {
		dates = append(dates, e.FromDate)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []time.Time{
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1969, 7, 4, 12, 0, 0, 0, time.UTC),
	}
	if !slices.EqualFunc(dates, want, time.Time.Equal) {
		t.Errorf("FromDates = %v, want %v", dates, want)
	}
	if dates[0].Unix() != -1 {
		t.Errorf("first date Unix = %d, want -1", dates[0].Unix())
	}
}

// TestDemoTree checks the bundled demo archive used by "popbridge demo".
func TestDemoTree(t *testing.T) {
	folders, problems, err := Walk(demoRoot, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, demoRoot, folders, []wantFolder{
		{path: "Inbox", kind: KindMbox, loc: "Inbox"},
		{path: "Projects", kind: KindMbox, loc: "Projects"},
		{path: "Projects/2019", kind: KindMbox, loc: "Projects.sbd/2019"},
		{path: "Sent", kind: KindMbox, loc: "Sent", specialUse: `\Sent`},
		{path: "Trash", kind: KindMbox, loc: "Trash", specialUse: `\Trash`},
	})
	problemsMatch(t, "demo", problems)
	wantCounts := []int{8, 0, 2, 3, 0}
	var inboxFlags [][]string
	for i, f := range folders {
		msgs, problems := readFolder(t, f)
		problemsMatch(t, "demo "+f.Loc, problems)
		if len(msgs) != wantCounts[i] {
			t.Errorf("demo %q: %d messages, want %d", f.Path, len(msgs), wantCounts[i])
		}
		for _, m := range msgs {
			if m.meta.Expunged {
				t.Errorf("demo %s: expunged message", m.where)
			}
			if bytes.Contains(m.served, []byte("X-Mozilla-")) || !bytes.HasPrefix(m.served, []byte("Return-Path:")) && !bytes.HasPrefix(m.served, []byte("Message-ID:")) {
				t.Errorf("demo %s: served message starts %q", m.where, m.served[:min(40, len(m.served))])
			}
			if bytes.Contains(bytes.ReplaceAll(m.served, []byte("\r\n"), nil), []byte("\n")) {
				t.Errorf("demo %s: bare LF in served bytes", m.where)
			}
			if i == 0 {
				inboxFlags = append(inboxFlags, m.meta.Flags)
			}
		}
	}
	want := [][]string{{`\Seen`}, {`\Answered`, `\Seen`}, {`\Flagged`, `\Seen`}, nil, {`\Seen`}, {`\Flagged`}, {`\Answered`, `\Seen`}, nil}
	if !slices.EqualFunc(inboxFlags, want, slices.Equal) {
		t.Errorf("demo Inbox flags = %q, want %q", inboxFlags, want)
	}
}

type fileSeal struct {
	sum   [32]byte
	mtime time.Time
	mode  fs.FileMode
	size  int64
}

func sealTree(t *testing.T, root string) map[string]fileSeal {
	t.Helper()
	seal := map[string]fileSeal{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		s := fileSeal{mtime: fi.ModTime(), mode: fi.Mode(), size: fi.Size()}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.sum = sha256.Sum256(data)
		}
		seal[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seal
}

// TestSeal runs everything the package does over every fixture and checks
// that no file or directory changed (content, mtime, mode) and none was
// added or removed.
func TestSeal(t *testing.T) {
	roots := []string{fixtureRoot, demoRoot}
	before := map[string]fileSeal{}
	for _, r := range roots {
		maps := sealTree(t, r)
		for k, v := range maps {
			before[k] = v
		}
	}
	for _, src := range append(slices.Clone(fixtureSources), "mbox", "mbox/garbage.bin", "thunderbird/Mail", "../demo") {
		root := filepath.Join(fixtureRoot, src)
		Detect(root)
		for _, format := range []Format{FormatAuto, FormatMbox, FormatThunderbird, FormatMaildir, FormatEML} {
			if format == FormatAuto {
				format = sourceFormat(src)
			}
			folders, _, err := Walk(root, format)
			if err != nil {
				continue
			}
			for _, f := range folders {
				if f.NoSelect {
					continue
				}
				if f.Kind == KindMbox {
					readFolder(t, f)
				} else if f.Kind == KindMaildir {
					readFolder(t, f)
					ReadDovecotKeywords(f.Loc)
				} else {
					readFolder(t, f)
				}
			}
		}
	}
	after := map[string]fileSeal{}
	for _, r := range roots {
		for k, v := range sealTree(t, r) {
			after[k] = v
		}
	}
	if len(after) != len(before) {
		t.Errorf("fixture trees had %d entries, now %d", len(before), len(after))
	}
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			t.Errorf("%s disappeared", p)
		case a.sum != b.sum:
			t.Errorf("%s: content changed", p)
		case !a.mtime.Equal(b.mtime):
			t.Errorf("%s: mtime changed from %v to %v", p, b.mtime, a.mtime)
		case a.mode != b.mode || a.size != b.size:
			t.Errorf("%s: mode/size changed", p)
		}
	}
}

// TestSourcesReadOnly checks that the package's own code calls nothing that
// could write, rename, lock or create in an archive path.
func TestSourcesReadOnly(t *testing.T) {
	forbidden := []string{
		"os.Create", "os.OpenFile", "os.WriteFile", "os.Rename", "os.Remove", "os.Mkdir",
		"os.Chmod", "os.Chtimes", "os.Chown", "os.Lchown", "os.Symlink", "os.Link", "os.Truncate",
		"os.CreateTemp", "os.MkdirTemp", "Flock", "syscall.", "unix.", ".WriteAt(", ".Truncate(", ".Sync(",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, bad := range forbidden {
			if bytes.Contains(src, []byte(bad)) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
	if checked < 5 {
		t.Errorf("only %d source files checked", checked)
	}
}
