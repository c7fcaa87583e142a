package message

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// sectionsOf lists the sections a client could fetch, from the structure.
func sectionsOf(bs imap.BodyStructure) []*imap.FetchItemBodySection {
	items := []*imap.FetchItemBodySection{
		{},
		{Specifier: imap.PartSpecifierHeader},
		{Specifier: imap.PartSpecifierText},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "from", "X-Absent"}},
		{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject", "Received"}},
		{Partial: &imap.SectionPartial{Offset: 10, Size: 20}},
	}
	bs.Walk(func(path []int, part imap.BodyStructure) bool {
		if len(path) == 0 {
			return true // a multipart root: MIME needs a part number
		}
		p := append([]int(nil), path...)
		items = append(items, &imap.FetchItemBodySection{Part: p}, &imap.FetchItemBodySection{Part: p, Specifier: imap.PartSpecifierMIME})
		if sp, ok := part.(*imap.BodyStructureSinglePart); ok && sp.MessageRFC822 != nil {
			items = append(items, &imap.FetchItemBodySection{Part: p, Specifier: imap.PartSpecifierHeader},
				&imap.FetchItemBodySection{Part: p, Specifier: imap.PartSpecifierText})
		}
		return true
	})
	return items
}

func sectionName(it *imap.FetchItemBodySection) string {
	return fmt.Sprintf("%v.%s%v%v", it.Part, it.Specifier, it.HeaderFields, it.HeaderFieldsNot)
}

func TestBodySectionMatchesGoIMAP(t *testing.T) {
	for _, name := range []string{"jp-iso2022jp.eml", "multipart-mixed.eml", "multipart-alternative.eml", "nested-rfc822.eml", "utf8-qp.eml"} {
		msg := readFixture(t, name)
		for _, it := range sectionsOf(BodyStructure(msg)) {
			got := BodySection(msg, it)
			want := imapserver.ExtractBodySection(bytes.NewReader(msg), it)
			if !bytes.Equal(got, want) {
				t.Errorf("%s BODY[%s]:\n got %q\nwant %q", name, sectionName(it), got, want)
			}
		}
	}
}

// Every leaf's BODY[part] is exactly as long as BODYSTRUCTURE says, broken
// MIME included.
func TestBodySectionSizesAgree(t *testing.T) {
	msgs := map[string][]byte{}
	for _, name := range fixtureNames(t) {
		msgs[name] = readFixture(t, name)
	}
	msgs["garbage header line"] = []byte("Subject: x\r\nthis is not a header\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\none\r\n--q\r\n\r\ntwo\r\n")
	for name, msg := range msgs {
		BodyStructure(msg).Walk(func(path []int, part imap.BodyStructure) bool {
			sp, ok := part.(*imap.BodyStructureSinglePart)
			if !ok {
				return true
			}
			got := BodySection(msg, &imap.FetchItemBodySection{Part: path})
			if uint32(len(got)) != sp.Size {
				t.Errorf("%s BODY[%v]: %d bytes, BODYSTRUCTURE says %d", name, path, len(got), sp.Size)
			}
			return true
		})
	}
}

func TestBodySection(t *testing.T) {
	msg := readFixture(t, "nested-rfc822.eml")
	tests := []struct {
		it   imap.FetchItemBodySection
		want string
	}{
		{imap.FetchItemBodySection{Part: []int{1}}, "Forwarding below."},
		{imap.FetchItemBodySection{Part: []int{1}, Specifier: imap.PartSpecifierMIME}, "Content-Type: text/plain; charset=us-ascii\r\n\r\n"},
		{imap.FetchItemBodySection{Part: []int{2, 1}}, "\x1b$BE>Aw$5$l$?K\\J8$G$9!#\x1b(B"},
		{imap.FetchItemBodySection{Part: []int{2, 2}, Specifier: imap.PartSpecifierMIME}, "Content-Type: text/html; charset=utf-8\r\n\r\n"},
		{imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"subject", "in-reply-to"}},
			"Subject: inner subject\r\nIn-Reply-To: <a@example.jp> <b@example.jp>\r\n\r\n"},
		{imap.FetchItemBodySection{Part: []int{1}, Specifier: imap.PartSpecifierHeader}, ""},
		{imap.FetchItemBodySection{Part: []int{3}}, ""},
		{imap.FetchItemBodySection{Part: []int{1, 1}}, ""},
		{imap.FetchItemBodySection{Part: []int{0}}, ""},
		{imap.FetchItemBodySection{Specifier: imap.PartSpecifierMIME}, ""},
		{imap.FetchItemBodySection{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 11, Size: 100}}, "below."},
		{imap.FetchItemBodySection{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 100, Size: 1}}, ""},
	}
	for _, tt := range tests {
		if got := BodySection(msg, &tt.it); string(got) != tt.want {
			t.Errorf("BODY[%s] = %q, want %q", sectionName(&tt.it), got, tt.want)
		}
	}
	single := []byte("Subject: s\r\nX-Garbage line\r\n\r\nbody\r\n")
	if got := BodySection(single, &imap.FetchItemBodySection{Part: []int{1}}); string(got) != "body\r\n" {
		t.Errorf("single BODY[1] = %q", got)
	}
	if got := BodySection(single, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject"}}); string(got) != "X-Garbage line\r\n\r\n" {
		t.Errorf("single HEADER.FIELDS.NOT = %q", got)
	}
	if got := BodySection(single, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}); string(got) != "body\r\n" {
		t.Errorf("single TEXT = %q", got)
	}
}
