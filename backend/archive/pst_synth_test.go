package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// Synthetic PSTs cover what the sample files lack: ANSI files with code
// pages, RTF-only bodies, embedded messages, inline images, large values
// (XBLOCK/XXBLOCK, SIBLOCK), multi-level B-trees, passwords and damage.

func sjis(s string) []byte {
	b, err := japanese.ShiftJIS.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

func iso2022jp(s string) []byte {
	b, err := japanese.ISO2022JP.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

func cp1252(s string) []byte {
	b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

// pngBytes is a tiny PNG-looking payload (the bytes only travel).
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

const longJapaneseName = "とても長い日本語のファイル名の添付書類_第二四半期の売上報告と来期の見通しについての詳細資料.pdf"

// unicodePST builds the Unicode test file.
func unicodePST(permute bool, storeExtra ...tProp) []byte {
	b := newPSTBuilder(true, permute)
	headers := "Microsoft Mail Internet Headers Version 2.0\r\n" +
		"Received: from mx.example.com by mail.example.jp;\r\n\tMon, 1 Apr 2019 09:00:00 +0900\r\n" +
		"From: Alice <alice@example.com>\r\n" +
		"To: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>\r\n" +
		"Subject: Quarterly report\r\n" +
		"Date: Mon, 1 Apr 2019 09:00:00 +0900\r\n" +
		"Message-ID: <report-1@example.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative;\r\n\tboundary=\"----=_NextPart_000\"\r\n" +
		"Content-Language: ja\r\n\r\n"
	html := `<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>` +
		`<body><p>売上報告です。</p><img src="cid:image001.png@01D5"></body></html>`
	a := &tItem{nid: 0x200004, class: "IPM.Note", props: []tProp{
		pUni(prSubject, "Quarterly report"),
		pUni(prTransportHeaders, headers),
		pUni(prBody, "売上報告です。\r\nSee the attachment.\r\n"),
		pBin(prHTML, []byte(html)),
		pInt32(prInternetCPID, 65001),
		pInt32(prMessageFlags, 0x01),
		pInt32(prLastVerbExecuted, 102),
		pInt32(prFlagStatus, 2),
		pTime(prDeliveryTime, 1554076800),
		pTime(prClientSubmitTime, 1554076700),
	}, attachments: []*tAttach{
		{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachLongFilename, "image001.png"),
			pUni(prAttachMimeTag, "image/png"), pUni(prAttachContentID, "image001.png@01D5"), pBin(prAttachData, pngBytes), pBool(prAttachmentHidden, true)}},
		{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachLongFilename, longJapaneseName),
			pUni(prAttachFilename, "REPORT~1.PDF"), pBin(prAttachData, []byte("%PDF-1.4 test"))}},
	}}
	bItem := &tItem{nid: 0x200024, class: "IPM.Note", props: []tProp{
		pUni(prSubject, "\x01\x04RE: 会議のお知らせ（第二回）"),
		pUni(prSenderName, "山田 太郎"), pUni(prSenderEmail, "yamada@example.jp"), pUni(prSenderAddrType, "SMTP"),
		pUni(prInternetMessageID, "b@example.jp"),
		pUni(prInReplyTo, "<a@example.com>"),
		pUni(prInternetReferences, "<z@example.com>\r\n <a@example.com>"),
		pUni(prBody, "来週の会議は第二会議室で行います。\r\nよろしくお願いします。"),
		pInt32(prMessageFlags, 0x08),
		pTime(prCreationTime, 1554163200),
		pInt32(prImportance, 2),
	}, recipients: []tRecip{
		{kind: 1, name: "Alice", addr: "alice@example.com", addrType: "SMTP"},
		{kind: 2, name: "Bob", addr: "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=BOB", addrType: "EX"},
		{kind: 2, name: "Dan", addr: "/O=ORG/OU=SITE/CN=RECIPIENTS/CN=DAN", addrType: "EX", smtp: "dan@example.org"},
		{kind: 3, name: "carol@example.com", addr: "carol@example.com", addrType: "SMTP"},
	}}
	rtfHTML := `{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}}` + "\r\n" +
		`{\*\htmltag64}\uc1\pard\plain` + "\r\n" +
		`{\*\htmltag <html><body>\par}{\*\htmltag <p>}{\htmlrtf \f0 \htmlrtf0 Caf\'e9 \u8364\'80 \{ok\}}{\*\htmltag </p>\par}` +
		`\htmlrtf {\b ignored}\htmlrtf0{\*\htmltag </body></html>}}`
	c := &tItem{nid: 0x200044, class: "IPM.Note", props: []tProp{
		pUni(prSubject, "RTF html"),
		pBin(prRTFCompressed, compressRTF([]byte(rtfHTML))),
		pInt32(prLastVerbExecuted, 104),
		pTime(prClientSubmitTime, 1554163200),
	}}
	d := &tItem{nid: 0x200064, class: "IPM.Note", props: []tProp{
		pUni(prSubject, "RTF only"),
		pBin(prRTFCompressed, compressRTF([]byte(`{\rtf1\ansi Hello {\b bold} world\par}`))),
		pTime(prClientSubmitTime, 1554163200),
	}}
	inner := &tItem{class: "IPM.Note", props: []tProp{
		pUni(prSubject, "Inner message"),
		pUni(prSentRepName, "Eve"), pUni(prSentRepEmail, "eve@example.net"),
		pUni(prBody, "inner body"),
		pTime(prClientSubmitTime, 1554000000),
	}, attachments: []*tAttach{{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachLongFilename, "inner.txt"), pBin(prAttachData, []byte("inner attachment"))}}}}
	e := &tItem{nid: 0x200084, class: "IPM.Note", props: []tProp{
		pUni(prSubject, "Fwd: inner"),
		pUni(prBody, "see attached"),
		pTime(prClientSubmitTime, 1554163200),
	}, attachments: []*tAttach{{props: []tProp{pUni(prDisplayName, "Inner message")}, embedded: inner}}}
	big := bytes.Repeat([]byte("0123456789abcdef"), (8<<20+600<<10)/16) // > 1021 blocks: an XXBLOCK
	var many []*tAttach
	for i := range 5 {
		many = append(many, &tAttach{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachLongFilename, fmt.Sprintf("part%d.txt", i)), pBin(prAttachData, []byte(strings.Repeat("x", 100*i)))}})
	}
	many = append(many, &tAttach{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachLongFilename, "big.bin"), pBin(prAttachData, big)}})
	f := &tItem{nid: 0x2000A4, class: "IPM.Note", props: []tProp{
		pUni(prSubject, "Large"),
		pUni(prBody, strings.Repeat("line of text\r\n", 2000)),
		pTime(prClientSubmitTime, 1554163200),
	}, attachments: many}
	g := &tItem{nid: 0x2000C4, class: "IPM.Note", props: []tProp{
		pUni(prSubject, "Sent one"),
		pUni(prSentRepName, "Me"), pUni(prSentRepEmail, "me@example.jp"),
		pUni(prBody, "hello"),
		pInt32(prMessageFlags, 0x01),
		pTime(prClientSubmitTime, 1554163300),
	}, recipients: []tRecip{{kind: 1, name: "Alice", addr: "alice@example.com", addrType: "SMTP"}}}
	contact := func(nid uint32) *tItem {
		return &tItem{nid: nid, class: "IPM.Contact", props: []tProp{pUni(prDisplayName, "Someone")}}
	}
	var bulk []*tItem
	for i := range 700 {
		bulk = append(bulk, &tItem{nid: uint32(0x300004 + 0x20*i), class: "IPM.Note", props: []tProp{
			pUni(prSubject, fmt.Sprintf("bulk %d", i)), pUni(prBody, "b"), pTime(prClientSubmitTime, 1554163200+int64(i)),
		}})
	}
	top := []*tFolder{
		{nid: 0x8062, name: pUni(prDisplayName, "受信トレイ"), class: "IPF.Note", items: []*tItem{a, bItem, c, d, e, f}},
		{nid: 0x8082, name: pUni(prDisplayName, "送信済みアイテム"), class: "IPF.Note", items: []*tItem{g}},
		{nid: 0x80A2, name: pUni(prDisplayName, "削除済みアイテム"), class: "IPF.Note"},
		{nid: 0x80C2, name: pUni(prDisplayName, "下書き"), class: "IPF.Note"},
		{nid: 0x80E2, name: pUni(prDisplayName, "迷惑メール"), class: "IPF.Note"},
		{nid: 0x8102, name: pUni(prDisplayName, "Contacts"), class: "IPF.Contact", items: []*tItem{contact(0x200104), contact(0x200124)}},
		{nid: 0x8122, name: pUni(prDisplayName, "Mixed/Stuff"), class: "IPF.Note", items: []*tItem{
			{nid: 0x200144, class: "IPM.Task", props: []tProp{pUni(prSubject, "a task")}},
			{nid: 0x200164, class: "IPM.Note.Custom", props: []tProp{pUni(prSubject, "custom class"), pUni(prBody, "x")}},
		}},
		{nid: 0x8142, name: pUni(prDisplayName, "Quick Step Settings"), class: "IPF.Configuration", hidden: true},
		{nid: 0x8162, name: pUni(prDisplayName, "Projects"), class: "IPF.Contact", children: []*tFolder{
			{nid: 0x8182, name: pUni(prDisplayName, "2024"), items: []*tItem{{nid: 0x200184, class: "IPM.Note", props: []tProp{pUni(prSubject, "in 2024"), pUni(prBody, "y")}}}},
		}},
		{nid: 0x81A2, name: pUni(prDisplayName, "Bulk"), class: "IPF.Note", items: bulk},
	}
	store := append([]tProp{pBin(prIPMSentmail, entryID(0x8082)), pBin(prIPMWastebasket, entryID(0x80A2))}, storeExtra...)
	b.store(store, top)
	return b.bytes()
}

