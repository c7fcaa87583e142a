package message

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// checkWritable reports what would make go-imap's BODYSTRUCTURE encoder
// panic or write invalid syntax.
func checkWritable(bs imap.BodyStructure, path string) error {
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		if bs == nil || bs.Type == "" || bs.Subtype == "" || bs.Extended == nil {
			return fmt.Errorf("%s: incomplete single part %#v", path, bs)
		}
		if mt := strings.ToLower(bs.Type + "/" + bs.Subtype); (mt == "message/rfc822" || mt == "message/global") != (bs.MessageRFC822 != nil) {
			return fmt.Errorf("%s: %s with MessageRFC822 = %v", path, mt, bs.MessageRFC822 != nil)
		}
		if strings.EqualFold(bs.Type, "text") != (bs.Text != nil) {
			return fmt.Errorf("%s: %s/%s with Text = %v", path, bs.Type, bs.Subtype, bs.Text != nil)
		}
		if m := bs.MessageRFC822; m != nil {
			if m.BodyStructure == nil || m.Envelope == nil {
				return fmt.Errorf("%s: message/rfc822 without structure or envelope", path)
			}
			return checkWritable(m.BodyStructure, path+".msg")
		}
	case *imap.BodyStructureMultiPart:
		if bs == nil || len(bs.Children) == 0 || bs.Extended == nil || bs.Subtype == "" {
			return fmt.Errorf("%s: incomplete multipart %#v", path, bs)
		}
		for i, c := range bs.Children {
			if err := checkWritable(c, fmt.Sprintf("%s.%d", path, i+1)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: unknown node %T", path, bs)
	}
	return nil
}

// shape is a compact rendering of the parts that matter for size checks.
func shape(bs imap.BodyStructure) string {
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		s := fmt.Sprintf("%s/%s:%d", strings.ToLower(bs.Type), strings.ToLower(bs.Subtype), bs.Size)
		if bs.Text != nil {
			s += fmt.Sprintf("L%d", bs.Text.NumLines)
		}
		if m := bs.MessageRFC822; m != nil {
			s += fmt.Sprintf("L%d[%s]", m.NumLines, shape(m.BodyStructure))
		}
		return s
	case *imap.BodyStructureMultiPart:
		var l []string
		for _, c := range bs.Children {
			l = append(l, shape(c))
		}
		return "multipart/" + bs.Subtype + "(" + strings.Join(l, " ") + ")"
	}
	return "?"
}

func TestBodyStructureFixtures(t *testing.T) {
	want := map[string]string{
		"jp-iso2022jp.eml":          "text/plain:110L6",
		"jp-shiftjis.eml":           "text/plain:86L2",
		"jp-eucjp.eml":              "text/plain:42L1",
		"utf8-qp.eml":               "text/plain:171L3",
		"utf8-base64.eml":           "text/plain:100L2",
		"multipart-mixed.eml":       "multipart/mixed(text/plain:44L1 application/pdf:60)",
		"multipart-alternative.eml": "multipart/alternative(text/plain:20L0 text/html:54L0)",
		"nested-rfc822.eml":         "multipart/mixed(text/plain:17L0 message/rfc822:436L18[multipart/alternative(text/plain:26L0 text/html:21L0)])",
		// The declared boundary never occurs: one text part.
		"broken-boundary.eml": "text/plain:93L5",
		// Never closed: the last parts run to the end; a part without a
		// header is all body.
		"truncated-multipart.eml": "multipart/mixed(text/plain:10L0 text/plain:43L1 multipart/related(text/plain:26L1))",
		"missing-headers.eml":     "text/plain:58L2",
	}
	// Well-formed fixtures: same sizes and line counts as go-imap's own
	// extractor.
	wellFormed := map[string]bool{"jp-iso2022jp.eml": true, "jp-shiftjis.eml": true, "jp-eucjp.eml": true, "utf8-qp.eml": true,
		"utf8-base64.eml": true, "multipart-mixed.eml": true, "multipart-alternative.eml": true, "nested-rfc822.eml": true, "missing-headers.eml": true}
	for _, name := range fixtureNames(t) {
		msg := readFixture(t, name)
		bs := BodyStructure(msg)
		if err := checkWritable(bs, name); err != nil {
			t.Error(err)
		}
		got := shape(bs)
		if w, ok := want[name]; !ok {
			t.Errorf("%s: no expectation; got %s", name, got)
		} else if got != w {
			t.Errorf("%s: shape\n got %s\nwant %s", name, got, w)
		}
		if wellFormed[name] {
			if ref := shape(imapserver.ExtractBodyStructure(bytes.NewReader(msg))); ref != got {
				t.Errorf("%s: go-imap says %s, we say %s", name, ref, got)
			}
		}
	}

	mixed := BodyStructure(readFixture(t, "multipart-mixed.eml")).(*imap.BodyStructureMultiPart)
	text := mixed.Children[0].(*imap.BodyStructureSinglePart)
	if !reflect.DeepEqual(text.Extended.Language, []string{"en", "ja"}) || text.Params["charset"] != "us-ascii" || text.Encoding != "7bit" {
		t.Errorf("text part: %#v %#v", text, text.Extended)
	}
	pdf := mixed.Children[1].(*imap.BodyStructureSinglePart)
	wantPDF := &imap.BodyStructureSinglePart{
		Type: "application", Subtype: "pdf", Params: map[string]string{"name": "report.pdf"},
		ID: "<part2@example.com>", Description: "Quarterly report", Encoding: "base64", Size: 60,
		Extended: &imap.BodyStructureSinglePartExt{Disposition: &imap.BodyStructureDisposition{
			Value: "attachment", Params: map[string]string{"filename": "=?utf-8?b?5Lya6K2wLnBkZg==?=", "size": "44"}}},
	}
	if !reflect.DeepEqual(pdf, wantPDF) {
		t.Errorf("attachment:\n got %#v %#v\nwant %#v %#v", pdf, pdf.Extended.Disposition, wantPDF, wantPDF.Extended.Disposition)
	}
	if mixed.Extended.Params["boundary"] != "==outer==" {
		t.Errorf("multipart params %v", mixed.Extended.Params)
	}

	nested := BodyStructure(readFixture(t, "nested-rfc822.eml")).(*imap.BodyStructureMultiPart)
	inner := nested.Children[1].(*imap.BodyStructureSinglePart)
	if inner.MessageRFC822.Envelope.Subject != "inner subject" || inner.MessageRFC822.Envelope.MessageID != "inner-1@example.jp" ||
		inner.Extended.Disposition == nil || inner.Extended.Disposition.Value != "inline" {
		t.Errorf("nested message: %#v %#v", inner.MessageRFC822.Envelope, inner.Extended)
	}
}

