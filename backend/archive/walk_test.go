package archive

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mkTree creates files (content "" for an empty file; a name ending in "/"
// for a directory) under a new temporary directory.
func mkTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const oneMsg = "From x Mon Mar  4 09:12:33 2019\nSubject: s\n\nbody\n\n"

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		path  string // below root; "" = root
		want  Format // "" = error
	}{
		{"empty file", map[string]string{"f": ""}, "f", FormatMbox},
		{"mbox file", map[string]string{"f.txt": oneMsg}, "f.txt", FormatMbox},
		{"pst extension", map[string]string{"Outlook.PST": "whatever"}, "Outlook.PST", FormatPST},
		{"pst magic", map[string]string{"backup": "!BDN\x00\x00"}, "backup", FormatPST},
		{"single eml", map[string]string{"a.eml": "Subject: x\n\n"}, "a.eml", ""},
		{"text file", map[string]string{"notes": "hello\nFrom x\nA: b\n"}, "notes", ""},
		{"maildir", map[string]string{"cur/": "", "new/": ""}, "", FormatMaildir},
		{"cur without new", map[string]string{"cur/": "", "x.eml": "A: b\n"}, "", FormatEML},
		{"profile prefs.js", map[string]string{"prefs.js": "//"}, "", FormatThunderbird},
		{"profile Mail dir", map[string]string{"Mail/": ""}, "", FormatThunderbird},
		{"msf file", map[string]string{"Inbox.msf": ""}, "", FormatThunderbird},
		{"sbd dir", map[string]string{"Archive.sbd/": ""}, "", FormatThunderbird},
		{"named Local Folders", map[string]string{"Local Folders/": ""}, "Local Folders", FormatThunderbird},
		{"holds Local Folders", map[string]string{"Local Folders/Inbox": ""}, "", FormatThunderbird},
		{"mbox without extension", map[string]string{"Inbox": oneMsg}, "", FormatThunderbird},
		{"mbox with a dotted name", map[string]string{"v1.2": oneMsg}, "", FormatThunderbird},
		{"eml deep below", map[string]string{"a/b/c/d.EML": "A: b\n"}, "", FormatEML},
		{"empty dir", map[string]string{"x/": ""}, "x", ""},
		{"only unknown files", map[string]string{"a.txt": "x", "b": "y"}, "", ""},
		{"missing", map[string]string{}, "nope", ""},
	} {
		root := mkTree(t, c.files)
		path := filepath.Join(root, c.path)
		got, err := Detect(path)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: Detect = %q, want an error", c.name, got)
			} else if !strings.Contains(err.Error(), path) {
				t.Errorf("%s: error %q does not name %s", c.name, err, path)
			}
			continue
		}
		if got != c.want || err != nil {
			t.Errorf("%s: Detect = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for dir, want := range map[string]Format{
		"thunderbird": FormatThunderbird, "tb-maildir": FormatThunderbird, "maildir": FormatMaildir,
		"eml": FormatEML, "mbox/lf.mbox": FormatMbox, "mbox/empty.mbox": FormatMbox, "mbox": FormatThunderbird,
		"maildir/.Work": FormatMaildir, "eml/sub": FormatEML,
	} {
		if got, err := Detect(filepath.Join(fixtureRoot, dir)); got != want || err != nil {
			t.Errorf("Detect(%s) = %q, %v; want %q", dir, got, err, want)
		}
	}
}

func TestWalkRootErrors(t *testing.T) {
	root := mkTree(t, map[string]string{"x.pst": "!BDN", "f": oneMsg, "e.eml": "A: b\n", "tb/Inbox.msf": "", "md/cur/": "", "md/new/": ""})
	for _, c := range []struct {
		path   string
		format Format
		is     error
	}{
		{"x.pst", FormatAuto, ErrPSTCorrupt},
		{"x.pst", FormatPST, ErrPSTCorrupt},
		{"nope", FormatAuto, fs.ErrNotExist},
		{"nope", FormatMbox, fs.ErrNotExist},
		{"e.eml", FormatAuto, ErrUnknownFormat},
		{"f", FormatThunderbird, ErrUnknownFormat},
		{"f", FormatEML, ErrUnknownFormat},
		{"f", FormatMaildir, ErrUnknownFormat},
		{"tb", FormatMaildir, ErrUnknownFormat},
		{"f", Format("zip"), nil},
	} {
		path := filepath.Join(root, c.path)
		_, _, err := Walk(path, c.format)
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), path) {
			t.Errorf("Walk(%s, %q) err = %v; want %v naming the path", c.path, c.format, err, c.is)
		}
	}
	// Relative roots become absolute locations.
	wd, _ := os.Getwd()
	t.Chdir(root)
	folders, _, err := Walk("f", FormatAuto)
	t.Chdir(wd)
	if err != nil || len(folders) != 1 || folders[0].Loc != filepath.Join(root, "f") {
		t.Errorf("Walk(relative) = %+v, %v", folders, err)
	}
}