// ansiPST builds an ANSI (Outlook 97–2002) file from a Japanese Outlook:
// 8-bit strings in code page 932, HTML in ISO-2022-JP.
func ansiPST() []byte {
	b := newPSTBuilder(false, true)
	html := iso2022jp(`<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-2022-jp"></head><body>会議のお知らせ</body></html>`)
	j1 := &tItem{nid: 0x200004, class: "IPM.Note", props: []tProp{
		pStr8(prSubject, sjis("会議のお知らせ")),
		pStr8(prSentRepName, sjis("山田 太郎")), pStr8(prSentRepEmail, []byte("yamada@example.jp")),
		pStr8(prBody, sjis("本文です。\r\n二行目。")),
		pBin(prHTML, html),
		pInt32(prMessageCodepage, 932),
		pInt32(prInternetCPID, 50220),
		pTime(prClientSubmitTime, 1554163200),
	}, recipients: []tRecip{{kind: 1, name: string(sjis("鈴木")), addr: "suzuki@example.jp", addrType: "SMTP"}}}
	j2 := &tItem{nid: 0x200024, class: "IPM.Note", props: []tProp{
		pStr8(prSubject, sjis("日本語の件名")),
		pStr8(prBody, sjis("ISO-2022-JP のメール")),
		pInt32(prInternetCPID, 50220),
		pTime(prClientSubmitTime, 1554163200),
	}}
	top := []*tFolder{
		{nid: 0x8062, name: pStr8(prDisplayName, sjis("受信トレイ")), items: []*tItem{j1, j2}},
		{nid: 0x8082, name: pStr8(prDisplayName, sjis("送信済みアイテム"))},
	}
	b.store([]tProp{pBin(prIPMSentmail, entryID(0x8082))}, top)
	return b.bytes()
}

