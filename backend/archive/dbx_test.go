package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	lt "github.com/popbridge/popbridge/internal/legacytest"
)

// dbxInbox is the Inbox of the test store: every flag bit, a deleted
// message, a message of many blocks, received times.
func dbxInbox() []lt.DBXMsg {
	flags := []uint32{0, lt.DBXRead, lt.DBXFlagged, lt.DBXDraft, lt.DBXAnswered, lt.DBXForwarded,
		lt.DBXRead | lt.DBXFlagged | lt.DBXAnswered | lt.DBXForwarded}
	var msgs []lt.DBXMsg
	for i, f := range flags {
		msgs = append(msgs, lt.DBXMsg{Raw: legacyMsg(i, ""), Flags: f, Received: t2006.Add(time.Duration(i) * time.Hour)})
	}
	long := make([]string, 400)
	for i := range long {
		long[i] = fmt.Sprintf("line %03d of a message longer than one 512-byte block", i)
	}
	msgs = append(msgs,
		lt.DBXMsg{Raw: legacyMsg(20, "", "deleted in Outlook Express"), Deleted: true},
		lt.DBXMsg{Raw: legacyMsg(21, "", long...), Flags: lt.DBXRead},
		lt.DBXMsg{Raw: legacyMsg(22, "Content-Type: text/plain; charset=iso-2022-jp\r\n", "\x1b$B$3$s$K$A$O\x1b(B"), Flags: lt.DBXRead})
	return msgs
}

func wantDBXFlags() [][]string {
	return [][]string{nil, {`\Seen`}, {`\Flagged`}, {`\Draft`}, {`\Answered`}, {`$Forwarded`},
		{`$Forwarded`, `\Answered`, `\Flagged`, `\Seen`}, {`\Seen`}, {`\Seen`}}
}

// dbxStore writes an Outlook Express store directory with Japanese folder
// names (CP932), a subfolder, an IMAP folder, Pop3uidl.dbx and a .dbx file
// Folders.dbx does not know.
func dbxStore(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	file := func(name string, msgs []lt.DBXMsg, opt lt.DBXOptions) {
		b, _ := lt.DBXFile(msgs, opt)
		writeFile(t, filepath.Join(root, name), b)
	}
	one := func(i int) []lt.DBXMsg { return []lt.DBXMsg{{Raw: legacyMsg(i, ""), Flags: lt.DBXRead}} }
	file(lt.SJIS("受信トレイ.dbx"), dbxInbox(), lt.DBXOptions{Name: lt.SJIS("受信トレイ")})
	file(lt.SJIS("送信済みアイテム.dbx"), one(30), lt.DBXOptions{})
	file(lt.SJIS("削除済みアイテム.dbx"), one(31), lt.DBXOptions{})
	file(lt.SJIS("下書き.dbx"), one(32), lt.DBXOptions{})
	file(lt.SJIS("取引先.dbx"), one(33), lt.DBXOptions{})
	file("2019.dbx", one(34), lt.DBXOptions{})
	file("INBOX.dbx", one(35), lt.DBXOptions{Source: 1})
	file("Orphan.dbx", one(36), lt.DBXOptions{})
	writeFile(t, filepath.Join(root, "Pop3uidl.dbx"), bytes.Repeat([]byte{0xCF, 0xAD}, 100))
	writeFile(t, filepath.Join(root, "Folders.dbx"), lt.FoldersDBX([]lt.DBXFolderInfo{
		{ID: 0, Parent: 0, Name: ""},
		{ID: 1, Parent: 0, Name: lt.SJIS("ローカル フォルダ")},
		{ID: 2, Parent: 1, Name: lt.SJIS("受信トレイ"), File: lt.SJIS("受信トレイ.dbx")},
		{ID: 3, Parent: 1, Name: lt.SJIS("送信済みアイテム"), File: lt.SJIS("送信済みアイテム.dbx")},
		{ID: 4, Parent: 1, Name: lt.SJIS("削除済みアイテム"), File: lt.SJIS("削除済みアイテム.dbx")},
		{ID: 5, Parent: 1, Name: lt.SJIS("下書き"), File: lt.SJIS("下書き.dbx")},
		{ID: 6, Parent: 1, Name: lt.SJIS("取引先"), File: lt.SJIS("取引先.dbx")},
		{ID: 7, Parent: 6, Name: "2019", File: "2019.dbx"},
		{ID: 8, Parent: 0, Name: "imap.example.jp"},
		{ID: 9, Parent: 8, Name: "INBOX", File: "INBOX.dbx"},
	}))
	return root
}

