package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	lt "github.com/popbridge/popbridge/internal/legacytest"
)

func wlmStore(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Windows Live Mail")
	m := func(i int) [][]byte { return [][]byte{legacyMsg(i, "")} }
	err := lt.WriteWLM(root,
		[]lt.WLMFolder{{Dir: "Inbox", Msgs: [][]byte{legacyMsg(1, ""), legacyMsg(2, "")}}, {Dir: "Sent Items", Msgs: m(3)},
			{Dir: "Deleted Items", Msgs: m(4)}, {Dir: "Junk E-mail", Msgs: m(5)}, {Dir: "Drafts"}, {Dir: "Outbox"}},
		[]lt.WLMFolder{{Dir: "仕事", Msgs: m(6), Sub: []lt.WLMFolder{{Dir: "2019", Msgs: m(7)}}}, {Dir: "Inbox", Msgs: m(8)}},
		[]lt.WLMAccount{
			{Dir: "pop.example.jp", Name: "Home POP", Kind: "pop"},
			{Dir: "Hotmail (taro)", Name: "Hotmail", Kind: "http", Folders: []lt.WLMFolder{{Dir: "Inbox", Msgs: m(9)}}},
			{Dir: "imap.example.jp", Name: "Work IMAP", Kind: "imap", Folders: []lt.WLMFolder{{Dir: "INBOX", Msgs: m(10)}}},
			{Dir: "old.example.jp", Name: "古いPOP", Kind: "pop", Folders: []lt.WLMFolder{{Dir: "Inbox", Msgs: m(11)}}},
		})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestWLMWalk: the storage folders at the top (a user folder whose name is
// taken keeps its Storage Folders level), IMAP and Hotmail accounts
// skipped, a POP account's own mail below its name, Backup skipped.
func TestWLMWalk(t *testing.T) {
	root := wlmStore(t)
	if f, err := Detect(root); f != FormatWLM || err != nil {
		t.Fatalf("Detect = %q, %v", f, err)
	}
	folders, probs, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Deleted Items", "Inbox", "Junk E-mail", "Sent Items", "Storage Folders (container)", "Storage Folders/Inbox", "仕事", "仕事/2019", "古いPOP (container)", "古いPOP/Inbox"}
	if got := legacyPaths(folders); !slices.Equal(got, want) {
		t.Fatalf("folders:\n got %q\nwant %q\nproblems %v", got, want, probs)
	}
	for path, use := range map[string]string{"Sent Items": `\Sent`, "Deleted Items": `\Trash`, "Junk E-mail": `\Junk`, "Inbox": ""} {
		if f := folderByPath(t, folders, path); f.SpecialUse != use || f.Kind != KindEML {
			t.Errorf("%s: %q %v", path, f.SpecialUse, f.Kind)
		}
	}
	for _, want := range [][]string{{"IMAP account", "Work IMAP"}, {"Hotmail (HTTP) account", "Hotmail"}, {"Storage Folders/Inbox"}} {
		if !problemsContain(probs, want...) {
			t.Errorf("no problem %q in %v", want, probs)
		}
	}
	files, _, err := ListFiles(folderByPath(t, folders, "Inbox"))
	if err != nil || len(files) != 2 {
		t.Fatalf("Inbox: %d files, %v", len(files), err)
	}
	raw, _ := os.ReadFile(files[0].Path)
	if !bytes.Equal(ServeFile(raw), legacyMsg(1, "")) && !bytes.Equal(ServeFile(raw), legacyMsg(2, "")) {
		t.Errorf("served %q", ServeFile(raw))
	}
	// Windows Mail (Vista): everything in Local Folders.
	vista := filepath.Join(t.TempDir(), "Windows Mail")
	if err := lt.WriteWLMFolder(filepath.Join(vista, "Local Folders"), lt.WLMFolder{Dir: "Inbox", Msgs: [][]byte{legacyMsg(1, "")}}); err != nil {
		t.Fatal(err)
	}
	if err := lt.WriteWLMFolder(filepath.Join(vista, "Local Folders"), lt.WLMFolder{Dir: "Sent Items", Msgs: [][]byte{legacyMsg(2, "")}}); err != nil {
		t.Fatal(err)
	}
	if f, err := Detect(vista); f != FormatWLM || err != nil {
		t.Fatalf("Detect(Windows Mail) = %q, %v", f, err)
	}
	vf, _, err := Walk(vista, FormatAuto)
	if err != nil || !slices.Equal(legacyPaths(vf), []string{"Inbox", "Sent Items"}) {
		t.Errorf("Windows Mail: %q %v", legacyPaths(vf), err)
	}
}

func TestWLMAccountFile(t *testing.T) {
	utf16 := []byte{0xFF, 0xFE}
	for _, r := range "<?xml version=\"1.0\" encoding=\"utf-16\"?><MessageAccount><Account_Name type=\"SZ\">仕事</Account_Name><IMAP_Server type=\"SZ\">x</IMAP_Server></MessageAccount>" {
		utf16 = append(utf16, byte(r), byte(r>>8))
	}
	for _, c := range []struct {
		in         []byte
		name, kind string
		err        bool
	}{
		{[]byte(`<?xml version="1.0" encoding="utf-8"?><MessageAccount><Account_Name type="SZ">Home</Account_Name><POP3_Server type="SZ">pop</POP3_Server></MessageAccount>`), "Home", "pop", false},
		{utf16, "仕事", "imap", false},
		{[]byte("\xEF\xBB\xBF<MessageAccount><HTTPMail_Server>h</HTTPMail_Server></MessageAccount>"), "", "http", false},
		{[]byte("garbage"), "", "", true},
	} {
		n, k, err := wlmAccount(c.in)
		if n != c.name || k != c.kind || (err != nil) != c.err {
			t.Errorf("%q: %q %q %v", c.in, n, k, err)
		}
	}
}

// TestEudoraAndALMail: a Eudora mail directory ("From ???@???" separators,
// descmap.pce names, .toc files, a .fol folder) and AL-Mail's one file per
// message go through the mbox and eml readers.
func TestEudoraAndALMail(t *testing.T) {
	msg := func(i int) string {
		return "From ???@??? Mon Jan 02 15:04:05 2006\r\n" + string(legacyMsg(i, "", "From the body, not a separator", "more"))
	}
	root := mkTree(t, map[string]string{
		"In.mbx":                   msg(1) + msg(2),
		"In.toc":                   "\x01\x00binary toc",
		"Out.mbx":                  msg(3),
		"Out.toc":                  "",
		"Trash.mbx":                msg(4),
		"MYFOLD~1.MBX":             msg(5),
		"descmap.pce":              "In,In.mbx,S,N\r\nOut,Out.mbx,S,N\r\nTrash,Trash.mbx,S,N\r\nMy, Folder,MYFOLD~1.MBX,M,N\r\nProjects,PROJEC~1.FOL,F,N\r\n",
		"PROJEC~1.FOL/2019.mbx":    msg(6),
		"PROJEC~1.FOL/2019.toc":    "",
		"PROJEC~1.FOL/descmap.pce": "2019,2019.mbx,M,N\r\n",
	})
	if f, err := Detect(root); f != FormatThunderbird || err != nil {
		t.Fatalf("Detect = %q, %v", f, err)
	}
	folders, probs, err := Walk(root, FormatAuto)
	if err != nil || len(probs) != 0 {
		t.Fatalf("%v %v", err, probs)
	}
	want := []string{"In", "My, Folder", "Out", "Projects (container)", "Projects/2019", "Trash"}
	if got := legacyPaths(folders); !slices.Equal(got, want) {
		t.Fatalf("folders %q, want %q", got, want)
	}
	if folderByPath(t, folders, "Out").SpecialUse != `\Sent` || folderByPath(t, folders, "Trash").SpecialUse != `\Trash` {
		t.Error("Eudora's Out and Trash lack their special use")
	}
	in := folderByPath(t, folders, "In")
	f, _ := os.Open(in.Loc)
	defer f.Close()
	fi, _ := f.Stat()
	var got [][]byte
	_, probs, err = ScanMbox(f, in.Loc, 0, fi.Size(), func(e MboxEntry) error {
		got = append(got, ServeMbox(e.Raw))
		return nil
	})
	if err != nil || len(probs) != 0 || len(got) != 2 || !bytes.Equal(got[0], legacyMsg(1, "", "From the body, not a separator", "more")) {
		t.Errorf("In: %d messages %q; %v %v", len(got), got, probs, err)
	}

	// AL-Mail: one message per .ALM file.
	al := mkTree(t, map[string]string{"受信箱/00000001.ALM": string(legacyMsg(1, "")), "受信箱/00000002.alm": string(legacyMsg(2, ""))})
	if f, err := Detect(al); f != FormatEML || err != nil {
		t.Fatalf("Detect(AL-Mail) = %q, %v", f, err)
	}
	af, _, err := Walk(al, FormatAuto)
	if err != nil || !slices.Equal(legacyPaths(af), []string{"受信箱"}) {
		t.Fatalf("AL-Mail: %q %v", legacyPaths(af), err)
	}
	files, _, err := ListFiles(af[0])
	if err != nil || len(files) != 2 || !strings.HasSuffix(files[0].Path, "00000001.ALM") {
		t.Errorf("AL-Mail files: %v %v", files, err)
	}
}

func TestDetectLegacy(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		path  string
		want  Format
	}{
		{"becky data dir", map[string]string{"1234abcd.mb/Mailbox.ini": "[Account]\r\n"}, "", FormatBecky},
		{"becky mailbox", map[string]string{"1234abcd.mb/Mailbox.ini": ""}, "1234abcd.mb", FormatBecky},
		{"becky folder", map[string]string{"Folder.idx": "x", "5a000000.bmf": ""}, "", FormatBecky},
		{"dbx dir", map[string]string{"Inbox.dbx": "x"}, "", FormatDBX},
		{"dbx magic", map[string]string{"mail": "\xCF\xAD\x12\xFEjunk"}, "mail", FormatDBX},
		{"wlm store", map[string]string{"Mail.MSMessageStore": "", "Inbox/a.eml": "A: b\n"}, "", FormatWLM},
		{"wlm by name", map[string]string{"Windows Live Mail/Inbox/a.eml": "A: b\n"}, "Windows Live Mail", FormatWLM},
		{"apple mail dir", map[string]string{"V10/MailData/x": ""}, "", FormatAppleMail},
		{"apple version dir", map[string]string{"Mailboxes/A.mbox/Info.plist": ""}, "", FormatAppleMail},
		{"apple mailbox", map[string]string{"A.mbox/Messages/1.emlx": "1\nx"}, "A.mbox", FormatAppleMail},
		{"exported bundles", map[string]string{"Old.mbox/mbox": "From x\n"}, "", FormatAppleMail},
		{"single emlx", map[string]string{"1.emlx": "1\nx"}, "1.emlx", ""},
		{"thunderbird local folders stays", map[string]string{"Local Folders/Inbox": oneMsg}, "", FormatThunderbird},
	} {
		root := mkTree(t, c.files)
		got, err := Detect(filepath.Join(root, c.path))
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: Detect = %q, want an error", c.name, got)
			}
			continue
		}
		if got != c.want || err != nil {
			t.Errorf("%s: Detect = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}