// ansi1252PST is an ANSI file from a German Outlook.
func ansi1252PST() []byte {
	b := newPSTBuilder(false, false)
	m := &tItem{nid: 0x200004, class: "IPM.Note", props: []tProp{
		pStr8(prSubject, cp1252("Grüße aus Köln")),
		pStr8(prBody, cp1252("Schöne Grüße\r\n")),
		pInt32(prMessageCodepage, 1252),
		pTime(prClientSubmitTime, 1554163200),
	}}
	top := []*tFolder{
		{nid: 0x8062, name: pStr8(prDisplayName, cp1252("Entwürfe")), items: []*tItem{m}},
		{nid: 0x8082, name: pStr8(prDisplayName, cp1252("Éléments envoyés"))},
	}
	b.store(nil, top)
	return b.bytes()
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o444); err != nil {
		t.Fatal(err)
	}
	return p
}

// mimeTree describes the structure of a message: "type[children]".
func mimeTree(t *testing.T, raw []byte) (string, map[string][]byte, *message.Entity) {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bodies := make(map[string][]byte)
	var walk func(e *message.Entity) string
	walk = func(e *message.Entity) string {
		mt, _, _ := e.Header.ContentType()
		if mr := e.MultipartReader(); mr != nil {
			var kids []string
			for {
				p, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				kids = append(kids, walk(p))
			}
			return mt + "[" + strings.Join(kids, ",") + "]"
		}
		b, err := io.ReadAll(e.Body)
		if err != nil {
			t.Fatal(err)
		}
		key := mt
		if _, p, err := e.Header.ContentDisposition(); err == nil && p["filename"] != "" {
			key = p["filename"]
		}
		bodies[key] = b
		return mt
	}
	return walk(ent), bodies, ent
}

