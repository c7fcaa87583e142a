package message

import (
	"bytes"
	"strings"
	"testing"
)

const fpBase = "Received: from a by b; Mon, 4 Mar 2013 09:15:02 +0900\r\n" +
	"Date: Mon, 4 Mar 2013 09:14:55 +0900\r\n" +
	"From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.com>,\r\n" +
	" Carol <carol@example.com>\r\n" +
	"Subject: Quarterly report for the board\r\n" +
	"Message-ID: <fp-1@example.com>\r\n" +
	"\r\n" +
	"Hello Bob,\r\n" +
	"\r\n" +
	"here is the report.\r\n" +
	"From the desk of Alice\r\n" +
	"-- \r\n" +
	"Alice\r\n"

func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// toCRLF turns every LF not already preceded by CR into CRLF.
func toCRLF(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/16)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

func TestContentFPInvariance(t *testing.T) {
	base := ContentFP([]byte(fpBase))
	if base.IsZero() {
		t.Fatal("zero fingerprint")
	}
	hdr, body, _ := strings.Cut(fpBase, "\r\n\r\n")
	same := map[string]string{
		"LF line ends":    lf(fpBase),
		"mixed line ends": strings.Replace(fpBase, "\r\n", "\n", 3),
		"refolded header": strings.Replace(fpBase, "Subject: Quarterly report for the board\r\n",
			"Subject: Quarterly report\r\n\tfor the\r\n     board\r\n", 1),
		"unfolded header":             strings.Replace(fpBase, "To: Bob <bob@example.com>,\r\n Carol", "To: Bob <bob@example.com>, Carol", 1),
		"white space runs":            strings.Replace(fpBase, "Subject: Quarterly report", "Subject:   Quarterly \t report", 1),
		"name case":                   strings.Replace(fpBase, "Message-ID:", "message-id:", 1),
		"no space after colon":        strings.Replace(fpBase, "Subject: Q", "Subject:Q", 1),
		"trailing space in header":    strings.Replace(fpBase, "board\r\n", "board  \t\r\n", 1),
		"trailing space in body":      strings.Replace(fpBase, "Hello Bob,\r\n", "Hello Bob,   \r\n", 1),
		"signature separator trimmed": strings.Replace(fpBase, "-- \r\n", "--\r\n", 1),
		"trailing empty lines":        fpBase + "\r\n\r\n\r\n",
		"trailing empty line LF":      lf(fpBase) + "\n",
		"no final line end":           strings.TrimSuffix(fpBase, "\r\n"),
		"mbox quoting":                strings.Replace(fpBase, "From the desk", ">From the desk", 1),
		"mboxrd double quoting":       strings.Replace(fpBase, "From the desk", ">>From the desk", 1),
		"CR CR LF":                    strings.ReplaceAll(fpBase, "\r\n", "\r\r\n"),
	}
	for _, f := range []string{"X-Mozilla-Status: 0001", "X-Mozilla-Status2: 00000000", "X-Mozilla-Keys:                                                                                 ",
		"Status: RO", "X-Status: A", "X-UIDL: 0000123456", "X-Account-Key: account3", "Content-Length: 1234", "Lines: 7"} {
		name := f[:strings.IndexByte(f, ':')]
		same["added "+name+" at top"] = f + "\r\n" + fpBase
		same["added "+name+" at end"] = hdr + "\r\n" + f + "\r\n\r\n" + body
		same["added folded "+name] = hdr + "\r\n" + strings.ToLower(f) + "\r\n continued\r\n\r\n" + body
	}
	same["all client fields"] = "X-Mozilla-Status: 0001\r\nX-Mozilla-Status2: 00800000\r\nX-Mozilla-Keys: \r\n" + hdr + "\r\nStatus: RO\r\nX-Status: \r\nLines: 9\r\n\r\n" + body
	for name, msg := range same {
		if got := ContentFP([]byte(msg)); got != base {
			t.Errorf("%s: fingerprint %v, want %v", name, got, base)
		}
	}

	differ := map[string]string{
		"body changed":          strings.Replace(fpBase, "the report", "the Report", 1),
		"body line added":       fpBase + "P.S.\r\n",
		"empty line in body":    strings.Replace(fpBase, "Hello Bob,\r\n", "Hello Bob,\r\n\r\n", 1),
		"leading space in body": strings.Replace(fpBase, "here is", " here is", 1),
		"subject changed":       strings.Replace(fpBase, "Quarterly", "Annual", 1),
		"message-id changed":    strings.Replace(fpBase, "fp-1", "fp-2", 1),
		"header added":          "X-Spam: yes\r\n" + fpBase,
		"field order swapped": strings.Replace(fpBase, "Date: Mon, 4 Mar 2013 09:14:55 +0900\r\nFrom: Alice <alice@example.com>\r\n",
			"From: Alice <alice@example.com>\r\nDate: Mon, 4 Mar 2013 09:14:55 +0900\r\n", 1),
		"header line moved to body": strings.Replace(fpBase, "Message-ID: <fp-1@example.com>\r\n\r\n", "\r\nMessage-ID: <fp-1@example.com>\r\n", 1),
		"other quoting":             strings.Replace(fpBase, "here is", ">here is", 1),
		"status in body":            hdr + "\r\n\r\nStatus: RO\r\n" + body,
	}
	seen := map[FP]string{base: "base"}
	for name, msg := range differ {
		got := ContentFP([]byte(msg))
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: fingerprint equals that of %s", name, prev)
		}
		seen[got] = name
	}
}

func TestContentFPEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"empty vs empty line", "", "\r\n", true},
		{"header only vs header+empty body", "A: 1\r\n", "A: 1\r\n\r\n", true},
		{"header only vs body", "A: 1\r\n", "\r\nA: 1\r\n", false},
		{"whitespace-only line ends header", "A: 1\r\n \r\nB: 2\r\n", "A: 1\r\n\r\nB: 2\r\n", true},
		{"garbage header line kept", "A: 1\r\ngarbage\r\n\r\nx", "A: 1\r\n\r\nx", false},
		{"continuation joins with a space", "S: a\r\n b\r\n\r\n", "S: a b\r\n\r\n", true},
		{"fold after colon", "S:\r\n b\r\n\r\n", "S: b\r\n\r\n", true},
		{"value ending in colon", "S: Re:\r\n foo\r\n\r\n", "S: Re: foo\r\n\r\n", true},
		{"fold is not concatenation", "S: a\r\n b\r\n\r\n", "S: ab\r\n\r\n", false},
		{"obsolete From : field is a field", "From : a@b\r\n\r\nx", "\r\nx", false},
		{"From line alone", "From a@b Mon Mar  4 09:14:55 2013", "", true},
	}
	for _, tt := range tests {
		if got := ContentFP([]byte(tt.a)) == ContentFP([]byte(tt.b)); got != tt.same {
			t.Errorf("%s: same = %v, want %v", tt.name, got, tt.same)
		}
	}
}

func TestContentFPFixtures(t *testing.T) {
	seen := map[FP]string{}
	for _, name := range fixtureNames(t) {
		msg := readFixture(t, name)
		fp := ContentFP(msg)
		if prev, dup := seen[fp]; dup {
			t.Errorf("%s and %s share a fingerprint", name, prev)
		}
		seen[fp] = name
		if got := ContentFP(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))); got != fp {
			t.Errorf("%s: LF copy has another fingerprint", name)
		}
		withStatus := append([]byte("X-Mozilla-Status: 0001\r\nX-Mozilla-Status2: 00000000\r\n"), msg...)
		if got := ContentFP(withStatus); got != fp {
			t.Errorf("%s: copy with X-Mozilla-Status has another fingerprint", name)
		}
	}
}

func TestFPString(t *testing.T) {
	var f FP
	if !f.IsZero() || f.String() != strings.Repeat("0", 32) {
		t.Errorf("zero FP: IsZero %v, String %q", f.IsZero(), f.String())
	}
	f[0], f[15] = 0xab, 0x01
	if f.IsZero() || f.String() != "ab"+strings.Repeat("0", 28)+"01" {
		t.Errorf("FP String = %q", f.String())
	}
}