func TestBodyStructureEdgeCases(t *testing.T) {
	deep := "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	for i := 0; i < 200; i++ {
		deep += "--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	}
	tests := []struct {
		name string
		msg  string
		want string
	}{
		{"empty", "", "text/plain:0L0"},
		{"header only", "Subject: x\r\n", "text/plain:0L0"},
		{"LF multipart", "Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhi\n--x--\n", "multipart/mixed(text/plain:2L0)"},
		{"delimiter with trailing space", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x  \r\n\r\nhi\r\n--x-- \r\n", "multipart/mixed(text/plain:2L0)"},
		{"longer line is not a delimiter", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--xy\r\n--x--\r\n", "multipart/mixed(text/plain:4L0)"},
		{"empty part", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n\r\nb\r\n--x--\r\n", "multipart/mixed(text/plain:0L0 text/plain:1L0)"},
		{"no boundary parameter", "Content-Type: multipart/mixed\r\n\r\n--x\r\nhello\r\n", "text/plain:12L2"},
		{"digest defaults to message", "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nbody\r\n--d--\r\n",
			"multipart/digest(message/rfc822:20L2[text/plain:4L0])"},
		{"encoded message/rfc822 stays opaque", "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQpib2R5DQo=\r\n", "application/octet-stream:30"},
		{"bad content type", "Content-Type: ;;;\r\n\r\nx", "text/plain:1L0"},
		{"type without subtype", "Content-Type: text\r\n\r\nx", "text/plain:1L0"},
		{"content type with comment", "Content-Type: text/html (comment); charset=utf-8\r\n\r\nx", "text/html:1L0"},
		{"inner boundary shadowed by outer", "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\na\r\n--o\r\n\r\nb\r\n--o--\r\n",
			"multipart/mixed(multipart/mixed(text/plain:1L0) text/plain:1L0)"},
	}
	for _, tt := range tests {
		bs := BodyStructure([]byte(tt.msg))
		if err := checkWritable(bs, tt.name); err != nil {
			t.Error(err)
		}
		if got := shape(bs); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
	bs := BodyStructure([]byte(deep))
	if err := checkWritable(bs, "deep"); err != nil {
		t.Error(err)
	}
	if _, err := DecodeBodyStructure(EncodeBodyStructure(bs)); err != nil {
		t.Errorf("deep: round trip: %v", err)
	}
}

func TestBodyStructureRoundTrip(t *testing.T) {
	structs := []imap.BodyStructure{
		nil,
		&imap.BodyStructureSinglePart{Type: "text", Subtype: "plain"},
		&imap.BodyStructureSinglePart{Type: "a", Subtype: "b", Params: map[string]string{}, Size: 1<<32 - 1,
			Text: &imap.BodyStructureText{NumLines: -1},
			Extended: &imap.BodyStructureSinglePartExt{Disposition: &imap.BodyStructureDisposition{Value: "inline", Params: map[string]string{}},
				Language: []string{}, Location: "loc"}},
		&imap.BodyStructureMultiPart{Subtype: "mixed"},
		&imap.BodyStructureMultiPart{Subtype: "mixed", Children: []imap.BodyStructure{}, Extended: &imap.BodyStructureMultiPartExt{}},
		&imap.BodyStructureSinglePart{Type: "message", Subtype: "rfc822", MessageRFC822: &imap.BodyStructureMessageRFC822{NumLines: 3}},
	}
	for _, name := range fixtureNames(t) {
		structs = append(structs, BodyStructure(readFixture(t, name)))
	}
	for i, bs := range structs {
		b := EncodeBodyStructure(bs)
		got, err := DecodeBodyStructure(b)
		if err != nil {
			t.Fatalf("%d: decode: %v", i, err)
		}
		if !bodyStructureEqual(got, bs) {
			t.Errorf("%d: round trip\n got %s\nwant %s", i, shape(got), shape(bs))
		}
		if !bytes.Equal(EncodeBodyStructure(got), b) {
			t.Errorf("%d: re-encoding differs", i)
		}
		for n := 0; n < len(b); n++ {
			if _, err := DecodeBodyStructure(b[:n]); err == nil {
				t.Errorf("%d: truncated to %d bytes: no error", i, n)
			}
		}
	}
}

// bodyStructureEqual is reflect.DeepEqual with envelope dates compared by
// instant and offset.
func bodyStructureEqual(a, b imap.BodyStructure) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case *imap.BodyStructureSinglePart:
		y, ok := b.(*imap.BodyStructureSinglePart)
		if !ok {
			return false
		}
		xm, ym := x.MessageRFC822, y.MessageRFC822
		if (xm == nil) != (ym == nil) {
			return false
		}
		if xm != nil {
			if !envelopeEqual(xm.Envelope, ym.Envelope) || xm.NumLines != ym.NumLines || !bodyStructureEqual(xm.BodyStructure, ym.BodyStructure) {
				return false
			}
		}
		xc, yc := *x, *y
		xc.MessageRFC822, yc.MessageRFC822 = nil, nil
		return reflect.DeepEqual(xc, yc)
	case *imap.BodyStructureMultiPart:
		y, ok := b.(*imap.BodyStructureMultiPart)
		if !ok || len(x.Children) != len(y.Children) || (x.Children == nil) != (y.Children == nil) {
			return false
		}
		for i := range x.Children {
			if !bodyStructureEqual(x.Children[i], y.Children[i]) {
				return false
			}
		}
		return x.Subtype == y.Subtype && reflect.DeepEqual(x.Extended, y.Extended)
	}
	return false
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		in     string
		value  string
		params map[string]string
	}{
		{"text/plain", "text/plain", nil},
		{`Text/Plain; Charset="ISO-2022-JP"; format=flowed`, "text/plain", map[string]string{"charset": "ISO-2022-JP", "format": "flowed"}},
		{`attachment; filename="a \"b\".txt"`, "attachment", map[string]string{"filename": `a "b".txt`}},
		{`a; name=x; name=y`, "a", map[string]string{"name": "x"}},
		{`a; name="=?ISO-2022-JP?B?GyRCMnE1RBsoQg==?="`, "a", map[string]string{"name": "=?ISO-2022-JP?B?GyRCMnE1RBsoQg==?="}},
		{"a; filename*=UTF-8''%E4%BC%9A%E8%AD%B0.pdf", "a", map[string]string{"filename": "=?utf-8?b?5Lya6K2wLnBkZg==?="}},
		{"a; filename*0=\"long\"; filename*1=\"name.txt\"", "a", map[string]string{"filename": "longname.txt"}},
		{"a; filename*0*=us-ascii'en'x%20y; filename*1=\".txt\"", "a", map[string]string{"filename": "x y.txt"}},
		{"a; filename*=iso-2022-jp''%1B%24B2q5D%1B%28B", "a", map[string]string{"filename": "=?utf-8?b?5Lya6K2w?="}},
		{"a; filename*=x-unknown''%FF", "a", map[string]string{"filename": "=?x-unknown?B?/w==?="}},
		{"a;;; broken; =x; k=", "a", map[string]string{"k": ""}},
		{"a; name=\"unterminated", "a", map[string]string{"name": "unterminated"}},
		{"a; name=\"\xff\xfe raw\"", "a", map[string]string{"name": "\xff\xfe raw"}},
	}
	for _, tt := range tests {
		v, p := parseParams(tt.in)
		if v != tt.value || !reflect.DeepEqual(p, tt.params) {
			t.Errorf("parseParams(%q) = %q, %#v; want %q, %#v", tt.in, v, p, tt.value, tt.params)
		}
	}
}