func scanOne(t *testing.T, path string, folder []string) ([]PSTMessage, PSTStats, []Problem) {
	t.Helper()
	folders, _, err := Walk(path, FormatPST)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range folders {
		if slices.Equal(f.Path, folder) {
			var msgs []PSTMessage
			st, probs, err := ScanPST(f.Loc, f.Ref, func(m PSTMessage) error {
				msgs = append(msgs, m)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return msgs, st, probs
		}
	}
	t.Fatalf("no folder %q in %q", folder, folderPaths(folders))
	return nil, PSTStats{}, nil
}

func TestPSTSyntheticUnicode(t *testing.T) {
	path := writeTemp(t, "test.pst", unicodePST(true))
	folders, problems, err := Walk(path, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	wantFolders := []string{"Bulk", "Mixed_Stuff", "Projects (noselect)", "Projects/2024", `下書き \Drafts`,
		`削除済みアイテム \Trash`, "受信トレイ", `迷惑メール \Junk`, `送信済みアイテム \Sent`}
	if got := folderPaths(folders); !slices.Equal(got, wantFolders) {
		t.Errorf("folders:\n got %q\nwant %q", got, wantFolders)
	}
	var probs []string
	for _, p := range problems {
		probs = append(probs, p.Err.Error())
	}
	wantProbs := []string{
		`folder "": subfolder: folder name has a "/" or control character; shown as "Mixed_Stuff"`,
		`folder "Contacts": skipped 2 contacts (not mail)`,
		`folder "Mixed_Stuff": skipped 1 task (not mail)`,
	}
	probs = slices.DeleteFunc(probs, func(s string) bool { return false })
	for i, p := range probs {
		probs[i] = strings.Replace(p, `the top folder: subfolder:`, `folder "": subfolder:`, 1)
	}
	slices.Sort(probs)
	if !slices.Equal(probs, wantProbs) {
		t.Errorf("problems:\n got %q\nwant %q", probs, wantProbs)
	}

	inbox, st, probsInbox := scanOne(t, path, []string{"受信トレイ"})
	if len(inbox) != 6 || st.Messages != 6 || st.NonMail != 0 || len(probsInbox) != 0 {
		t.Fatalf("inbox: %d messages, %+v, %v", len(inbox), st, probsInbox)
	}
	for _, m := range inbox {
		checkWireFormat(t, m.ID, m.Raw)
		if _, err := parseMIME(m.Raw); err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
	}

	// A: received mail, original header, rebuilt structure.
	a := inbox[0]
	tree, bodies, ent := mimeTree(t, a.Raw)
	if want := "multipart/mixed[multipart/alternative[text/plain,multipart/related[text/html,image/png]],application/pdf]"; tree != want {
		t.Errorf("A: tree %s, want %s", tree, want)
	}
	if a.ID != "2097156" || !slices.Equal(a.Flags, []string{`\Answered`, `\Flagged`, `\Seen`}) || !a.Received.Equal(time.Unix(1554076800, 0)) {
		t.Errorf("A: id %s flags %v received %v", a.ID, a.Flags, a.Received)
	}
	head := string(a.Raw[:bytes.Index(a.Raw, []byte("\r\n\r\n"))])
	for _, want := range []string{"Received: from mx.example.com by mail.example.jp;\r\n\tMon, 1 Apr 2019", "Message-ID: <report-1@example.com>", "Content-Language: ja", "To: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>"} {
		if !strings.Contains(head, want) {
			t.Errorf("A: header lacks %q:\n%s", want, head)
		}
	}
	if strings.Contains(head, "NextPart_000") || strings.Contains(head, "Microsoft Mail Internet Headers") || strings.Count(head, "MIME-Version") != 1 {
		t.Errorf("A: original MIME structure fields kept:\n%s", head)
	}
	if !bytes.Contains(bodies["text/html"], []byte("売上報告です。")) || !bytes.Equal(bodies["image001.png"], pngBytes) || string(bodies[longJapaneseName]) != "%PDF-1.4 test" {
		t.Errorf("A: bodies %q", bodies)
	}
	if ent.Header.Get("Subject") != "Quarterly report" {
		t.Errorf("A: subject %q", ent.Header.Get("Subject"))
	}
	if !strings.Contains(string(a.Raw), "Content-ID: <image001.png@01D5>") {
		t.Errorf("A: no Content-ID")
	}

	// B: header from properties, Japanese, base64 body, draft.
	b := inbox[1]
	tree, bodies, ent = mimeTree(t, b.Raw)
	sum, _ := parseMIME(b.Raw)
	if tree != "text/plain" || sum.subject != "RE: 会議のお知らせ（第二回）" || sum.messageID != "b@example.jp" {
		t.Errorf("B: tree %s subject %q id %q", tree, sum.subject, sum.messageID)
	}
	if string(bodies["text/plain"]) != "来週の会議は第二会議室で行います。\r\nよろしくお願いします。" || !strings.Contains(string(b.Raw), "Content-Transfer-Encoding: base64") {
		t.Errorf("B: body %q", bodies["text/plain"])
	}
	h := mail.Header{Header: ent.Header}
	for field, want := range map[string]string{
		"From":        "山田 太郎 <yamada@example.jp>",
		"To":          "Alice <alice@example.com>",
		"Cc":          "Bob <BOB@unknown.invalid>, Dan <dan@example.org>",
		"Bcc":         "<carol@example.com>",
		"In-Reply-To": "<a@example.com>",
		"References":  "<z@example.com> <a@example.com>",
		"Date":        "Tue, 02 Apr 2019 00:00:00 +0000",
		"Importance":  "high",
	} {
		got, err := h.Text(field)
		if field == "From" || field == "To" || field == "Cc" || field == "Bcc" {
			got = addressList(t, h, field)
		}
		if err != nil || got != want {
			t.Errorf("B: %s = %q (%v), want %q", field, got, err, want)
		}
	}
	if !slices.Equal(b.Flags, []string{`\Draft`}) || !b.Received.Equal(time.Unix(1554163200, 0)) {
		t.Errorf("B: flags %v received %v", b.Flags, b.Received)
	}

	// C: HTML from encapsulated RTF.
	c := inbox[2]
	tree, bodies, _ = mimeTree(t, c.Raw)
	if tree != "text/html" || string(bodies["text/html"]) != "<html><body>\r\n<p>Café € {ok}</p>\r\n</body></html>\r\n" {
		t.Errorf("C: %s %q", tree, bodies["text/html"])
	}
	if !slices.Equal(c.Flags, []string{`$Forwarded`}) {
		t.Errorf("C: flags %v", c.Flags)
	}

	// D: genuine RTF kept as an attachment.
	tree, bodies, _ = mimeTree(t, inbox[3].Raw)
	if tree != "multipart/mixed[application/rtf]" || string(bodies["body.rtf"]) != `{\rtf1\ansi Hello {\b bold} world\par}` {
		t.Errorf("D: %s %q", tree, bodies)
	}

	// E: embedded message, rebuilt recursively.
	tree, bodies, _ = mimeTree(t, inbox[4].Raw)
	if tree != "multipart/mixed[text/plain,message/rfc822]" {
		t.Errorf("E: %s", tree)
	}
	innerTree, innerBodies, innerEnt := mimeTree(t, bodies["message/rfc822"])
	if innerTree != "multipart/mixed[text/plain,text/plain]" || string(innerBodies["inner.txt"]) != "inner attachment" || innerEnt.Header.Get("Subject") != "Inner message" {
		t.Errorf("E: inner %s %q", innerTree, innerBodies)
	}
	if !strings.Contains(string(bodies["message/rfc822"]), "=_pst_2097284.1_1=") {
		t.Errorf("E: inner boundary not derived from the item")
	}

	// F: large values (XXBLOCK), many attachments (SIBLOCK).
	_, bodies, _ = mimeTree(t, inbox[5].Raw)
	if len(bodies["big.bin"]) != 8<<20+600<<10 || !bytes.HasPrefix(bodies["big.bin"], []byte("0123456789abcdef0123")) || len(bodies["text/plain"]) != 2000*14 {
		t.Errorf("F: big %d bytes, text %d", len(bodies["big.bin"]), len(bodies["text/plain"]))
	}
	for i := range 5 {
		if got := bodies[fmt.Sprintf("part%d.txt", i)]; len(got) != 100*i {
			t.Errorf("F: part%d.txt has %d bytes", i, len(got))
		}
	}

	mixed, st, _ := scanOne(t, path, []string{"Mixed_Stuff"})
	if len(mixed) != 1 || st.NonMail != 1 || st.Messages != 1 {
		t.Errorf("Mixed: %d messages, %+v", len(mixed), st)
	}
	bulk, st, _ := scanOne(t, path, []string{"Bulk"})
	if len(bulk) != 700 || st.Messages != 700 {
		t.Fatalf("Bulk: %d messages", len(bulk))
	}
	for i, m := range bulk {
		if s, _ := parseMIME(m.Raw); s.subject != fmt.Sprintf("bulk %d", i) {
			t.Fatalf("Bulk %d: subject %q", i, s.subject)
		}
	}
}

// addressList returns an address field as "Name <addr>, …".
func addressList(t *testing.T, h mail.Header, field string) string {
	t.Helper()
	list, err := h.AddressList(field)
	if err != nil {
		t.Errorf("%s: %v", field, err)
	}
	var out []string
	for _, a := range list {
		out = append(out, strings.TrimSpace(a.Name+" <"+a.Address+">"))
	}
	return strings.Join(out, ", ")
}

func TestPSTSyntheticANSI(t *testing.T) {
	path := writeTemp(t, "ansi.pst", ansiPST())
	folders, problems, err := Walk(path, FormatPST)
	if err != nil || len(problems) != 0 {
		t.Fatal(err, problems)
	}
	if got, want := folderPaths(folders), []string{"受信トレイ", `送信済みアイテム \Sent`}; !slices.Equal(got, want) {
		t.Errorf("folders %q, want %q", got, want)
	}
	msgs, _, probs := scanOne(t, path, []string{"受信トレイ"})
	if len(msgs) != 2 || len(probs) != 0 {
		t.Fatalf("%d messages, %v", len(msgs), probs)
	}
	tree, bodies, ent := mimeTree(t, msgs[0].Raw)
	sum, _ := parseMIME(msgs[0].Raw)
	if tree != "multipart/alternative[text/plain,text/html]" || sum.subject != "会議のお知らせ" {
		t.Errorf("J1: %s %q", tree, sum.subject)
	}
	if string(bodies["text/plain"]) != "本文です。\r\n二行目。" {
		t.Errorf("J1: text %q", bodies["text/plain"])
	}
	if want := `<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body>会議のお知らせ</body></html>`; string(bodies["text/html"]) != want {
		t.Errorf("J1: html %q", bodies["text/html"])
	}
	h := mail.Header{Header: ent.Header}
	if from, to := addressList(t, h, "From"), addressList(t, h, "To"); from != "山田 太郎 <yamada@example.jp>" || to != "鈴木 <suzuki@example.jp>" {
		t.Errorf("J1: from %q to %q", from, to)
	}
	_, bodies, _ = mimeTree(t, msgs[1].Raw)
	sum, _ = parseMIME(msgs[1].Raw)
	if sum.subject != "日本語の件名" || string(bodies["text/plain"]) != "ISO-2022-JP のメール" {
		t.Errorf("J2: %q %q", sum.subject, bodies["text/plain"])
	}

	path = writeTemp(t, "de.pst", ansi1252PST())
	folders, _, err = Walk(path, FormatPST)
	if got, want := folderPaths(folders), []string{"Entwürfe", "Éléments envoyés"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("German folders %q, %v", folderPaths(folders), err)
	}
	msgs, _, _ = scanOne(t, path, []string{"Entwürfe"})
	_, bodies, _ = mimeTree(t, msgs[0].Raw)
	sum, _ = parseMIME(msgs[0].Raw)
	if sum.subject != "Grüße aus Köln" || string(bodies["text/plain"]) != "Schöne Grüße\r\n" {
		t.Errorf("German: %q %q", sum.subject, bodies["text/plain"])
	}
}

func TestPSTUnreadable(t *testing.T) {
	good := unicodePST(false)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o444); err != nil {
			t.Fatal(err)
		}
		return p
	}
	locked := write("locked.pst", unicodePST(false, pInt32(prPSTPassword, 0x1234abcd)))
	_, _, err := Walk(locked, FormatAuto)
	if !errors.Is(err, ErrPSTPassword) || !strings.Contains(err.Error(), locked) || !strings.Contains(err.Error(), "password-protected") {
		t.Errorf("password: %v", err)
	}
	if _, _, err := ScanPST(locked, "32866", func(PSTMessage) error { return nil }); !errors.Is(err, ErrPSTPassword) {
		t.Errorf("ScanPST password: %v", err)
	}

	ost := slices.Clone(good)
	copy(ost[8:], "SO")
	cyclic := slices.Clone(good)
	cyclic[513] = 2
	for name, data := range map[string][]byte{
		"empty.pst":     nil,
		"short.pst":     []byte("!BDN\x00\x00\x00\x00SM\x17\x00"),
		"notpst.pst":    bytes.Repeat([]byte("x"), 4096),
		"ost.pst":       ost,
		"cyclic.pst":    cyclic,
		"truncated.pst": good[:len(good)/3],
		"noindex.pst":   append(slices.Clone(good[:564]), make([]byte, 4096)...),
	} {
		p := write(name, data)
		_, _, err := Walk(p, FormatPST)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err %v, want one naming the file", name, err)
		}
	}

	// Damage inside the file: every item still comes out or is a Problem.
	damaged := slices.Clone(good)
	for i := 2048; i < len(damaged)/2; i += 997 {
		damaged[i] ^= 0x5a
	}
	p := write("damaged.pst", damaged)
	folders, _, err := Walk(p, FormatPST)
	if err == nil {
		for _, f := range folders {
			if !f.NoSelect {
				ScanPST(p, f.Ref, func(m PSTMessage) error {
					checkWireFormat(t, "damaged "+m.ID, m.Raw)
					return nil
				})
			}
		}
	}

	// fn's error comes back as it is.
	stop := errors.New("stop")
	path := write("ok.pst", good)
	folders, _, _ = Walk(path, FormatPST)
	n := 0
	for _, f := range folders {
		if slices.Equal(f.Path, []string{"Bulk"}) {
			_, _, err := ScanPST(path, f.Ref, func(PSTMessage) error { n++; return stop })
			if err != stop || n != 1 {
				t.Errorf("fn error: %v after %d", err, n)
			}
		}
	}
	if _, _, err := ScanPST(path, "12345", func(PSTMessage) error { return nil }); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("bad ref: %v", err)
	}
}

