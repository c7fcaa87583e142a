package archive

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseMeta(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want Meta
	}{
		{"", Meta{}},
		{"From x\n", Meta{}},
		{"From - Mon\nX-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys:      \nA: b\n\n", Meta{Flags: []string{`\Seen`}}},
		{"X-Mozilla-Status: 100f\n\n", Meta{Flags: []string{`$Forwarded`, `\Answered`, `\Flagged`, `\Seen`}, Expunged: true}},
		{"X-Mozilla-Status: 0008\n", Meta{Expunged: true}},
		{"X-Mozilla-Status: 8000\n", Meta{}},
		{"X-Mozilla-Keys: $label1 \\Seen bad(atom) \n\ttodo  nonjunk\n\n", Meta{Flags: []string{`$label1`, `nonjunk`, `todo`}}},
		{"X-Mozilla-Keys: caf\xc3\xa9 ok\n", Meta{Flags: []string{`ok`}}},
		{"X-Mozilla-Status2: 0A000000\n", Meta{Flags: []string{`$label5`}}},
		{"X-Mozilla-Status2: 0E000000\n", Meta{}},
		{"X-Mozilla-Status2: 02000000\n", Meta{Flags: []string{`$label1`}}},
		{"X-Mozilla-Status2: 00800000\n", Meta{Flags: []string{`$MDNSent`}}},
		{"X-Mozilla-Status2: 10010000\n", Meta{}},
		{"Status: RO\nX-Status: AFTD\n\n", Meta{Flags: []string{`\Answered`, `\Deleted`, `\Draft`, `\Flagged`, `\Seen`}}},
		{"Status: O\n", Meta{}},
		{"X-UIDL:  abc \n", Meta{UIDL: "abc"}},
		{"X-UIDL: 1\nX-UIDL: 2\n", Meta{UIDL: "1"}},
		{"A: b\n\nX-Mozilla-Status: 0001\nStatus: R\n", Meta{}},
		{"X-Mozilla-Status: 0000\nX-Mozilla-Status: 0001\n\n", Meta{}},
		{"X-Mozilla-Status: zz\n", Meta{}},
		{"X-Mozilla-Status: 0004\r\nStatus: R\r\n\r\nX-Status: F\r\n", Meta{Flags: []string{`\Flagged`, `\Seen`}}},
		{"x-mozilla-status: 0001\nstatus: R\n", Meta{Flags: []string{`\Seen`}}},
		{"X-Mozilla-Status : 0002\n", Meta{Flags: []string{`\Answered`}}},
		{"From x\nStatus: R\nX-Status: F", Meta{Flags: []string{`\Flagged`, `\Seen`}}},
		{"From x\n X-Status: F\nStatus:\n R\n", Meta{Flags: []string{`\Seen`}}},
	} {
		got := ParseMeta([]byte(c.raw))
		if !slices.Equal(got.Flags, c.want.Flags) || got.Expunged != c.want.Expunged || got.UIDL != c.want.UIDL {
			t.Errorf("ParseMeta(%q) = %+v, want %+v", c.raw, got, c.want)
		}
		if got.Flags != nil && len(got.Flags) == 0 {
			t.Errorf("ParseMeta(%q): empty non-nil Flags", c.raw)
		}
	}
}

func TestParseMozillaStatus(t *testing.T) {
	for _, c := range []struct {
		v    string
		bits uint32
		ok   bool
	}{
		{"0001", 1, true},
		{"8000", 0x8000, true},
		{" 1000 ", 0x1000, true},
		{"0x1000", 0x1000, true},
		{"0X00ff", 0xff, true},
		{"00000000", 0, true},
		{"FFFFFFFF", 0xffffffff, true},
		{"abcdef", 0xabcdef, true},
		{"1", 1, true},
		{"123456789", 0, false},
		{"", 0, false},
		{"   ", 0, false},
		{"0x", 0, false},
		{"12g4", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"00 01", 0, false},
	} {
		bits, ok := ParseMozillaStatus(c.v)
		if bits != c.bits || ok != c.ok {
			t.Errorf("ParseMozillaStatus(%q) = %#x, %v; want %#x, %v", c.v, bits, ok, c.bits, c.ok)
		}
	}
}

