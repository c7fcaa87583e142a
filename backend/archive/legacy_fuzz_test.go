package archive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	lt "github.com/popbridge/popbridge/internal/legacytest"
)

// Fuzz targets of the Becky!, Outlook Express, Apple Mail, Windows Live
// Mail and Eudora readers. Seeds are in testdata/fuzz/<FuzzName>/, written
// from the synthetic stores by TestWriteLegacyFuzzSeeds (run with
// POPBRIDGE_WRITE_FUZZ_SEEDS=1 to refresh them).

func FuzzBeckyIndex(f *testing.F) {
	f.Add([]byte("header\r\n0\x015a000000.bmf\x01<a@b>\x010\x010\x0110\x011\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, problems := parseBeckyIndex(data)
		for _, e := range entries {
			if e.line < 1 || e.off < 0 || !strings.EqualFold(filepath.Ext(e.file), ".bmf") {
				t.Fatalf("bad entry %+v", e)
			}
		}
		for _, p := range problems {
			if !strings.HasPrefix(p, "Folder.idx line ") {
				t.Fatalf("problem %q", p)
			}
		}
		beckyMailboxINI(data)
	})
}

// FuzzBeckyFolder scans a folder made of one Folder.idx and one .bmf.
func FuzzBeckyFolder(f *testing.F) {
	bmf, offs := lt.BeckyBMF([]lt.BeckyMsg{{Raw: legacyMsg(1, "")}, {Raw: legacyMsg(2, "", ".dot")}})
	idx := append([]byte("h\r\n"), lt.BeckyIndexLine("5a000000.bmf", offs[0], lt.BeckyMsg{Raw: legacyMsg(1, ""), Status: 1})...)
	f.Add(idx, bmf)
	f.Fuzz(func(t *testing.T, idx, bmf []byte) {
		dir := t.TempDir()
		if len(idx) > 0 {
			writeFile(t, filepath.Join(dir, "Folder.idx"), idx)
		}
		writeFile(t, filepath.Join(dir, "5a000000.bmf"), bmf)
		probs, err := ScanItems(Folder{Kind: KindBecky, Loc: dir}, nil, func(it *Item) error {
			if it.Offset < 0 || it.Length <= 0 || it.Offset+it.Length > int64(len(bmf)) {
				t.Fatalf("item %s at %d+%d outside the %d-byte file", it.ID, it.Offset, it.Length, len(bmf))
			}
			checkServed(t, bmf[it.Offset:it.Offset+it.Length], it.Served)
			back, err := ReadItem(KindBecky, it.Path, it.Offset, it.Length, nil)
			if err != nil || !bytes.Equal(back, it.Served) {
				t.Fatalf("ReadItem differs from the scan: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range probs {
			if !strings.HasPrefix(p.Path, dir) {
				t.Fatalf("problem names %q", p.Path)
			}
		}
	})
}

// FuzzDBX reads arbitrary bytes as a message .dbx and as Folders.dbx.
func FuzzDBX(f *testing.F) {
	b, _ := lt.DBXFile([]lt.DBXMsg{{Raw: legacyMsg(1, ""), Flags: lt.DBXRead}, {Raw: legacyMsg(2, ""), Deleted: true}}, lt.DBXOptions{})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		_, err := scanDBX(r, int64(len(data)), "fuzz.dbx", nil, func(it *Item) error {
			if it.Length <= 0 || it.Length > int64(len(data)) {
				t.Fatalf("item %s: length %d", it.ID, it.Length)
			}
			raw, err := newDBXReader(r, int64(len(data)), "fuzz.dbx", 4096).chain(uint32(it.Offset), nil)
			if err != nil || int64(len(raw)) != it.Length {
				t.Fatalf("item %s: chain again: %d bytes, %v", it.ID, len(raw), err)
			}
			checkServed(t, raw, it.Served)
			return nil
		})
		if err != nil && !strings.Contains(err.Error(), "fuzz.dbx") {
			t.Fatalf("error does not name the file: %v", err)
		}
		d := newDBXReader(r, int64(len(data)), "fuzz.dbx", 512)
		folders, _, _ := dbxFolderList(d)
		for _, fo := range folders {
			_, _ = cleanLegacyName(fo.name)
		}
	})
}

// FuzzEMLX reads arbitrary bytes as an .emlx file.
func FuzzEMLX(f *testing.F) {
	f.Add(lt.EMLX(lfMsg(1, ""), lt.EMLXRead|lt.EMLXFlagged, time.Unix(1136214245, 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r emlxReader
		head, err := r.readAt(bytes.NewReader(data), int64(len(data)), false)
		if err != nil {
			return
		}
		in, err := r.readAt(bytes.NewReader(data), int64(len(data)), true)
		if err != nil || in.off != head.off || in.n != head.n || !slices.Equal(in.meta.flags, head.meta.flags) {
			t.Fatalf("reading the body changed the result: %+v %v, %+v", in, err, head)
		}
		if in.off < 0 || in.n < 0 || in.off+in.n > int64(len(data)) || !bytes.Equal(in.msg, data[in.off:in.off+in.n]) {
			t.Fatalf("message %d+%d outside the %d-byte file", in.off, in.n, len(data))
		}
		checkServed(t, in.msg, AppendServedFile(nil, in.msg))
		// The quick reader agrees with the plist package where both read.
		b := bytes.TrimSpace(data[in.off+in.n:])
		if q, ok := quickEMLXPlist(b); ok {
			if full, err := slowEMLXPlist(b); err == nil && (!slices.Equal(q.flags, full.flags) || q.deleted != full.deleted || !q.received.Equal(full.received)) {
				t.Fatalf("quick %+v, plist %+v", q, full)
			}
		}
	})
}

// FuzzEMLXPartial rebuilds arbitrary skeletons with one part's bytes
// offered for every part number.
func FuzzEMLXPartial(f *testing.F) {
	_, skel, pdf, _ := partialOriginal()
	f.Add(skel, pdf, false)
	f.Add(skel, []byte("QUJD\n"), true)
	f.Fuzz(func(t *testing.T, skel, part []byte, encoded bool) {
		asked := map[string]bool{}
		out, missing := rebuildPartialEMLX(skel, func(p string) ([]byte, bool, bool) {
			if asked[p] {
				t.Fatalf("part %s asked twice", p)
			}
			asked[p] = true
			if strings.HasSuffix(p, "9") {
				return nil, false, false
			}
			return part, encoded, true
		})
		if len(asked) == 0 && !bytes.Equal(out, skel) {
			t.Fatal("nothing filled, but the message changed")
		}
		for _, m := range missing {
			if !asked[m] {
				t.Fatalf("missing part %s was never asked for", m)
			}
		}
	})
}

func FuzzOEAccount(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0" encoding="utf-8"?><MessageAccount><Account_Name type="SZ">Home</Account_Name><POP3_Server type="SZ">pop</POP3_Server></MessageAccount>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		name, kind, err := wlmAccount(data)
		if err == nil && name == "" && kind == "" {
			t.Fatal("no error and nothing found")
		}
		if !utf8.ValidString(name) && err == nil {
			_, _ = cleanLegacyName(name)
		}
	})
}