// smallPST is a small Unicode file with one message of each shape, the
// fuzz seed.
func smallPST() []byte {
	b := newPSTBuilder(true, true)
	inner := &tItem{class: "IPM.Note", props: []tProp{pUni(prSubject, "inner"), pUni(prBody, "x")}}
	m := &tItem{nid: 0x200004, class: "IPM.Note", props: []tProp{
		pUni(prSubject, "s"), pUni(prBody, "t"), pBin(prHTML, []byte(`<img src="cid:i">`)),
		pUni(prTransportHeaders, "From: a@b\r\nContent-Type: text/plain\r\n"),
		pBin(prRTFCompressed, compressRTF([]byte(`{\rtf1\fromhtml1 {\*\htmltag <p>}}`))),
	}, recipients: []tRecip{{kind: 1, name: "A", addr: "a@b", addrType: "SMTP"}},
		attachments: []*tAttach{
			{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachLongFilename, "i.png"), pUni(prAttachContentID, "i"), pBin(prAttachData, pngBytes)}},
			{props: []tProp{pUni(prDisplayName, "inner")}, embedded: inner},
		}}
	b.store(nil, []*tFolder{{nid: 0x8062, name: pUni(prDisplayName, "Inbox"), items: []*tItem{m}}})
	return b.bytes()
}