func TestParseMaildirInfo(t *testing.T) {
	kw := []string{"todo", "$Important", "", "later"}
	for _, c := range []struct {
		name  string
		kw    []string
		flags []string
		ok    bool
	}{
		{"1.M1P1.host:2,S", nil, []string{`\Seen`}, true},
		{"1.M1P1.host:2,FRS", nil, []string{`\Answered`, `\Flagged`, `\Seen`}, true},
		{"1.M1P1.host!2,PDT", nil, []string{`$Forwarded`, `\Deleted`, `\Draft`}, true},
		{"1.M1P1.host:2,SS", nil, []string{`\Seen`}, true},
		{"1.M1P1.host:2,", nil, nil, true},
		{"1.M1P1.host", nil, nil, false},
		{"1.M1P1.host:1,S", nil, nil, false},
		{"cur/1.M1P1.host:2,Sab", kw, []string{`$Important`, `\Seen`, `todo`}, true},
		{"1.M1P1.host:2,Sc", kw, []string{`\Seen`}, true},
		{"1.M1P1.host:2,Sd", kw, []string{`\Seen`, `later`}, true},
		{"1.M1P1.host:2,Sz", kw, []string{`\Seen`}, true},
		{"1.M1P1.host:2,Sa", nil, []string{`\Seen`}, true},
		{"/a/b:2,S/1.host:2,T", nil, []string{`\Deleted`}, true},
		{"1.M1P1.host,S=123,W=130:2,S", nil, []string{`\Seen`}, true},
		{"1.M1P1.host:2,SX1,", nil, []string{`\Seen`}, true},
		{"", nil, nil, false},
		{":2,", nil, nil, true},
	} {
		flags, ok := ParseMaildirInfo(c.name, c.kw)
		if !slices.Equal(flags, c.flags) || ok != c.ok {
			t.Errorf("ParseMaildirInfo(%q) = %q, %v; want %q, %v", c.name, flags, ok, c.flags, c.ok)
		}
	}
}