// TestWalkNames covers on-disk names that are not plain UTF-8: Shift_JIS
// bytes from old Windows archives, invalid bytes, control characters, and
// two names that end up the same.
func TestWalkNames(t *testing.T) {
	sjisSent := "\x91\x97\x90M\x8d\xcf\x82\xdd" // 送信済み in Shift_JIS
	root := mkTree(t, map[string]string{
		"Inbox.msf":                        "",
		sjisSent:                           oneMsg,
		sjisSent + ".sbd/2019":             oneMsg,
		"bad\xff":                          oneMsg,
		"ctl\x01":                          oneMsg,
		"送信済み.sbd/dup":                     oneMsg,
		"junk\xfe.sbd/":                    "",
		"Archiv\x82.sbd/Alt":               "",
		"Archiv\x82.sbd/Alt.sbd/x\x80\x81": oneMsg,
	})
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, root, folders, []wantFolder{
		{path: "Archiv\uFFFD", noSelect: true},
		{path: "Archiv\uFFFD/Alt", kind: KindMbox, loc: "Archiv\x82.sbd/Alt"},
		{path: "Archiv\uFFFD/Alt/x\uFFFD", kind: KindMbox, loc: "Archiv\x82.sbd/Alt.sbd/x\x80\x81"},
		{path: "bad\uFFFD", kind: KindMbox, loc: "bad\xff"},
		{path: "ctl\uFFFD", kind: KindMbox, loc: "ctl\x01"},
		{path: "junk\uFFFD", noSelect: true},
		{path: "送信済み", kind: KindMbox, loc: sjisSent, specialUse: `\Sent`},
		{path: "送信済み/2019", kind: KindMbox, loc: sjisSent + ".sbd/2019"},
		{path: "送信済み/dup", kind: KindMbox, loc: "送信済み.sbd/dup"},
	})
	// One problem per odd name (not one per use of it).
	var got []string
	for _, p := range problems {
		got = append(got, filepath.Base(p.Path)+": "+p.Err.Error())
	}
	slices.Sort(got)
	want := []string{
		"Archiv\x82: folder name is not UTF-8; invalid bytes replaced: \"Archiv\uFFFD\"",
		"bad\xff: folder name is not UTF-8; invalid bytes replaced: \"bad\uFFFD\"",
		"ctl\x01: folder name has a \"/\" or control character; shown as \"ctl\uFFFD\"",
		"junk\xfe: folder name is not UTF-8; invalid bytes replaced: \"junk\uFFFD\"",
		"x\x80\x81: folder name is not UTF-8; invalid bytes replaced: \"x\uFFFD\"",
		sjisSent + ": folder name is not UTF-8; decoded as Shift_JIS: \"送信済み\"",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

func TestWalkDuplicateNames(t *testing.T) {
	root := mkTree(t, map[string]string{
		"Inbox.msf":                     "",
		"送信済み":                          oneMsg,
		"\x91\x97\x90M\x8d\xcf\x82\xdd": oneMsg, // the same name in Shift_JIS
	})
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(folders) != 1 || folders[0].Path[0] != "送信済み" {
		t.Errorf("folders = %+v", folders)
	}
	n := 0
	for _, p := range problems {
		if strings.Contains(p.Err.Error(), "has the same name as") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("problems = %v; want one about the duplicate", problems)
	}
}

// TestWalkSymlinks: symbolic links to directories are not followed (so a
// loop cannot hang the walk), links to files are, broken links are
// reported.
func TestWalkSymlinks(t *testing.T) {
	root := mkTree(t, map[string]string{
		"tb/Inbox.msf":    "",
		"tb/Inbox":        oneMsg,
		"tb/Loop.sbd/Sub": oneMsg,
		"eml/a.eml":       "A: b\n",
		"eml/d/b.eml":     "A: b\n",
		"md/cur/1.x:2,S":  "A: b\n",
		"md/new/":         "",
		"md/.Sub/cur/2.y": "A: b\n",
		"md/.Sub/new/":    "",
		"target/Real":     oneMsg,
		"target/real.eml": "A: b\n",
	})
	links := map[string]string{
		"tb/Loop.sbd/Again.sbd": "..",             // loop
		"tb/Linked":             "../target/Real", // file: followed
		"tb/Broken":             "nowhere",
		"eml/d/up":              "..",
		"eml/linked.eml":        "../target/real.eml",
		"md/.Link":              ".",
		"md/cur/3.z:2,F":        "../../target/real.eml",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	folders, problems, err := Walk(filepath.Join(root, "tb"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, filepath.Join(root, "tb"), folders, []wantFolder{
		{path: "Inbox", kind: KindMbox, loc: "Inbox"},
		{path: "Linked", kind: KindMbox, loc: "Linked"},
		{path: "Loop", noSelect: true},
		{path: "Loop/Sub", kind: KindMbox, loc: "Loop.sbd/Sub"},
	})
	problemsMatch(t, "tb", sortedProblems(problems), "tb/Broken: unreadable symbolic link", "tb/Loop.sbd/Again.sbd: symbolic link to a directory not followed")

	folders, problems, err = Walk(filepath.Join(root, "eml"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, filepath.Join(root, "eml"), folders, []wantFolder{
		{path: "", kind: KindEML},
		{path: "d", kind: KindEML, loc: "d"},
	})
	problemsMatch(t, "eml", problems, "eml/d/up: symbolic link to a directory not followed")
	files, _, err := ListFiles(folders[0])
	if err != nil || len(files) != 2 || filepath.Base(files[1].Path) != "linked.eml" || files[1].Size != 5 {
		t.Errorf("ListFiles(eml) = %+v, %v", files, err)
	}

	folders, problems, err = Walk(filepath.Join(root, "md"), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, filepath.Join(root, "md"), folders, []wantFolder{
		{path: "", kind: KindMaildir},
		{path: "Sub", kind: KindMaildir, loc: ".Sub"},
	})
	problemsMatch(t, "md", problems, "md/.Link: symbolic link to a directory not followed")
	files, _, err = ListFiles(folders[0])
	if err != nil || len(files) != 2 || !slices.Equal(files[1].Flags, []string{`\Flagged`}) {
		t.Errorf("ListFiles(md) = %+v, %v", files, err)
	}
}

func sortedProblems(p []Problem) []Problem {
	p = slices.Clone(p)
	slices.SortFunc(p, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	return p
}

func TestWalkUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permissions do not stop reads")
	}
	root := mkTree(t, map[string]string{
		"Inbox.msf":        "",
		"Inbox":            oneMsg,
		"Locked":           oneMsg,
		"Closed.sbd/Inner": oneMsg,
	})
	for _, p := range []string{"Locked", "Closed.sbd"} {
		if err := os.Chmod(filepath.Join(root, p), 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Join(root, p), 0o755) })
	}
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, root, folders, []wantFolder{
		{path: "Closed", noSelect: true},
		{path: "Inbox", kind: KindMbox, loc: "Inbox"},
	})
	problemsMatch(t, "unreadable", sortedProblems(problems), "Closed.sbd: cannot read directory", "Locked: cannot read")
}