func FuzzPSTFile(f *testing.F) {
	f.Add(smallPST())
	f.Add(ansi1252PST())
	pstStrictGuard = true
	f.Cleanup(func() { pstStrictGuard = false })
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := newPSTFile("fuzz.pst", bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrPSTCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		folders, _, err := walkOpenPST(p, "fuzz.pst")
		if err != nil {
			return
		}
		for _, fo := range folders {
			if fo.NoSelect {
				continue
			}
			nid, _ := strconv.ParseUint(fo.Ref, 10, 32)
			scanOpenPST(p, "fuzz.pst", uint32(nid), func(m PSTMessage) error {
				checkWireFormat(t, m.ID, m.Raw)
				return nil
			})
		}
	})
}

// TestPSTMutations damages the small file at random places, thousands of
// times: every run ends in an error, Problems or messages in wire format,
// never in a panic raised by this package.
func TestPSTMutations(t *testing.T) {
	pstStrictGuard = true
	defer func() { pstStrictGuard = false }()
	seed := smallPST()
	rng := rand.New(rand.NewPCG(1, 2))
	delivered := 0
	for range 3000 {
		data := bytes.Clone(seed)
		for range 1 + rng.IntN(40) {
			data[rng.IntN(len(data))] = byte(rng.IntN(256))
		}
		if rng.IntN(10) == 0 {
			data = data[:rng.IntN(len(data))]
		}
		p, err := newPSTFile("m.pst", bytes.NewReader(data))
		if err != nil {
			continue
		}
		folders, _, err := walkOpenPST(p, "m.pst")
		if err != nil {
			continue
		}
		for _, fo := range folders {
			if fo.NoSelect {
				continue
			}
			nid, _ := strconv.ParseUint(fo.Ref, 10, 32)
			scanOpenPST(p, "m.pst", uint32(nid), func(m PSTMessage) error {
				checkWireFormat(t, m.ID, m.Raw)
				delivered++
				return nil
			})
		}
	}
	if delivered == 0 {
		t.Error("no message survived any mutation")
	}
}

