package backend

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/backend/message"
	lt "github.com/popbridge/popbridge/internal/legacytest"
)

// The stores of issue I through the real bridge: Becky!, Outlook Express,
// Windows Live Mail, Apple Mail and Eudora, written by internal/legacytest,
// served over IMAP to go-imap's client byte for byte with their flags,
// sealed, with UIDs that survive restarts, growth and compaction.

// lmsg is a test message: CRLF, distinct per i.
func lmsg(i int, body ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender %d <s%d@example.jp>\r\nTo: me@example.jp\r\nSubject: legacy %d\r\nMessage-ID: <legacy%d@example.jp>\r\nDate: Tue, 3 Jan 2006 10:%02d:00 +0900\r\n\r\n", i, i, i, i, i%60)
	if len(body) == 0 {
		body = []string{fmt.Sprintf("body %d", i)}
	}
	for _, l := range body {
		b.WriteString(l + "\r\n")
	}
	return []byte(b.String())
}

func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// wantMsg is what a client should see.
type wantMsg struct {
	body  []byte
	flags []string
}

func flagList(fl ...imap.Flag) []string {
	out := []string{}
	for _, f := range fl {
		out = append(out, string(f))
	}
	sort.Strings(out)
	return out
}

func gotFlags(m fetched) []string {
	out := []string{}
	for _, f := range m.Flags {
		out = append(out, string(f))
	}
	return out
}

// legacyCase is one store: it writes itself and says what each folder
// (below Local/) must hold; grow adds a message (after the existing ones).
type legacyCase struct {
	name    string
	write   func(t *testing.T, root string) (src string, want map[string][]wantMsg)
	grow    func(t *testing.T, root string) (folder string, added wantMsg)
	compact func(t *testing.T, root string) (folder string) // drops the folder's first message
}