func TestDBXWalk(t *testing.T) {
	root := dbxStore(t)
	if f, err := Detect(root); f != FormatDBX || err != nil {
		t.Fatalf("Detect = %q, %v", f, err)
	}
	if f, err := Detect(filepath.Join(root, "2019.dbx")); f != FormatDBX || err != nil {
		t.Fatalf("Detect(file) = %q, %v", f, err)
	}
	folders, probs, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Orphan", "下書き", "削除済みアイテム", "取引先", "取引先/2019", "受信トレイ", "送信済みアイテム"}
	if got := legacyPaths(folders); !slices.Equal(got, want) {
		t.Fatalf("folders:\n got %q\nwant %q\nproblems %v", got, want, probs)
	}
	for path, use := range map[string]string{"送信済みアイテム": `\Sent`, "削除済みアイテム": `\Trash`, "下書き": `\Drafts`, "受信トレイ": ""} {
		if f := folderByPath(t, folders, path); f.SpecialUse != use || f.Kind != KindDBX {
			t.Errorf("%s: %q %v", path, f.SpecialUse, f.Kind)
		}
	}
	if len(probs) != 1 || !problemsContain(probs, "IMAP folder", "INBOX.dbx") {
		t.Errorf("the IMAP folder is not reported: %v", probs)
	}
	if problemsContain(probs, "Pop3uidl.dbx") {
		t.Errorf("Pop3uidl.dbx reported: %v", probs)
	}
	// One file as the source: its one folder, whatever its type.
	one, _, err := Walk(filepath.Join(root, "INBOX.dbx"), FormatAuto)
	if err != nil || len(one) != 1 || len(one[0].Path) != 0 {
		t.Errorf("one file: %q, %v", legacyPaths(one), err)
	}
	// Without Folders.dbx: named after the files.
	os.Remove(filepath.Join(root, "Folders.dbx"))
	flat, probs, err := Walk(root, FormatDBX)
	if err != nil || !slices.Contains(legacyPaths(flat), "受信トレイ") || !problemsContain(probs, "no Folders.dbx") {
		t.Errorf("without Folders.dbx: %q, %v, %v", legacyPaths(flat), probs, err)
	}
}

func TestDBXScan(t *testing.T) {
	root := dbxStore(t)
	folders, _, err := Walk(root, FormatDBX)
	if err != nil {
		t.Fatal(err)
	}
	s := scanItemsAll(t, folderByPath(t, folders, "受信トレイ"))
	var want []lt.DBXMsg
	for _, m := range dbxInbox() {
		if !m.Deleted {
			want = append(want, m)
		}
	}
	if len(s.order) != len(want) || len(s.probs) != 0 {
		t.Fatalf("%d messages (%q), want %d; problems %v", len(s.order), s.order, len(want), s.probs)
	}
	for i, id := range s.order {
		it := s.items[id]
		if !bytes.Equal(it.Served, want[i].Raw) {
			t.Errorf("message %d: served %q", i, it.Served)
		}
		if !slices.Equal(it.Flags, wantDBXFlags()[i]) {
			t.Errorf("message %d: flags %q, want %q", i, it.Flags, wantDBXFlags()[i])
		}
		if !it.Received.Equal(want[i].Received) {
			t.Errorf("message %d: received %v, want %v", i, it.Received, want[i].Received)
		}
	}
}