// TestMaildirColonNames copies the Maildir++ fixture with the standard ":2,"
// info separator (the committed fixture uses "!2," so that it can be checked
// out on Windows) and checks the same flags come out.
func TestMaildirColonNames(t *testing.T) {
	src := filepath.Join(fixtureRoot, "maildir")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, strings.ReplaceAll(rel, "!2,", ":2,"))
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := Walk(src, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := Walk(dst, FormatMaildir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d vs %d folders", len(a), len(b))
	}
	for i := range a {
		if a[i].NoSelect {
			continue
		}
		fa, _, err1 := ListFiles(a[i])
		fb, pb, err2 := ListFiles(b[i])
		if err1 != nil || err2 != nil || len(pb) != 0 || len(fa) != len(fb) {
			t.Fatalf("%q: %v %v %v, %d vs %d", a[i].Path, err1, err2, pb, len(fa), len(fb))
		}
		for k := range fa {
			if !slices.Equal(fa[k].Flags, fb[k].Flags) || strings.ReplaceAll(filepath.Base(fa[k].Path), "!2,", ":2,") != filepath.Base(fb[k].Path) {
				t.Errorf("%q file %d: %s %q vs %s %q", a[i].Path, k, fa[k].Path, fa[k].Flags, fb[k].Path, fb[k].Flags)
			}
		}
	}
}