func TestReadDovecotKeywords(t *testing.T) {
	dir := t.TempDir()
	if kw := ReadDovecotKeywords(dir); kw != nil {
		t.Errorf("absent file: %q, want nil", kw)
	}
	if err := os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte("0 todo\n2 $Important\r\nbad line\n26 toofar\n1 with space\n3  later \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{"todo", "", "$Important", "later"}
	if kw := ReadDovecotKeywords(dir); !slices.Equal(kw, want) {
		t.Errorf("ReadDovecotKeywords = %q, want %q", kw, want)
	}
	if kw := ReadDovecotKeywords(filepath.Join(fixtureRoot, "maildir")); !slices.Equal(kw, []string{"todo", "$Important"}) {
		t.Errorf("fixture keywords = %q", kw)
	}
}

func TestSpecialUse(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		{"Sent", `\Sent`}, {"sent", `\Sent`}, {"SENT", `\Sent`}, {"Sent Items", `\Sent`}, {"sent messages", `\Sent`},
		{"Sent Mail", `\Sent`}, {"送信済み", `\Sent`}, {"送信済みアイテム", `\Sent`}, {"送信済みメール", `\Sent`}, {"送信済みトレイ", `\Sent`},
		{"Drafts", `\Drafts`}, {"Draft", `\Drafts`}, {"下書き", `\Drafts`},
		{"Trash", `\Trash`}, {"Deleted Items", `\Trash`}, {"Deleted Messages", `\Trash`}, {"Bin", `\Trash`},
		{"ごみ箱", `\Trash`}, {"ゴミ箱", `\Trash`}, {"削除済みアイテム", `\Trash`},
		{"Junk", `\Junk`}, {"Spam", `\Junk`}, {"Junk E-mail", `\Junk`}, {"Junk Email", `\Junk`}, {"Bulk Mail", `\Junk`}, {"迷惑メール", `\Junk`},
		{"Archive", `\Archive`}, {"Archives", `\Archive`}, {"アーカイブ", `\Archive`},
		{"Outbox", ""}, {"Unsent Messages", ""}, {"Inbox", ""}, {"Sentinel", ""}, {"", ""}, {"Templates", ""}, {"2019", ""},
	} {
		if got := SpecialUse(c.name); got != c.want {
			t.Errorf("SpecialUse(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestDecodeMUTF7(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"abc", "abc", true},
		{"&kAFP4W4IMH8-", "送信済み", true},
		{"&MFQwf3ux-", "ごみ箱", true},
		{"Q&-A", "Q&A", true},
		{"&-&-", "&&", true},
		{"x&2D3eAQ-y", "x\U0001F601y", true},
		{"&AGE-", "a", true},
		{"Q&A", "", false},
		{"&abc", "", false},
		{"&2D0-", "", false},
		{"&kAE-&2D3eAQ", "", false},
		{"&kA-", "", false},
		{"caf\xc3\xa9", "caf\xc3\xa9", true}, // no '&': unchanged
		{"caf\xc3\xa9&-", "", false},
		{"a&ZeVnLIqe-", "a日本語", true},
	} {
		got, ok := decodeMUTF7(c.in)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("decodeMUTF7(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestCleanName(t *testing.T) {
	for _, c := range []struct {
		raw, want string
		problem   bool
	}{
		{"Inbox", "Inbox", false},
		{"送信済みアイテム", "送信済みアイテム", false},
		{"\x91\x97\x90M\x8d\xcf\x82\xdd", "送信済み", true},
		{"bad\xff", "bad\uFFFD", true},
		{"a/b", "a_b", true},
		{"a\x01b", "a\uFFFDb", true},
		{"tab\tname", "tab\uFFFDname", true},
		{"del\x7f", "del\uFFFD", true},
		{"c1\u0085", "c1\uFFFD", true},
	} {
		got, err := cleanName(c.raw)
		if got != c.want || (err != nil) != c.problem {
			t.Errorf("cleanName(%q) = %q, %v; want %q, problem %v", c.raw, got, err, c.want, c.problem)
		}
	}
}

func TestSortOrders(t *testing.T) {
	names := []string{"10.eml", "2.eml", "Note.EML", "a10.eml", "a9.eml", "a09.eml", "1.eml", "b.eml", "01.eml"}
	slices.SortFunc(names, func(a, b string) int {
		if c := naturalCompare(a, b); c != 0 {
			return c
		}
		return cmpString(a, b)
	})
	want := []string{"01.eml", "1.eml", "2.eml", "10.eml", "Note.EML", "a09.eml", "a9.eml", "a10.eml", "b.eml"}
	if !slices.Equal(names, want) {
		t.Errorf("natural order %q, want %q", names, want)
	}
	md := []string{"1262304000.M1P1.h", "999999999.M9.h", "weird", "1262304000.M0P1.h", "0999.x", "12623040000.x"}
	slices.SortFunc(md, func(a, b string) int {
		if c := compareDeliveryTime(a, b); c != 0 {
			return c
		}
		return cmpString(a, b)
	})
	wantMD := []string{"0999.x", "999999999.M9.h", "1262304000.M0P1.h", "1262304000.M1P1.h", "12623040000.x", "weird"}
	if !slices.Equal(md, wantMD) {
		t.Errorf("delivery order %q, want %q", md, wantMD)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatAuto, "auto": FormatAuto, "MBOX": FormatMbox, "thunderbird": FormatThunderbird, "Maildir": FormatMaildir, "eml": FormatEML, "pst": FormatPST} {
		if got, err := ParseFormat(in); got != want || err != nil {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("zip"); err == nil {
		t.Error("ParseFormat(zip): no error")
	}
}

func TestProblemError(t *testing.T) {
	err := os.ErrNotExist
	for _, c := range []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "/a/Inbox", Offset: 123, Err: err}, "/a/Inbox at offset 123: file does not exist"},
		{Problem{Path: "/a/Inbox", Offset: 0, Err: err}, "/a/Inbox at offset 0: file does not exist"},
		{Problem{Path: "/a/Inbox", Offset: -1, Err: err}, "/a/Inbox: file does not exist"},
	} {
		if got := c.p.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
		if !errors.Is(c.p, os.ErrNotExist) {
			t.Errorf("Problem does not unwrap to its Err")
		}
	}
	if KindMbox.String() != "mbox" || KindMaildir.String() != "maildir" || KindEML.String() != "eml" || Kind(0).String() != "Kind(0)" {
		t.Error("Kind.String")
	}
}