// TestDBXLargeTree: enough messages for a tree of several levels; order
// and content kept.
func TestDBXLargeTree(t *testing.T) {
	var msgs []lt.DBXMsg
	for i := range 3000 {
		msgs = append(msgs, lt.DBXMsg{Raw: legacyMsg(i, ""), Flags: uint32(i%2) * lt.DBXRead})
	}
	b, lay := lt.DBXFile(msgs, lt.DBXOptions{})
	if len(lay.Nodes) < 3 {
		t.Fatalf("only %d tree nodes", len(lay.Nodes))
	}
	path := filepath.Join(t.TempDir(), "Big.dbx")
	writeFile(t, path, b)
	s := scanItemsAll(t, Folder{Kind: KindDBX, Loc: path})
	if len(s.order) != len(msgs) || len(s.probs) != 0 {
		t.Fatalf("%d of %d messages; %v", len(s.order), len(msgs), s.probs)
	}
	for i, id := range s.order {
		if !bytes.Equal(s.items[id].Served, msgs[i].Raw) {
			t.Fatalf("message %d out of order or changed", i)
		}
	}
}

// requireUndbx returns the path of Debian's undbx: a missing binary fails
// under CI and skips elsewhere.
func requireUndbx(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("undbx")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("undbx not found: apt-get install -y undbx")
		}
		t.Skip("undbx not found (apt-get install -y undbx)")
	}
	return p
}