func TestWalkMaildirLayouts(t *testing.T) {
	root := mkTree(t, map[string]string{
		"cur/":             "",
		"new/":             "",
		"tmp/1.x":          "A: b\n",
		"Work/cur/1.a:2,S": "A: b\n",
		"Work/new/":        "",
		"Work/Deep/cur/":   "",
		"Work/Deep/new/":   "",
		".Lists.Go/cur/":   "",
		".Lists.Go/new/":   "",
		"..Bad/cur/":       "",
		".Trailing./cur/":  "",
		".git/objects/":    "",
		"notes/readme":     "x",
		".Sent Items/cur/": "",
		".&U,BTFw-/cur/":   "",
		"dovecot-uidlist":  "",
	})
	folders, problems, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	checkFolders(t, root, folders, []wantFolder{
		{path: "", kind: KindMaildir},
		{path: "Lists", noSelect: true},
		{path: "Lists/Go", kind: KindMaildir, loc: ".Lists.Go"},
		{path: "Sent Items", kind: KindMaildir, loc: ".Sent Items", specialUse: `\Sent`},
		{path: "Work", kind: KindMaildir, loc: "Work"},
		{path: "Work/Deep", kind: KindMaildir, loc: "Work/Deep"},
		{path: "台北", kind: KindMaildir, loc: ".&U,BTFw-"},
	})
	problemsMatch(t, "layouts", sortedProblems(problems), "..Bad: Maildir++ folder name has an empty level", ".Trailing.: Maildir++ folder name has an empty level")

	// tmp/ is never listed; new/ without info has no flags.
	files, _, err := ListFiles(folders[0])
	if err != nil || len(files) != 0 {
		t.Errorf("root files = %+v, %v", files, err)
	}
}

func TestListFilesErrors(t *testing.T) {
	root := mkTree(t, map[string]string{"md/cur/1.a": "A: b\n", "md/new/": "", "f": oneMsg})
	for _, f := range []Folder{
		{Path: []string{"x"}, NoSelect: true},
		{Kind: KindMbox, Loc: filepath.Join(root, "f")},
		{Kind: KindMaildir, Loc: filepath.Join(root, "f")},
		{Kind: KindEML, Loc: filepath.Join(root, "missing")},
		{Kind: Kind(99), Loc: root},
	} {
		if _, _, err := ListFiles(f); err == nil {
			t.Errorf("ListFiles(%+v): no error", f)
		}
	}
	// A Maildir whose new/ vanished: a problem, cur/ still listed.
	if err := os.Remove(filepath.Join(root, "md/new")); err != nil {
		t.Fatal(err)
	}
	files, problems, err := ListFiles(Folder{Kind: KindMaildir, Loc: filepath.Join(root, "md")})
	if err != nil || len(files) != 1 {
		t.Fatalf("ListFiles = %v, %v", files, err)
	}
	problemsMatch(t, "no new/", problems, "md/new: cannot read directory")
}

func TestListFilesFixtureOrder(t *testing.T) {
	want := map[string][]string{
		"maildir": {"cur/999999999.M9P100.mail.example.com!2,RSa", "cur/1262304000.M1P100.mail.example.com,S=512!2,S", "new/1262304100.M2P100.mail.example.com"},
		"eml":     {"2.eml", "10.eml", "Note.EML", "headers-only.eml"},
	}
	for dir, names := range want {
		folders, _, err := Walk(filepath.Join(fixtureRoot, dir), FormatAuto)
		if err != nil {
			t.Fatal(err)
		}
		files, problems, err := ListFiles(folders[0])
		if err != nil || len(problems) != 0 {
			t.Fatalf("%s: %v %v", dir, problems, err)
		}
		var got []string
		for _, f := range files {
			rel, _ := filepath.Rel(folders[0].Loc, f.Path)
			got = append(got, filepath.ToSlash(rel))
			fi, err := os.Stat(f.Path)
			if err != nil || fi.Size() != f.Size || !fi.ModTime().Equal(f.ModTime) {
				t.Errorf("%s: Size/ModTime mismatch", f.Path)
			}
		}
		if !slices.Equal(got, names) {
			t.Errorf("%s order %q, want %q", dir, got, names)
		}
	}
}
