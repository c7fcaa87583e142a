package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	lt "github.com/popbridge/popbridge/internal/legacytest"
)

// beckyStore writes the Becky! data directory the tests share: two POP
// mailboxes (one with a CP932 name) and an IMAP one; the special folders;
// CP932 user folders with subfolders; every status bit; a deleted message;
// dot-stuffed lines; messages spread over several .bmf files.
func beckyStore(t *testing.T) (root string, inbox []lt.BeckyMsg) {
	t.Helper()
	root = t.TempDir()
	statuses := []uint32{0, lt.BeckyRead, lt.BeckyForwarded, lt.BeckyReplied, lt.BeckyMDNSent, lt.BeckyFlagged,
		lt.BeckyRead | lt.BeckyForwarded | lt.BeckyReplied | lt.BeckyMDNSent | lt.BeckyFlagged}
	for i, st := range statuses {
		inbox = append(inbox, lt.BeckyMsg{Raw: legacyMsg(i, ""), Status: st, Received: t2006.Add(timeHours(i))})
	}
	inbox = append(inbox,
		lt.BeckyMsg{Raw: legacyMsg(50, "", "deleted in Becky!"), Deleted: true},
		lt.BeckyMsg{Raw: legacyMsg(51, "", ".leading dot", "..two dots", ".", "end"), Status: lt.BeckyRead},
		lt.BeckyMsg{Raw: legacyMsg(52, "X-Becky-Attachment: 1\r\n", "日本語の本文"), Status: lt.BeckyRead})
	boxes := []lt.BeckyMailbox{
		{Dir: "4a5b6c7d.mb", Name: lt.SJIS("仕事用"), Folders: []lt.BeckyFolder{
			{Dir: "!!!!Inbox", Msgs: inbox, PerFile: 4, Sub: []lt.BeckyFolder{{Dir: lt.SJIS("受信サブ"), Msgs: []lt.BeckyMsg{{Raw: legacyMsg(60, "")}}}}},
			{Dir: "!!!!Outbox", Msgs: []lt.BeckyMsg{{Raw: legacyMsg(61, "X-Becky-Include: C:\\Users\\taro\\"+lt.SJIS("見積書")+".xls\r\n"), Status: lt.BeckyRead}}},
			{Dir: "!!!!Unsent", Msgs: []lt.BeckyMsg{{Raw: legacyMsg(62, "")}}},
			{Dir: "!Trash", Msgs: []lt.BeckyMsg{{Raw: legacyMsg(63, "")}}},
			{Dir: lt.SJIS("取引先"), Msgs: []lt.BeckyMsg{{Raw: legacyMsg(64, "")}, {Raw: legacyMsg(65, "")}},
				Sub: []lt.BeckyFolder{{Dir: "2019", Msgs: []lt.BeckyMsg{{Raw: legacyMsg(66, "")}}}}},
		}},
		{Dir: "11112222.mb", Name: "Private", Folders: []lt.BeckyFolder{{Dir: "!!!!Inbox", Msgs: []lt.BeckyMsg{{Raw: legacyMsg(70, "")}}}}},
		{Dir: "99998888.mb", Name: "Office IMAP", IMAP: true, Folders: []lt.BeckyFolder{{Dir: "!!!!Inbox", Msgs: []lt.BeckyMsg{{Raw: legacyMsg(80, "")}}}}},
	}
	if err := lt.WriteBecky(root, boxes); err != nil {
		t.Fatal(err)
	}
	return root, inbox
}