var legacyCases = []legacyCase{
	{
		name: "becky",
		write: func(t *testing.T, root string) (string, map[string][]wantMsg) {
			inbox := beckyInbox()
			err := lt.WriteBecky(root, []lt.BeckyMailbox{{Dir: "4a5b6c7d.mb", Name: lt.SJIS("仕事"), Folders: []lt.BeckyFolder{
				{Dir: "!!!!Inbox", Msgs: inbox, PerFile: 3},
				{Dir: "!!!!Outbox", Msgs: []lt.BeckyMsg{{Raw: lmsg(20), Status: lt.BeckyRead}}},
				{Dir: lt.SJIS("取引先"), Msgs: []lt.BeckyMsg{{Raw: lmsg(21, ".dot", "..dots")}}},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			var in []wantMsg
			fl := [][]string{flagList(), flagList(imap.FlagSeen), flagList(imap.FlagForwarded), flagList(imap.FlagAnswered),
				flagList(imap.FlagMDNSent), flagList(imap.FlagFlagged), flagList(imap.FlagSeen, imap.FlagForwarded, imap.FlagAnswered, imap.FlagMDNSent, imap.FlagFlagged)}
			k := 0
			for _, m := range inbox {
				if !m.Deleted {
					in = append(in, wantMsg{m.Raw, fl[k]})
					k++
				}
			}
			return root, map[string][]wantMsg{"Inbox": in, "Sent": {{lmsg(20), flagList(imap.FlagSeen)}}, "取引先": {{lmsg(21, ".dot", "..dots"), flagList()}}}
		},
		grow: func(t *testing.T, root string) (string, wantMsg) {
			dir := filepath.Join(root, "4a5b6c7d.mb", "!!!!Inbox")
			msg := lt.BeckyMsg{Raw: lmsg(30, "new mail"), Status: lt.BeckyFlagged}
			bmf := filepath.Join(dir, "5a000002.bmf")
			old, err := os.ReadFile(bmf)
			if err != nil {
				t.Fatal(err)
			}
			add, _ := lt.BeckyBMF([]lt.BeckyMsg{msg})
			appendTo(t, bmf, add)
			appendTo(t, filepath.Join(dir, "Folder.idx"), lt.BeckyIndexLine("5a000002.bmf", int64(len(old)), msg))
			return "Inbox", wantMsg{msg.Raw, flagList(imap.FlagFlagged)}
		},
		compact: func(t *testing.T, root string) string {
			// Becky! compacts a folder: the deleted message goes, the
			// others move to new offsets in new files.
			dir := filepath.Join(root, "4a5b6c7d.mb", "!!!!Inbox")
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				os.Remove(filepath.Join(dir, e.Name()))
			}
			var keep []lt.BeckyMsg
			for _, m := range beckyInbox()[1:] {
				if !m.Deleted {
					keep = append(keep, m)
				}
			}
			keep = append(keep, lt.BeckyMsg{Raw: lmsg(30, "new mail"), Status: lt.BeckyFlagged})
			if err := lt.WriteBeckyFolder(dir, lt.BeckyFolder{Msgs: keep, PerFile: 5}); err != nil {
				t.Fatal(err)
			}
			return "Inbox"
		},
	},
	{
		name: "dbx",
		write: func(t *testing.T, root string) (string, map[string][]wantMsg) {
			writeDBX(t, root, dbxInbox(), nil)
			fl := [][]string{flagList(), flagList(imap.FlagSeen), flagList(imap.FlagFlagged), flagList(imap.FlagDraft),
				flagList(imap.FlagAnswered), flagList(imap.FlagForwarded), flagList(imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered, imap.FlagForwarded)}
			var in []wantMsg
			k := 0
			for _, m := range dbxInbox() {
				if !m.Deleted {
					in = append(in, wantMsg{m.Raw, fl[k]})
					k++
				}
			}
			return root, map[string][]wantMsg{"受信トレイ": in, "送信済みアイテム": {{lmsg(40), flagList(imap.FlagSeen)}}}
		},
		grow: func(t *testing.T, root string) (string, wantMsg) {
			m := lt.DBXMsg{Raw: lmsg(41, "new mail"), Flags: lt.DBXRead | lt.DBXAnswered, Index: 100}
			writeDBX(t, root, append(dbxInbox(), m), nil)
			return "受信トレイ", wantMsg{m.Raw, flagList(imap.FlagSeen, imap.FlagAnswered)}
		},
		compact: func(t *testing.T, root string) string {
			var keep []lt.DBXMsg
			for _, m := range dbxInbox()[1:] {
				if !m.Deleted {
					keep = append(keep, m)
				}
			}
			keep = append(keep, lt.DBXMsg{Raw: lmsg(41, "new mail"), Flags: lt.DBXRead | lt.DBXAnswered, Index: 100})
			writeDBX(t, root, keep, nil)
			return "受信トレイ"
		},
	},
	{
		name: "wlm",
		write: func(t *testing.T, root string) (string, map[string][]wantMsg) {
			root = filepath.Join(root, "Windows Live Mail")
			err := lt.WriteWLM(root, []lt.WLMFolder{{Dir: "Inbox", Msgs: [][]byte{lmsg(50), lmsg(51)}}, {Dir: "Sent Items", Msgs: [][]byte{lmsg(52)}}},
				[]lt.WLMFolder{{Dir: "仕事", Msgs: [][]byte{lmsg(53)}}},
				[]lt.WLMAccount{{Dir: "imap.example.jp", Name: "IMAP", Kind: "imap", Folders: []lt.WLMFolder{{Dir: "INBOX", Msgs: [][]byte{lmsg(54)}}}}})
			if err != nil {
				t.Fatal(err)
			}
			return root, map[string][]wantMsg{"Inbox": {{lmsg(50), flagList()}, {lmsg(51), flagList()}}, "Sent Items": {{lmsg(52), flagList()}}, "仕事": {{lmsg(53), flagList()}}}
		},
		grow: func(t *testing.T, root string) (string, wantMsg) {
			writeFileBytes(t, filepath.Join(root, "Windows Live Mail", "Inbox", "{FFFFFFFF-0000-0000-0000-000000000001}.eml"), lmsg(55))
			return "Inbox", wantMsg{lmsg(55), flagList()}
		},
	},
	{
		name: "applemail",
		write: func(t *testing.T, root string) (string, map[string][]wantMsg) {
			flags := []uint64{0, lt.EMLXRead, lt.EMLXAnswered, lt.EMLXFlagged, lt.EMLXDraft, lt.EMLXForwarded, lt.EMLXJunk, lt.EMLXNotJunk}
			want := [][]string{flagList(), flagList(imap.FlagSeen), flagList(imap.FlagAnswered), flagList(imap.FlagFlagged), flagList(imap.FlagDraft),
				flagList(imap.FlagForwarded), flagList(imap.FlagJunk), flagList(imap.FlagNotJunk)}
			var msgs []lt.AppleMsg
			var in []wantMsg
			for i, f := range flags {
				msgs = append(msgs, lt.AppleMsg{ID: 10 + i, Raw: lf(lmsg(60 + i)), Flags: f, Received: time.Date(2010, 5, 1, 9, i, 0, 0, time.UTC)})
				in = append(in, wantMsg{lmsg(60 + i), want[i]})
			}
			msgs = append(msgs, lt.AppleMsg{ID: 30, Raw: lf(lmsg(70)), Flags: lt.EMLXDeleted})
			_, err := lt.WriteAppleMail(root, 10, []lt.AppleMailbox{{Name: "Archive", Msgs: msgs, Children: []lt.AppleMailbox{{Name: "2019", Msgs: []lt.AppleMsg{{ID: 1, Raw: lf(lmsg(71)), Flags: lt.EMLXRead}}}}}},
				map[string][]lt.AppleMailbox{"POP-taro@example.jp": {{Name: "INBOX", Msgs: []lt.AppleMsg{{ID: 1, Raw: lf(lmsg(72))}}}, {Name: "Sent Messages", Msgs: []lt.AppleMsg{{ID: 2, Raw: lf(lmsg(73)), Flags: lt.EMLXRead}}}}})
			if err != nil {
				t.Fatal(err)
			}
			return root, map[string][]wantMsg{"Archive": in, "Archive/2019": {{lmsg(71), flagList(imap.FlagSeen)}},
				"taro@example.jp/Inbox": {{lmsg(72), flagList()}}, "taro@example.jp/Sent Messages": {{lmsg(73), flagList(imap.FlagSeen)}}}
		},
		grow: func(t *testing.T, root string) (string, wantMsg) {
			writeFileBytes(t, filepath.Join(root, "V10", "Mailboxes", "Archive.mbox", "4E2D2D3B-6C1B-4B8E-9A55-0A1B2C3D4E5F", "Data", "Messages", "99.emlx"), lt.EMLX(lf(lmsg(74)), lt.EMLXRead|lt.EMLXFlagged, time.Time{}))
			return "Archive", wantMsg{lmsg(74), flagList(imap.FlagSeen, imap.FlagFlagged)}
		},
	},
	{
		name: "eudora",
		write: func(t *testing.T, root string) (string, map[string][]wantMsg) {
			sep := "From ???@??? Tue Jan 03 10:00:00 2006\r\n"
			writeFileBytes(t, filepath.Join(root, "In.mbx"), []byte(sep+string(lmsg(80))+sep+string(lmsg(81, "From here on, not a separator"))))
			writeFileBytes(t, filepath.Join(root, "In.toc"), []byte{1, 0})
			writeFileBytes(t, filepath.Join(root, "Out.mbx"), []byte(sep+string(lmsg(82))))
			writeFileBytes(t, filepath.Join(root, "descmap.pce"), []byte("In,In.mbx,S,N\r\nOut,Out.mbx,S,N\r\n"))
			return root, map[string][]wantMsg{"In": {{lmsg(80), flagList()}, {lmsg(81, "From here on, not a separator"), flagList()}}, "Out": {{lmsg(82), flagList()}}}
		},
	},
}

func beckyInbox() []lt.BeckyMsg {
	st := []uint32{0, lt.BeckyRead, lt.BeckyForwarded, lt.BeckyReplied, lt.BeckyMDNSent, lt.BeckyFlagged,
		lt.BeckyRead | lt.BeckyForwarded | lt.BeckyReplied | lt.BeckyMDNSent | lt.BeckyFlagged}
	var msgs []lt.BeckyMsg
	for i, s := range st {
		msgs = append(msgs, lt.BeckyMsg{Raw: lmsg(i, ".leading dot", fmt.Sprintf("line %d", i)), Status: s})
		if i == 2 {
			msgs = append(msgs, lt.BeckyMsg{Raw: lmsg(99), Deleted: true})
		}
	}
	return msgs
}

func dbxInbox() []lt.DBXMsg {
	fl := []uint32{0, lt.DBXRead, lt.DBXFlagged, lt.DBXDraft, lt.DBXAnswered, lt.DBXForwarded, lt.DBXRead | lt.DBXFlagged | lt.DBXAnswered | lt.DBXForwarded}
	var msgs []lt.DBXMsg
	long := strings.Repeat("a line of a long message that spans several blocks of the .dbx file\r\n", 40)
	for i, f := range fl {
		msgs = append(msgs, lt.DBXMsg{Raw: lmsg(100+i, long), Flags: f, Received: time.Date(2004, 4, 1, 8, i, 0, 0, time.UTC), Index: uint32(i + 1)})
		if i == 3 {
			msgs = append(msgs, lt.DBXMsg{Raw: lmsg(98), Deleted: true, Index: 50})
		}
	}
	return msgs
}

// writeDBX writes the Outlook Express store: Folders.dbx, the Inbox with
// msgs, Sent Items, an IMAP folder.
func writeDBX(t *testing.T, root string, inbox []lt.DBXMsg, _ []lt.DBXMsg) {
	t.Helper()
	in, _ := lt.DBXFile(inbox, lt.DBXOptions{})
	writeFileBytes(t, filepath.Join(root, lt.SJIS("受信トレイ.dbx")), in)
	sent, _ := lt.DBXFile([]lt.DBXMsg{{Raw: lmsg(40), Flags: lt.DBXRead}}, lt.DBXOptions{})
	writeFileBytes(t, filepath.Join(root, lt.SJIS("送信済みアイテム.dbx")), sent)
	imapf, _ := lt.DBXFile([]lt.DBXMsg{{Raw: lmsg(42)}}, lt.DBXOptions{Source: 1})
	writeFileBytes(t, filepath.Join(root, "INBOX.dbx"), imapf)
	writeFileBytes(t, filepath.Join(root, "Folders.dbx"), lt.FoldersDBX([]lt.DBXFolderInfo{
		{ID: 0}, {ID: 1, Name: lt.SJIS("ローカル フォルダ")},
		{ID: 2, Parent: 1, Name: lt.SJIS("受信トレイ"), File: lt.SJIS("受信トレイ.dbx")},
		{ID: 3, Parent: 1, Name: lt.SJIS("送信済みアイテム"), File: lt.SJIS("送信済みアイテム.dbx")},
		{ID: 4, Name: "imap.example.jp"}, {ID: 5, Parent: 4, Name: "INBOX", File: "INBOX.dbx"},
	}))
}

func writeFileBytes(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, p string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkFolder compares what a client fetches with want, and returns it.
func checkFolder(t *testing.T, e *env, name string, want []wantMsg) []fetched {
	t.Helper()
	c := e.client(nil)
	got := fetchAll(t, c, "Local/"+name)
	c.Close()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", name, len(got), len(want))
	}
	for i, m := range got {
		if !bytes.Equal(m.Body, want[i].body) {
			t.Errorf("%s UID %d: BODY[]\n%q\nwant\n%q", name, m.UID, m.Body, want[i].body)
		}
		if m.Size != int64(len(m.Body)) {
			t.Errorf("%s UID %d: RFC822.SIZE %d, BODY[] %d bytes", name, m.UID, m.Size, len(m.Body))
		}
		if g := gotFlags(m); !slices.Equal(g, want[i].flags) {
			t.Errorf("%s UID %d: flags %q, want %q", name, m.UID, g, want[i].flags)
		}
	}
	return got
}

func sameSeal(t *testing.T, what string, before, after map[string]fileState) {
	t.Helper()
	if !maps.Equal(before, after) {
		t.Errorf("%s: the archive changed (files before %d, after %d)", what, len(before), len(after))
	}
}

// TestLegacyFormatsThroughIMAP serves each store over IMAP: every message
// byte for byte with its flags and RFC822.SIZE; the archive files never
// change; UIDs survive a restart, the old program adding mail (new UIDs
// above the old ones) and compacting its files (survivors keep theirs).
func TestLegacyFormatsThroughIMAP(t *testing.T) {
	for _, lc := range legacyCases {
		t.Run(lc.name, func(t *testing.T) {
			root := t.TempDir()
			src, want := lc.write(t, root)
			seal := sealOf(t, root)
			e := newEnv(t, Source{Name: lc.name, Path: src, Format: archive.FormatAuto})
			c := e.client(nil)
			list, err := c.List("", "Local/*", nil).Collect()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			var selectable []string
			for _, l := range list {
				if !slices.ContainsFunc(l.Attrs, func(a imap.MailboxAttr) bool { return strings.EqualFold(string(a), `\Noselect`) }) {
					selectable = append(selectable, strings.TrimPrefix(l.Mailbox, "Local/"))
				}
			}
			sort.Strings(selectable)
			if names := slices.Sorted(maps.Keys(want)); !slices.Equal(selectable, names) {
				t.Fatalf("folders %q, want %q", selectable, names)
			}
			before := map[string][]fetched{}
			for name, w := range want {
				before[name] = checkFolder(t, e, name, w)
			}
			e.restart()
			for name, w := range want {
				after := checkFolder(t, e, name, w)
				if !slices.Equal(uids(after), uids(before[name])) {
					t.Errorf("%s: UIDs %v after a restart, before %v", name, uids(after), uids(before[name]))
				}
			}
			sameSeal(t, "serving", seal, sealOf(t, root))
			if lc.grow == nil {
				return
			}
			folder, added := lc.grow(t, root)
			seal = sealOf(t, root)
			if _, err := e.acct.Index(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			grown := checkFolder(t, e, folder, append(slices.Clone(want[folder]), added))
			if !slices.Equal(uids(grown[:len(grown)-1]), uids(before[folder])) || grown[len(grown)-1].UID <= before[folder][len(before[folder])-1].UID {
				t.Errorf("%s grown: UIDs %v, before %v", folder, uids(grown), uids(before[folder]))
			}
			sameSeal(t, "indexing", seal, sealOf(t, root))
			if lc.compact == nil {
				return
			}
			lc.compact(t, root)
			if _, err := e.acct.Index(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			compacted := checkFolder(t, e, folder, append(slices.Clone(want[folder][1:]), added))
			if !slices.Equal(uids(compacted), uids(grown[1:])) {
				t.Errorf("%s compacted: UIDs %v, want %v", folder, uids(compacted), uids(grown[1:]))
			}
		})
	}
}

// TestLegacyFlagsFollowTheArchive: a flag the old program changes shows up
// after the next index, unless a client changed that message's flags.
func TestLegacyFlagsFollowTheArchive(t *testing.T) {
	root := t.TempDir()
	msgs := []lt.BeckyMsg{{Raw: lmsg(1)}, {Raw: lmsg(2)}}
	dir := filepath.Join(root, "11112222.mb", "!!!!Inbox")
	if err := lt.WriteBecky(root, []lt.BeckyMailbox{{Dir: "11112222.mb", Name: "Home", Folders: []lt.BeckyFolder{{Dir: "!!!!Inbox", Msgs: msgs}}}}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Source{Name: "Becky", Path: root})
	c := e.client(nil)
	if _, err := c.Select("Local/Inbox", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$Important"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	msgs[0].Status, msgs[1].Status = lt.BeckyRead|lt.BeckyReplied, lt.BeckyRead
	if err := lt.WriteBeckyFolder(dir, lt.BeckyFolder{Msgs: msgs}); err != nil {
		t.Fatal(err)
	}
	// The rewrite keeps sizes; make the change visible to the signature.
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "Folder.idx"), future, future)
	if _, err := e.acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	checkFolder(t, e, "Inbox", []wantMsg{{lmsg(1), flagList(imap.FlagSeen, imap.FlagAnswered)}, {lmsg(2), flagList("$Important")}})
}

// TestLegacyChangedUnderTheBridge: bytes that no longer match their CRC
// are refused with UNAVAILABLE, and the re-index serves the new message.
func TestLegacyChangedUnderTheBridge(t *testing.T) {
	root := t.TempDir()
	writeDBX(t, root, dbxInbox(), nil)
	e := newEnv(t, Source{Name: "OE", Path: root})
	c := e.client(nil)
	before := fetchAll(t, c, "Local/受信トレイ")
	// Rewrite one message in place, same length.
	path := filepath.Join(root, lt.SJIS("受信トレイ.dbx"))
	data, _ := os.ReadFile(path)
	i := bytes.Index(data, []byte("Subject: legacy 100\r\n"))
	copy(data[i:], "Subject: LEGACY 100\r\n")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	_, err := c.Fetch(imap.UIDSetNum(before[0].UID), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") && !strings.Contains(err.Error(), "re-indexed") {
		t.Fatalf("fetch of a changed message: %v", err)
	}
	if _, err := e.acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	after := fetchAll(t, c, "Local/受信トレイ")
	if len(after) != len(before) || !bytes.Contains(after[len(after)-1].Body, []byte("Subject: LEGACY 100")) {
		t.Fatalf("after re-index: %d messages, last %q", len(after), after[len(after)-1].Body)
	}
	if !slices.Equal(uids(after[:len(after)-1]), uids(before[1:])) {
		t.Errorf("UIDs %v, before %v", uids(after), uids(before))
	}
}

// TestMigrateLegacyFormats copies every store into a private Dovecot with
// `migrate`, proves it with `verify`, and compares every message on the
// server with the archive: bytes and flags.
func TestMigrateLegacyFormats(t *testing.T) {
	var sources []Source
	wants := map[string][]wantMsg{}
	for _, lc := range legacyCases {
		root := t.TempDir()
		src, want := lc.write(t, root)
		sources = append(sources, Source{Name: lc.name, Path: src})
		for f, w := range want {
			wants["Local/"+lc.name+"/"+f] = w
		}
	}
	re := newRemoteEnv(t, nil, sources...)
	a := re.acct
	_, res := mustMigrate(t, a, MigrateOptions{})
	if !res.Complete {
		t.Fatalf("migrate incomplete: %+v", res)
	}
	rep, err := a.Verify(context.Background(), MigrateOptions{})
	if err != nil || !rep.OK || len(rep.Missing) != 0 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	// Every server folder, by header fingerprint.
	dc := re.dovecotClient()
	list, err := dc.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	type srvMsg struct {
		folder string
		body   []byte
		flags  []string
	}
	onServer := map[message.FP][]srvMsg{}
	for _, l := range list {
		if slices.ContainsFunc(l.Attrs, func(a imap.MailboxAttr) bool {
			return strings.EqualFold(string(a), `\Noselect`) || strings.EqualFold(string(a), `\NonExistent`)
		}) {
			continue
		}
		for _, m := range re.dc.Messages(t, re.user, l.Mailbox) {
			hdr, _ := message.SplitHeader(m.Body)
			var fl []string
			for _, f := range m.Flags {
				fl = append(fl, string(f))
			}
			sort.Strings(fl)
			if fl == nil {
				fl = []string{}
			}
			fp := message.HeaderFP(hdr)
			onServer[fp] = append(onServer[fp], srvMsg{l.Mailbox, m.Body, fl})
		}
	}
	n := 0
	for folder, w := range wants {
		for _, m := range w {
			hdr, _ := message.SplitHeader(m.body)
			got := onServer[message.HeaderFP(hdr)]
			if len(got) != 1 {
				t.Errorf("%s: %.40q is %d times on the server", folder, m.body, len(got))
				continue
			}
			if !bytes.Equal(got[0].body, m.body) || !slices.Equal(got[0].flags, m.flags) {
				t.Errorf("%s: on the server in %s with flags %q, bytes equal %v; want flags %q", folder, got[0].folder, got[0].flags, bytes.Equal(got[0].body, m.body), m.flags)
			}
			if strings.HasSuffix(folder, "/Sent") || strings.HasSuffix(folder, "送信済みアイテム") || strings.HasSuffix(folder, "Sent Items") || strings.HasSuffix(folder, "Sent Messages") || strings.HasSuffix(folder, "/Out") {
				if got[0].folder != "Sent" {
					t.Errorf("%s went to %s, not the server's Sent", folder, got[0].folder)
				}
			}
			n++
		}
	}
	if n < 30 {
		t.Fatalf("only %d messages compared", n)
	}
}

// TestLegacyPartialEMLX: a .partial.emlx is served rebuilt from its parts
// (cached once: a rescan neither rewrites nor renumbers it); when the
// missing part arrives, the complete message replaces the incomplete one.
func TestLegacyPartialEMLX(t *testing.T) {
	att := bytes.Repeat([]byte("attachment bytes \x00\x01\x02 "), 50)
	enc := base64.StdEncoding.EncodeToString(att)
	var wrapped strings.Builder
	for len(enc) > 76 {
		wrapped.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	wrapped.WriteString(enc)
	head := "From: a@example.jp\nSubject: partial\nMessage-ID: <partial@example.jp>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BB\"\n\n--BB\nContent-Type: text/plain\n\nsee the attachment\n--BB\nContent-Type: application/octet-stream; name=\"a.bin\"\nContent-Transfer-Encoding: base64\n"
	full := []byte(head + "\n" + wrapped.String() + "\n--BB--\n")
	skel := []byte(head + "X-Apple-Content-Length: 1234\n\n\n--BB--\n")
	root := t.TempDir()
	mb := lt.AppleMailbox{Name: "INBOX", V2: true, Msgs: []lt.AppleMsg{{ID: 1, Raw: skel, Partial: true, Flags: lt.EMLXRead}, {ID: 2, Raw: lf(lmsg(90))}}}
	if err := lt.WriteAppleMailbox(root, mb); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "INBOX.mbox")
	e := newEnv(t, Source{Name: "Mail", Path: src})
	first := checkFolder(t, e, "Mail", []wantMsg{{bytes.ReplaceAll(skel, []byte("\n"), []byte("\r\n")), flagList(imap.FlagSeen)}, {lmsg(90), flagList()}})
	cacheFiles := func() int {
		n := 0
		filepath.WalkDir(filepath.Join(e.dataDir, "maildir"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
		return n
	}
	if n := cacheFiles(); n != 1 {
		t.Fatalf("%d cached files, want 1", n)
	}
	// Touch the mailbox: a rescan keeps the same cached copy and UID.
	writeFileBytes(t, filepath.Join(src, "Messages", "3.emlx"), lt.EMLX(lf(lmsg(91)), 0, time.Time{}))
	if _, err := e.acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	again := checkFolder(t, e, "Mail", []wantMsg{{bytes.ReplaceAll(skel, []byte("\n"), []byte("\r\n")), flagList(imap.FlagSeen)}, {lmsg(90), flagList()}, {lmsg(91), flagList()}})
	if again[0].UID != first[0].UID || cacheFiles() != 1 {
		t.Errorf("rescan: UID %d (was %d), %d cached files", again[0].UID, first[0].UID, cacheFiles())
	}
	// The part arrives.
	writeFileBytes(t, filepath.Join(src, "Messages", "1.2.emlxpart"), []byte(wrapped.String()+"\n"))
	if _, err := e.acct.Index(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	done := checkFolder(t, e, "Mail", []wantMsg{{lmsg(90), flagList()}, {lmsg(91), flagList()}, {bytes.ReplaceAll(full, []byte("\n"), []byte("\r\n")), flagList(imap.FlagSeen)}})
	if done[2].UID <= again[2].UID || cacheFiles() != 1 {
		t.Errorf("completed: UIDs %v, %d cached files", uids(done), cacheFiles())
	}
}