func FuzzDescmap(f *testing.F) {
	f.Add([]byte("In,In.mbx,S,N\r\nMy, Folder,MYFOLD~1.MBX,M,N\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for file, name := range parseDescmap(data) {
			if file == "" || strings.TrimSpace(name) == "" || strings.ContainsAny(file, "\r\n") {
				t.Fatalf("entry %q → %q", file, name)
			}
		}
	})
}

// TestWriteLegacyFuzzSeeds writes the seed corpora from the synthetic
// stores (POPBRIDGE_WRITE_FUZZ_SEEDS=1).
func TestWriteLegacyFuzzSeeds(t *testing.T) {
	if os.Getenv("POPBRIDGE_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set POPBRIDGE_WRITE_FUZZ_SEEDS=1 to rewrite the seed corpora")
	}
	seed := func(fuzz, name string, args ...any) {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case bool:
				fmt.Fprintf(&b, "bool(%v)\n", v)
			}
		}
		writeFile(t, filepath.Join("testdata", "fuzz", fuzz, name), []byte(b.String()))
	}
	msgs := []lt.BeckyMsg{{Raw: legacyMsg(1, "")}, {Raw: legacyMsg(2, "", ".dot", "..two"), Status: 0x1407}, {Raw: legacyMsg(3, ""), Deleted: true}}
	bmf, offs := lt.BeckyBMF(msgs)
	var idx []byte
	idx = append(idx, "Becky! Folder Index 2.05\r\n"...)
	for i, m := range msgs[:2] {
		idx = append(idx, lt.BeckyIndexLine("5a000000.bmf", offs[i], m)...)
	}
	seed("FuzzBeckyIndex", "two-lines", idx)
	seed("FuzzBeckyIndex", "mailbox-ini", []byte("[Account]\r\nName="+lt.SJIS("仕事")+"\r\nProtocol=1\r\n"))
	seed("FuzzBeckyFolder", "two-messages", idx, bmf)
	seed("FuzzBeckyFolder", "no-index", []byte{}, bmf)
	seed("FuzzBeckyFolder", "truncated", idx, bmf[:len(bmf)-9])
	dbx, _ := lt.DBXFile([]lt.DBXMsg{{Raw: legacyMsg(1, ""), Flags: lt.DBXRead | lt.DBXAnswered, Received: t2006}, {Raw: legacyMsg(2, ""), Deleted: true}}, lt.DBXOptions{})
	seed("FuzzDBX", "one-message", dbx)
	seed("FuzzDBX", "folders", lt.FoldersDBX([]lt.DBXFolderInfo{{ID: 1, Name: lt.SJIS("受信トレイ"), File: "Inbox.dbx"}}))
	seed("FuzzEMLX", "read-flagged", lt.EMLX(lfMsg(1, ""), lt.EMLXRead|lt.EMLXFlagged|lt.EMLXJunk, t2006))
	seed("FuzzEMLX", "deleted", lt.EMLX(lfMsg(2, ""), lt.EMLXDeleted, t2006))
	_, skel, pdf, _ := partialOriginal()
	seed("FuzzEMLXPartial", "attachment", skel, pdf[:64], false)
	seed("FuzzEMLXPartial", "emlxpart", skel, []byte("QUJD\r\n"), true)
	seed("FuzzOEAccount", "pop", []byte(`<?xml version="1.0" encoding="utf-8"?><MessageAccount><Account_Name type="SZ">Home</Account_Name><POP3_Server type="SZ">pop</POP3_Server></MessageAccount>`))
	seed("FuzzDescmap", "eudora", []byte("In,In.mbx,S,N\r\nOut,Out.mbx,S,N\r\nMy, Folder,MYFOLD~1.MBX,M,N\r\nProjects,PROJEC~1.FOL,F,N\r\n"))
}