func TestPSTSMIME(t *testing.T) {
	signed := "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n" +
		"\tboundary=\"sig\"\r\nMIME-Version: 1.0\r\n\r\n" +
		"--sig\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsigned text\r\n" +
		"--sig\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--sig--\r\n"
	b := newPSTBuilder(true, false)
	m := &tItem{nid: 0x200004, class: "IPM.Note.SMIME.MultipartSigned", props: []tProp{
		pUni(prSubject, "signed"),
		pUni(prTransportHeaders, "From: a@example.com\r\nSubject: signed\r\nContent-Type: multipart/signed; boundary=old\r\n"),
		pUni(prBody, "signed text"),
	}, attachments: []*tAttach{{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachMimeTag, "multipart/signed"),
		pUni(prAttachLongFilename, "smime.p7m"), pBin(prAttachData, []byte(signed))}}}}
	enc := &tItem{nid: 0x200024, class: "IPM.Note.SMIME", props: []tProp{pUni(prSubject, "encrypted")},
		attachments: []*tAttach{{props: []tProp{pInt32(prAttachMethod, attachByValue), pUni(prAttachMimeTag, "application/pkcs7-mime"),
			pUni(prAttachLongFilename, "smime.p7m"), pBin(prAttachData, []byte{1, 2, 3})}}}}
	b.store(nil, []*tFolder{{nid: 0x8062, name: pUni(prDisplayName, "Inbox"), items: []*tItem{m, enc}}})
	path := writeTemp(t, "smime.pst", b.bytes())
	msgs, _, probs := scanOne(t, path, []string{"Inbox"})
	if len(msgs) != 2 || len(probs) != 0 {
		t.Fatalf("%d messages, %v", len(msgs), probs)
	}
	raw := string(msgs[0].Raw)
	if want := "From: a@example.com\r\nSubject: signed\r\nMIME-Version: 1.0\r\n" + strings.Replace(signed, "MIME-Version: 1.0\r\n", "", 1); raw != want {
		t.Errorf("signed:\n%s\nwant\n%s", raw, want)
	}
	tree, bodies, _ := mimeTree(t, msgs[1].Raw)
	if tree != "application/pkcs7-mime" || !bytes.Equal(bodies["smime.p7m"], []byte{1, 2, 3}) {
		t.Errorf("encrypted: %s %q", tree, bodies)
	}
}