func TestBeckyWalk(t *testing.T) {
	root, _ := beckyStore(t)
	if f, err := Detect(root); f != FormatBecky || err != nil {
		t.Fatalf("Detect = %q, %v", f, err)
	}
	folders, probs, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Private (container)", "Private/Inbox", "仕事用 (container)", "仕事用/Inbox", "仕事用/Inbox/受信サブ", "仕事用/Sent", "仕事用/Trash", "仕事用/Unsent", "仕事用/取引先", "仕事用/取引先/2019"}
	if got := legacyPaths(folders); !slices.Equal(got, want) {
		t.Fatalf("folders:\n got %q\nwant %q", got, want)
	}
	for path, use := range map[string]string{"仕事用/Sent": `\Sent`, "仕事用/Trash": `\Trash`, "仕事用/Inbox": "", "仕事用/Unsent": ""} {
		if f := folderByPath(t, folders, strings.Split(path, "/")...); f.SpecialUse != use || f.Kind != KindBecky {
			t.Errorf("%s: special use %q kind %v, want %q becky", path, f.SpecialUse, f.Kind, use)
		}
	}
	if !problemsContain(probs, "IMAP mailbox", "Office IMAP", "99998888.mb") {
		t.Errorf("the IMAP mailbox is not reported: %v", probs)
	}
	// A source naming the IMAP mailbox itself reads it.
	one, _, err := Walk(filepath.Join(root, "99998888.mb"), FormatBecky)
	if err != nil || len(one) != 1 || !slices.Equal(one[0].Path, []string{"Inbox"}) {
		t.Errorf("IMAP mailbox as its own source: %q, %v", legacyPaths(one), err)
	}
	// A folder directory on its own.
	in, _, err := Walk(filepath.Join(root, "4a5b6c7d.mb", "!!!!Inbox"), FormatBecky)
	if err != nil || !slices.Equal(legacyPaths(in), []string{"", "受信サブ"}) {
		t.Errorf("folder as a source: %q, %v", legacyPaths(in), err)
	}
}

func timeHours(i int) time.Duration { return time.Duration(i) * time.Hour }

func TestBeckyScan(t *testing.T) {
	root, inbox := beckyStore(t)
	folders, _, err := Walk(root, FormatBecky)
	if err != nil {
		t.Fatal(err)
	}
	s := scanItemsAll(t, folderByPath(t, folders, "仕事用", "Inbox"))
	var want []lt.BeckyMsg
	for _, m := range inbox {
		if !m.Deleted {
			want = append(want, m)
		}
	}
	if len(s.order) != len(want) {
		t.Fatalf("%d messages, want %d (the deleted one hidden): %q", len(s.order), len(want), s.order)
	}
	wantFlags := [][]string{nil, {`\Seen`}, {`$Forwarded`}, {`\Answered`}, {`$MDNSent`}, {`\Flagged`},
		{`$Forwarded`, `$MDNSent`, `\Answered`, `\Flagged`, `\Seen`}, {`\Seen`}, {`\Seen`}}
	for i, id := range s.order {
		it := s.items[id]
		if !bytes.Equal(it.Served, want[i].Raw) {
			t.Errorf("message %d (%s): served\n%q\nwant\n%q", i, id, it.Served, want[i].Raw)
		}
		if !slices.Equal(it.Flags, wantFlags[i]) {
			t.Errorf("message %d: flags %q, want %q", i, it.Flags, wantFlags[i])
		}
		if !want[i].Received.IsZero() && !it.Received.Equal(want[i].Received) {
			t.Errorf("message %d: received %v, want %v", i, it.Received, want[i].Received)
		}
	}
	if !bytes.Contains(s.items[s.order[7]].Served, []byte("\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n")) {
		t.Errorf("dot-stuffing not undone: %q", s.items[s.order[7]].Served)
	}
	if len(s.probs) != 0 {
		t.Errorf("problems: %v", s.probs)
	}
	// X-Becky-Include: served as stored, the referenced file named.
	out := scanItemsAll(t, folderByPath(t, folders, "仕事用", "Sent"))
	if len(out.order) != 1 || !bytes.Contains(out.items[out.order[0]].Served, []byte("X-Becky-Include: C:\\Users\\taro\\"+lt.SJIS("見積書")+".xls\r\n")) {
		t.Fatalf("outbox: %q", out.served())
	}
	if !problemsContain(out.probs, "X-Becky-Include", `C:\Users\taro\見積書.xls`, "not part of the archive") {
		t.Errorf("the X-Becky-Include reference is not reported: %v", out.probs)
	}
	// known: no bytes read, the same IDs.
	n := 0
	_, err = ScanItems(folderByPath(t, folders, "仕事用", "Inbox"), func(*Item) bool { return true }, func(it *Item) error {
		if it.Served != nil || it.ID != s.order[n] {
			t.Errorf("known item %d: %s served %v", n, it.ID, it.Served != nil)
		}
		n++
		return nil
	})
	if err != nil || n != len(s.order) {
		t.Errorf("known scan: %d items, %v", n, err)
	}
}

