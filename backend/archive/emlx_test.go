package archive

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	lt "github.com/popbridge/popbridge/internal/legacytest"
)

// lfMsg is legacyMsg with LF line ends, as Apple Mail stores messages.
func lfMsg(i int, extra string, body ...string) []byte {
	return bytes.ReplaceAll(legacyMsg(i, extra, body...), []byte("\r\n"), []byte("\n"))
}

func appleArchive() []lt.AppleMsg {
	flags := []uint64{0, lt.EMLXRead, lt.EMLXAnswered, lt.EMLXFlagged, lt.EMLXDraft, lt.EMLXForwarded, lt.EMLXJunk, lt.EMLXNotJunk,
		lt.EMLXRead | lt.EMLXAnswered | lt.EMLXFlagged | lt.EMLXForwarded | lt.EMLXEncrypted | lt.EMLXRecent}
	var msgs []lt.AppleMsg
	for i, f := range flags {
		msgs = append(msgs, lt.AppleMsg{ID: 100 + i, Raw: lfMsg(i, ""), Flags: f, Received: t2006.Add(time.Duration(i) * time.Hour)})
	}
	return append(msgs,
		lt.AppleMsg{ID: 200, Raw: lfMsg(20, "", "deleted in Mail"), Flags: lt.EMLXDeleted | lt.EMLXRead},
		lt.AppleMsg{ID: 12345, Raw: lfMsg(21, "", ">From the old mbox days", "From here"), Flags: lt.EMLXRead},
		lt.AppleMsg{ID: 300, Raw: lfMsg(22, "", "日本語の本文です"), Flags: lt.EMLXRead})
}

func wantAppleFlags() [][]string {
	return [][]string{nil, {`\Seen`}, {`\Answered`}, {`\Flagged`}, {`\Draft`}, {`$Forwarded`}, {`$Junk`}, {`$NotJunk`},
		{`$Forwarded`, `\Answered`, `\Flagged`, `\Seen`}, {`\Seen`} /* deleted: hidden */, {`\Seen`}, {`\Seen`}}
}