// runUndbx extracts file with undbx (recover mode if asked) and returns
// the .eml files' contents, sorted, and how many undbx named deleted.
func runUndbx(t *testing.T, bin, file string, recover bool) (live [][]byte) {
	// undbx writes below the output directory and never touches its input.
	t.Helper()
	out := t.TempDir()
	args := []string{"-v", "0"}
	if recover {
		args = append(args, "-r")
	}
	cmd := exec.Command(bin, append(args, file, out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("undbx: %v\n%s", err, b)
	}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".eml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if recover && strings.Contains(filepath.ToSlash(p), "/deleted/") {
			return nil // a deleted message, recovered into "deleted"
		}
		live = append(live, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(live, bytes.Compare)
	return live
}

func sortedBytes(in [][]byte) [][]byte {
	out := slices.Clone(in)
	slices.SortFunc(out, bytes.Compare)
	return out
}

func equalSets(a, b [][]byte) bool {
	return slices.EqualFunc(sortedBytes(a), sortedBytes(b), bytes.Equal)
}

// TestDBXUndbxAgreement: undbx extracts the same messages, byte for byte,
// from the test store's folders and from a large file.
func TestDBXUndbxAgreement(t *testing.T) {
	bin := requireUndbx(t)
	root := dbxStore(t)
	folders, _, err := Walk(root, FormatDBX)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range folders {
		if f.NoSelect {
			continue
		}
		ours := scanItemsAll(t, f).served()
		theirs := runUndbx(t, bin, f.Loc, false)
		if !equalSets(ours, theirs) {
			t.Errorf("%s: popbridge served %d messages, undbx extracted %d, or their bytes differ", strings.Join(f.Path, "/"), len(ours), len(theirs))
		}
	}
}

// TestDBXDamaged: a broken index node or message info, a broken chain, a
// wrong header count, a truncated file: what can be read is served (the
// messages the broken index no longer reaches recovered by a scan, as
// undbx --recover finds them), the rest named.
func TestDBXDamaged(t *testing.T) {
	var msgs []lt.DBXMsg
	for i := range 400 {
		m := lt.DBXMsg{Raw: legacyMsg(i, "", strings.Repeat(fmt.Sprintf("filler %d ", i), i%40)), Flags: lt.DBXRead, Deleted: i%50 == 7}
		msgs = append(msgs, m)
	}
	var live [][]byte
	for _, m := range msgs {
		if !m.Deleted {
			live = append(live, m.Raw)
		}
	}
	good, lay := lt.DBXFile(msgs, lt.DBXOptions{})
	dir := t.TempDir()
	scan := func(name string, b []byte) itemScan {
		path := filepath.Join(dir, name)
		writeFile(t, path, b)
		return scanItemsAll(t, Folder{Kind: KindDBX, Loc: path})
	}
	damage := func(off int64, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}

	// A child node of the tree: its messages come back through the scan.
	node := scan("node.dbx", damage(lay.Nodes[1], 0xdeadbeef))
	if !equalSets(node.served(), live) || !problemsContain(node.probs, "index node", "damaged") || !problemsContain(node.probs, "recovered") {
		t.Errorf("broken node: %d of %d messages; problems %v", len(node.order), len(live), node.probs)
	}
	if bin, err := exec.LookPath("undbx"); err == nil {
		theirs := runUndbx(t, bin, filepath.Join(dir, "node.dbx"), true)
		if !equalSets(node.served(), theirs) {
			t.Errorf("broken node: popbridge %d messages, undbx --recover %d live ones", len(node.order), len(theirs))
		}
	}

	// A message info object: that message is recovered without flags.
	info := scan("info.dbx", damage(lay.Infos[3], 1))
	if !equalSets(info.served(), live) || !problemsContain(info.probs, "message info", "damaged") {
		t.Errorf("broken info: %d of %d; %v", len(info.order), len(live), info.probs)
	}
	recovered := 0
	for _, id := range info.order {
		if strings.HasPrefix(id, "@") {
			recovered++
			if info.items[id].Flags != nil {
				t.Errorf("recovered message %s has flags %q", id, info.items[id].Flags)
			}
		}
	}
	if recovered != 1 {
		t.Errorf("%d messages recovered, want 1", recovered)
	}

	// A chain: the message is named and skipped, the others served.
	k := 12 // a message with several blocks
	for len(lay.Chains[k]) < 2 {
		k++
	}
	chain := scan("chain.dbx", damage(lay.Chains[k][1], 0))
	if len(chain.order) != len(live)-1 || !problemsContain(chain.probs, "message", "data block", "damaged", "skipped") {
		t.Errorf("broken chain: %d of %d; %v", len(chain.order), len(live)-1, chain.probs)
	}

	// The header counts more messages than the index has.
	count := scan("count.dbx", damage(0xc4, uint32(len(live)+5)))
	if !equalSets(count.served(), live) || !problemsContain(count.probs, "header counts") {
		t.Errorf("count: %d; %v", len(count.order), count.probs)
	}

	// Cut in half: no crash, the messages before the cut that the index
	// still reaches are served.
	half := scan("half.dbx", good[:len(good)/2])
	if len(half.probs) == 0 || len(half.order) >= len(live) {
		t.Errorf("half: %d messages, problems %v", len(half.order), half.probs)
	}
	for _, b := range half.served() {
		if !slices.ContainsFunc(live, func(x []byte) bool { return bytes.Equal(x, b) }) {
			t.Errorf("half: served a message that is not one of the originals: %.80q", b)
		}
	}

	// Not a .dbx at all, Folders.dbx as a folder.
	if _, err := ScanItems(Folder{Kind: KindDBX, Loc: filepath.Join(dir, "nope.dbx")}, nil, func(*Item) error { return nil }); err == nil {
		t.Error("a missing file scanned without error")
	}
	writeFile(t, filepath.Join(dir, "Folders.dbx"), lt.FoldersDBX(nil))
	if _, err := ScanItems(Folder{Kind: KindDBX, Loc: filepath.Join(dir, "Folders.dbx")}, nil, func(*Item) error { return nil }); err == nil || !strings.Contains(err.Error(), "Folders.dbx") {
		t.Errorf("Folders.dbx scanned as a folder: %v", err)
	}
	// ReadItem at a place that is no longer a message.
	if _, err := ReadItem(KindDBX, filepath.Join(dir, "chain.dbx"), lay.Chains[k][0], 100, nil); err == nil {
		t.Error("ReadItem of a broken chain succeeded")
	}
}