// TestBeckyDamaged: a missing Folder.idx shows everything (deleted mail
// too) and says so; bad index lines, missing .bmf files, offsets that are
// not a message start and a truncated .bmf are named and skipped (or shown
// as they are), never a crash.
func TestBeckyDamaged(t *testing.T) {
	dir := t.TempDir()
	msgs := []lt.BeckyMsg{{Raw: legacyMsg(1, "")}, {Raw: legacyMsg(2, ""), Deleted: true}, {Raw: legacyMsg(3, "")}}
	if err := lt.WriteBeckyFolder(dir, lt.BeckyFolder{Msgs: msgs, NoIndex: true}); err != nil {
		t.Fatal(err)
	}
	f := Folder{Kind: KindBecky, Loc: dir}
	s := scanItemsAll(t, f)
	if len(s.order) != 3 || !problemsContain(s.probs, "no Folder.idx", "including any deleted") {
		t.Fatalf("without Folder.idx: %d messages, problems %v", len(s.order), s.probs)
	}
	for i, b := range s.served() {
		if !bytes.Equal(b, msgs[i].Raw) {
			t.Errorf("message %d: %q", i, b)
		}
	}

	// An index with a bad line, a line naming a missing file, a line
	// pointing into the middle of a message; the .bmf truncated.
	bmf, offs := lt.BeckyBMF(msgs)
	name := "5a000000.bmf"
	var idx bytes.Buffer
	idx.WriteString("header\r\n")
	idx.Write(lt.BeckyIndexLine(name, offs[0], msgs[0]))
	idx.WriteString("zz\x01bad line\r\n")
	idx.Write(lt.BeckyIndexLine("5a0000ff.bmf", 0, msgs[0]))
	idx.Write(lt.BeckyIndexLine(name, offs[0]+7, msgs[0]))
	idx.Write(lt.BeckyIndexLine(name, offs[2], msgs[2]))
	idx.Write(lt.BeckyIndexLine(name, offs[0], msgs[0]))
	writeFile(t, filepath.Join(dir, "Folder.idx"), idx.Bytes())
	writeFile(t, filepath.Join(dir, name), bmf[:len(bmf)-10])
	s = scanItemsAll(t, f)
	if len(s.order) != 2 {
		t.Fatalf("damaged: %d messages %q, want 2; problems %v", len(s.order), s.order, s.probs)
	}
	if !bytes.Equal(s.served()[0], msgs[0].Raw) || !bytes.HasPrefix(msgs[2].Raw, s.served()[1]) {
		t.Errorf("damaged: served %q", s.served())
	}
	for _, want := range [][]string{{"line 3", "skipped"}, {"line 4", "5a0000ff.bmf", "not in the folder"}, {"not the start of a message"}, {"no end line", "truncated"}, {"line 7", "second time"}} {
		if !problemsContain(s.probs, want...) {
			t.Errorf("no problem %q in %v", want, s.probs)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBeckyMailboxINI(t *testing.T) {
	for _, c := range []struct {
		ini  string
		name string
		imap bool
	}{
		{"[Account]\r\nName=Taro\r\nProtocol=0\r\n", "Taro", false},
		{"[Account]\r\nName=Work\r\nProtocol=1\r\n", "Work", true},
		{"[Other]\r\nName=x\r\n[Account]\r\nname = y \r\nIMAP4=1\r\n", "y", true},
		{"garbage", "", false},
	} {
		n, imap := beckyMailboxINI([]byte(c.ini))
		if n != c.name || imap != c.imap {
			t.Errorf("%q: %q %v, want %q %v", c.ini, n, imap, c.name, c.imap)
		}
	}
}

func TestBeckyEnd(t *testing.T) {
	for _, c := range []struct {
		in        string
		eof       bool
		end, next int
		found     bool
	}{
		{"A: b\r\n\r\nx\r\n.\r\nA: c", false, 11, 14, true},
		{"A: b\n\nx\n.\nnext", false, 8, 10, true},
		{"A: b\r\n\r\n..\r\n.\r\n", true, 12, 15, true},
		{"A: b\r\n\r\nx\r\n.", true, 11, 12, true},
		{"A: b\r\n\r\nx\r\n.", false, 0, 0, false},
		{".\r\nA: b", false, 0, 3, true},
		{"A: b\r\n\r\n.x\r\n", true, 0, 0, false},
	} {
		end, next, found := beckyEnd([]byte(c.in), c.eof)
		if end != c.end || next != c.next || found != c.found {
			t.Errorf("%q eof=%v: %d %d %v, want %d %d %v", c.in, c.eof, end, next, found, c.end, c.next, c.found)
		}
	}
	if got := appendServedBecky(nil, []byte(".a\n..b\nc\n.")); string(got) != "a\r\n.b\r\nc\r\n" {
		t.Errorf("appendServedBecky: %q", got)
	}
}