func appleStore(t *testing.T) (root string) {
	t.Helper()
	root = t.TempDir()
	one := func(id, i int) []lt.AppleMsg { return []lt.AppleMsg{{ID: id, Raw: lfMsg(i, ""), Flags: lt.EMLXRead}} }
	if _, err := lt.WriteAppleMail(root, 2, []lt.AppleMailbox{{Name: "Old", V2: true, Msgs: one(1, 90)}}, nil); err != nil {
		t.Fatal(err)
	}
	exported := fmt.Sprintf("From a@example.jp Mon Jan  2 15:04:05 2006\n%s\nFrom b@example.jp Mon Jan  2 15:04:06 2006\n%s\n", lfMsg(40, ""), lfMsg(41, ""))
	_, err := lt.WriteAppleMail(root, 10, []lt.AppleMailbox{
		{Name: "Archive", Msgs: appleArchive(), Children: []lt.AppleMailbox{{Name: "2019", Msgs: one(5, 50)}}},
		{Name: "Exported", Exported: true, Mbox: []byte(exported)},
		{Name: "仕事", Msgs: one(7, 51)},
	}, map[string][]lt.AppleMailbox{
		"6F1D9A2C-1B2B-4C3D-8E9F-00AA11BB22CC": {{Name: "INBOX", Msgs: one(1, 60)}, {Name: "Sent Messages", Msgs: one(2, 61)}, {Name: "Deleted Messages", Msgs: one(3, 62)}},
		"IMAP-taro@imap.example.jp":            {{Name: "INBOX", Msgs: one(1, 70)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestAppleMailWalk(t *testing.T) {
	root := appleStore(t)
	if f, err := Detect(root); f != FormatAppleMail || err != nil {
		t.Fatalf("Detect = %q, %v", f, err)
	}
	folders, probs, err := Walk(root, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"6F1D9A2C-1B2B-4C3D-8E9F-00AA11BB22CC (container)", "6F1D9A2C-1B2B-4C3D-8E9F-00AA11BB22CC/Deleted Messages",
		"6F1D9A2C-1B2B-4C3D-8E9F-00AA11BB22CC/Inbox", "6F1D9A2C-1B2B-4C3D-8E9F-00AA11BB22CC/Sent Messages",
		"Archive", "Archive/2019", "Exported", "仕事"}
	if got := legacyPaths(folders); !slices.Equal(got, want) {
		t.Fatalf("folders:\n got %q\nwant %q\nproblems %v", got, want, probs)
	}
	acct := "6F1D9A2C-1B2B-4C3D-8E9F-00AA11BB22CC"
	for path, use := range map[string]string{acct + "/Sent Messages": `\Sent`, acct + "/Deleted Messages": `\Trash`, acct + "/Inbox": ""} {
		if f := folderByPath(t, folders, strings.Split(path, "/")...); f.SpecialUse != use {
			t.Errorf("%s: %q", path, f.SpecialUse)
		}
	}
	if f := folderByPath(t, folders, "Exported"); f.Kind != KindMbox || filepath.Base(f.Loc) != "mbox" {
		t.Errorf("exported bundle: %v %s", f.Kind, f.Loc)
	}
	if !problemsContain(probs, "V2", "older Apple Mail data") || !problemsContain(probs, "IMAP account skipped", "IMAP-taro@imap.example.jp") {
		t.Errorf("problems: %v", probs)
	}
	// The parent does not claim its child's message.
	arch := scanItemsAll(t, folderByPath(t, folders, "Archive"))
	child := scanItemsAll(t, folderByPath(t, folders, "Archive", "2019"))
	if len(child.order) != 1 || slices.Contains(arch.order, child.order[0]) || len(arch.order) != len(appleArchive())-1 {
		t.Errorf("Archive %q, Archive/2019 %q", arch.order, child.order)
	}
	// A mailbox as the source; the old V2 data as the source.
	one, _, err := Walk(filepath.Join(root, "V10", "Mailboxes", "Archive.mbox"), FormatAuto)
	if err != nil || !slices.Equal(legacyPaths(one), []string{"", "2019"}) {
		t.Errorf("one mailbox: %q %v", legacyPaths(one), err)
	}
	v2, _, err := Walk(filepath.Join(root, "V2"), FormatAppleMail)
	if err != nil || !slices.Equal(legacyPaths(v2), []string{"Old"}) {
		t.Errorf("V2: %q %v", legacyPaths(v2), err)
	}
	if s := scanItemsAll(t, v2[0]); len(s.order) != 1 {
		t.Errorf("V2 mailbox: %q", s.order)
	}
}

func TestEMLXScan(t *testing.T) {
	root := appleStore(t)
	folders, _, err := Walk(root, FormatAppleMail)
	if err != nil {
		t.Fatal(err)
	}
	s := scanItemsAll(t, folderByPath(t, folders, "Archive"))
	var want []lt.AppleMsg
	for _, m := range appleArchive() {
		if m.Flags&lt.EMLXDeleted == 0 {
			want = append(want, m)
		}
	}
	slices.SortFunc(want, func(a, b lt.AppleMsg) int { return a.ID - b.ID })
	if len(s.order) != len(want) || len(s.probs) != 0 {
		t.Fatalf("%q; problems %v", s.order, s.probs)
	}
	wf := wantAppleFlags()
	for i, id := range s.order {
		it := s.items[id]
		if !bytes.Equal(it.Served, ServeFile(want[i].Raw)) || bytes.Contains(it.Served, []byte("plist")) {
			t.Errorf("%s: served %q", id, it.Served)
		}
		k := slices.IndexFunc(appleArchive(), func(m lt.AppleMsg) bool { return m.ID == want[i].ID })
		if !slices.Equal(it.Flags, wf[k]) {
			t.Errorf("%s: flags %q, want %q", id, it.Flags, wf[k])
		}
		if !it.Received.Equal(want[i].Received) && !want[i].Received.IsZero() {
			t.Errorf("%s: received %v", id, it.Received)
		}
	}
	if !bytes.Contains(s.items[s.order[len(s.order)-1]].Served, []byte("\r\n>From the old mbox days\r\nFrom here\r\n")) {
		t.Errorf("quoting changed: %q", s.items[s.order[len(s.order)-1]].Served)
	}
}

// partialOriginal is a message with two attachments, and its skeleton as a
// .partial.emlx keeps it.
func partialOriginal() (orig, skel []byte, pdf, png []byte) {
	pdf = bytes.Repeat([]byte("%PDF-1.4 binary\x00\x01\x02"), 40)
	png = bytes.Repeat([]byte("\x89PNG\r\n\x1a\n"), 30)
	wrap := func(b []byte) string {
		e := base64.StdEncoding.EncodeToString(b)
		var s strings.Builder
		for len(e) > 76 {
			s.WriteString(e[:76] + "\n")
			e = e[76:]
		}
		return s.String() + e
	}
	head := "From: a@example.jp\nSubject: partial\nMessage-ID: <p@example.jp>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BB\"\n\n--BB\nContent-Type: text/plain\n\nhello\n"
	p2 := "--BB\nContent-Type: application/pdf; name=\"a.pdf\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"a.pdf\"\n"
	p3 := "--BB\nContent-Type: image/png; name=\"p.png\"\nContent-Transfer-Encoding: base64\n"
	orig = []byte(head + p2 + "\n" + wrap(pdf) + "\n" + p3 + "\n" + wrap(png) + "\n--BB--\n")
	skel = []byte(head + p2 + "X-Apple-Content-Length: 1234\n\n" + p3 + "X-Apple-Content-Length: 99\n\n\n--BB--\n")
	return orig, skel, pdf, png
}

func TestEMLXPartial(t *testing.T) {
	orig, skel, pdf, png := partialOriginal()
	enc := base64.StdEncoding.EncodeToString(pdf)
	var part2 strings.Builder
	for len(enc) > 76 {
		part2.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	part2.WriteString(enc + "\r\n")
	root := t.TempDir()
	err := lt.WriteAppleMailbox(root, lt.AppleMailbox{Name: "INBOX", Msgs: []lt.AppleMsg{
		{ID: 1, Raw: skel, Partial: true, Flags: lt.EMLXRead,
			Parts:       map[string][]byte{"2": []byte(part2.String())},
			Attachments: map[string]lt.AppleAttachment{"3": {Name: "p.png", Data: png}}},
		{ID: 2, Raw: skel, Partial: true, Attachments: map[string]lt.AppleAttachment{"3": {Name: "p.png", Data: png}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := scanItemsAll(t, Folder{Kind: KindEMLX, Loc: filepath.Join(root, "INBOX.mbox")})
	if len(s.order) != 2 {
		t.Fatalf("%q %v", s.order, s.probs)
	}
	full := s.items[s.order[0]]
	if !full.Rebuilt || !bytes.Equal(full.Served, ServeFile(orig)) {
		t.Errorf("rebuilt:\n%s\nwant\n%s", full.Served, ServeFile(orig))
	}
	if !slices.Equal(full.Flags, []string{`\Seen`}) {
		t.Errorf("flags %q", full.Flags)
	}
	incomplete := s.items[s.order[1]]
	if !incomplete.Rebuilt || bytes.Contains(incomplete.Served, []byte(base64.StdEncoding.EncodeToString(pdf)[:40])) || !bytes.Contains(incomplete.Served, []byte("X-Apple-Content-Length: 1234")) {
		t.Errorf("incomplete: %s", incomplete.Served)
	}
	if len(s.probs) != 1 || !problemsContain(s.probs, "2.partial.emlx", "part(s) 2 not found", "incomplete") {
		t.Errorf("problems: %v", s.probs)
	}
}

func TestEMLXDamaged(t *testing.T) {
	root := t.TempDir()
	box := filepath.Join(root, "X.mbox", "Messages")
	good := lt.EMLX(lfMsg(1, ""), lt.EMLXRead, t2006)
	writeFile(t, filepath.Join(box, "1.emlx"), good)
	writeFile(t, filepath.Join(box, "2.emlx"), good[:40])                                                                   // cut inside the message
	writeFile(t, filepath.Join(box, "3.emlx"), []byte("not a count\nFrom: x\n"))                                            // no count line
	writeFile(t, filepath.Join(box, "4.emlx"), append(lt.EMLX(lfMsg(4, ""), 0, time.Time{})[:0:0], good[:len(good)-40]...)) // plist cut
	writeFile(t, filepath.Join(box, "5.emlx"), []byte("0\n"))
	writeFile(t, filepath.Join(box, "notes.txt"), []byte("x"))
	s := scanItemsAll(t, Folder{Kind: KindEMLX, Loc: filepath.Join(root, "X.mbox")})
	if len(s.order) != 3 {
		t.Fatalf("%q %v", s.order, s.probs)
	}
	for _, want := range [][]string{{"2.emlx", "truncated"}, {"3.emlx", "not a byte count", "skipped"}, {"4.emlx", "property list", "without flags"}, {"5.emlx", "no message"}} {
		if !problemsContain(s.probs, want...) {
			t.Errorf("no problem %q in %v", want, s.probs)
		}
	}
	if !slices.Equal(s.items["Messages/1"].Flags, []string{`\Seen`}) || s.items["Messages/4"].Flags != nil {
		t.Errorf("flags: %q %q", s.items["Messages/1"].Flags, s.items["Messages/4"].Flags)
	}
}