const hfpMessage = "Return-Path: <alice@example.com>\r\n" +
	"Received: from x by y; Mon, 4 Mar 2013 09:15:02 +0900\r\n" +
	"Message-ID: <hfp-1@example.com>\r\n" +
	"Date: Mon, 4 Mar 2013 09:14:55 +0900\r\n" +
	"From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.com>, Carol <carol@example.com>,\r\n" +
	"\tDave <dave@example.com>\r\n" +
	"Subject: =?ISO-2022-JP?B?GyRCTEBGfCROMnE1RCRLJEQkJCRGGyhC?=\r\n" +
	"X-Mozilla-Status: 0001\r\n" +
	"Subject: a second subject is ignored\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"Body text.\r\n" +
	"Subject: not a header\r\n"

func TestHeaderFP(t *testing.T) {
	full := HeaderFP([]byte(hfpMessage))
	hdr, _ := SplitHeader([]byte(hfpMessage))
	// As Dovecot answers BODY.PEEK[HEADER.FIELDS (Message-ID Date From To Cc
	// Subject In-Reply-To)]: fields in message order, each occurrence, the
	// original folding, then an empty line.
	dovecot := "Message-ID: <hfp-1@example.com>\r\n" +
		"Date: Mon, 4 Mar 2013 09:14:55 +0900\r\n" +
		"From: Alice <alice@example.com>\r\n" +
		"To: Bob <bob@example.com>, Carol <carol@example.com>,\r\n" +
		"\tDave <dave@example.com>\r\n" +
		"Subject: =?ISO-2022-JP?B?GyRCTEBGfCROMnE1RCRLJEQkJCRGGyhC?=\r\n" +
		"Subject: a second subject is ignored\r\n" +
		"\r\n"
	// Another server: refolded, other name case, request order, LF.
	other := "message-id:\n <hfp-1@example.com>\n" +
		"date: Mon, 4 Mar 2013\n 09:14:55 +0900\n" +
		"FROM: Alice  <alice@example.com>\n" +
		"TO: Bob <bob@example.com>, Carol <carol@example.com>, Dave <dave@example.com>\n" +
		"SUBJECT: =?ISO-2022-JP?B?GyRCTEBGfCROMnE1RCRLJEQkJCRGGyhC?=\n" +
		"\n"
	same := map[string]string{
		"header block":        string(hdr),
		"dovecot subset":      dovecot,
		"dovecot subset LF":   lf(dovecot),
		"other server":        other,
		"no final empty line": strings.TrimSuffix(dovecot, "\r\n"),
		"with empty Cc":       dovecot + "Cc:\r\n",
	}
	for name, h := range same {
		if got := HeaderFP([]byte(h)); got != full {
			t.Errorf("%s: HeaderFP %v, want %v", name, got, full)
		}
	}
	differ := map[string]string{
		"subject changed":    strings.Replace(dovecot, "GyRCTEBG", "GyRCTEBH", 1),
		"cc added":           strings.Replace(dovecot, "\r\n\r\n", "\r\nCc: eve@example.com\r\n\r\n", 1),
		"in-reply-to added":  "In-Reply-To: <x@y>\r\n" + dovecot,
		"date missing":       strings.Replace(dovecot, "Date: Mon, 4 Mar 2013 09:14:55 +0900\r\n", "", 1),
		"first subject gone": strings.Replace(dovecot, "Subject: =?ISO-2022-JP?B?GyRCTEBGfCROMnE1RCRLJEQkJCRGGyhC?=\r\n", "", 1),
	}
	for name, h := range differ {
		if got := HeaderFP([]byte(h)); got == full {
			t.Errorf("%s: HeaderFP unchanged", name)
		}
	}
	// Empty values are distinct from missing neighbours: a value cannot
	// move between fields.
	a := HeaderFP([]byte("To: x@y\r\n\r\n"))
	b := HeaderFP([]byte("Cc: x@y\r\n\r\n"))
	if a == b {
		t.Error("To and Cc with the same value hash alike")
	}
	if HeaderFP(nil) != HeaderFP([]byte("\r\n")) || HeaderFP(nil).IsZero() {
		t.Error("empty header: want one non-zero fingerprint")
	}
}
