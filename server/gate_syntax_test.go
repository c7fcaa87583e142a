package server

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// encodeMUTF7 is a modified UTF-7 encoder (RFC 3501 section 5.1.3).
func encodeMUTF7(s string) string {
	var b strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		var buf []byte
		for _, x := range utf16.Encode(run) {
			buf = append(buf, byte(x>>8), byte(x))
		}
		b.WriteString("&" + mutf7Encoding.EncodeToString(buf) + "-")
		run = nil
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = append(run, r)
	}
	flush()
	return b.String()
}

func TestMUTF7Problem(t *testing.T) {
	tests := map[string]string{
		"INBOX":                    "",
		"Local/&ZeVnLIqe-":         "", // 日本語
		"a&-b":                     "",
		"&-&-":                     "",
		"&ZeVnLIqe-&-&ZeVnLIqe-":   "",
		"Local/日本語":                "", // raw UTF-8 is taken too
		"&2D3eAA-":                 "", // U+1F600 as a surrogate pair
		"&":                        `"&" starts an encoded run that no "-" ends (write "&-" for "&")`,
		"&Jjo":                     `"&" starts an encoded run that no "-" ends (write "&-" for "&")`,
		"&'+,-":                    `bad encoded run "&'+,-"`,
		"&AGEAYgBj-":               `bad encoded run "&AGEAYgBj-"`, // "abc" must be written as itself
		"&ZeU-&ZeU-":               "two encoded runs follow each other",
		"&ZeU=-":                   `bad encoded run "&ZeU=-"`,
		"&Z-":                      `bad encoded run "&Z-"`,
		"&ZQ-":                     `bad encoded run "&ZQ-"`,     // one byte: not UTF-16
		"&2D0-":                    `bad encoded run "&2D0-"`,    // lone surrogate
		"&2D3\r\neAA-":             `bad encoded run "&2D3eAA-"`, // shown without the CR LF
		"a\x01b":                   "it contains a control character",
		"a\x7fb":                   "it contains a control character",
		"\xff":                     "it is not UTF-8",
		"&ZeVnLIqe-x&ZeVnLIqe-":    "",
		"!#$$%*+,-.0123456789:;<>": "",
	}
	for in, want := range tests {
		if got := mutf7Problem(in); got != want {
			t.Errorf("mutf7Problem(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidNumSet(t *testing.T) {
	tests := map[string]bool{
		"1": true, "*": true, "1:*": true, "*:1": true, "4294967295": true, "1,3:5,7:*": true, "5:2": true,
		"0": false, "01": false, "4294967296": false, "": false, "1,": false, ",1": false, "1::2": false,
		"1:2:3": false, "completed": false, "-1": false, "+1": false, "1:": false, ":1": false, "**": false,
	}
	for in, want := range tests {
		if got := validNumSet(in); got != want {
			t.Errorf("validNumSet(%q) = %v, want %v", in, got, want)
		}
	}
}

// FuzzMUTF7: every properly encoded name is accepted, and nothing panics.
// (Whatever the gate accepts imapserver's decoder must take too: that is
// checked through the real server by FuzzPostAuth.)
func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "日本語", "a&b", "\x01\x02", "😀 mail", "Local/送信済み/2019"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mutf7Problem(s)
		if !utf8.ValidString(s) {
			return
		}
		enc := encodeMUTF7(s)
		if p := mutf7Problem(enc); p != "" {
			t.Fatalf("encoding %q of %q refused: %s", enc, s, p)
		}
		if p := mutf7Problem(s); strings.ContainsAny(p, "\r\n") {
			t.Fatalf("problem text %q would break the answer line", p)
		}
	})
}
