package message

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestParseAddressList(t *testing.T) {
	a := func(name, mailbox, host string) imap.Address {
		return imap.Address{Name: name, Mailbox: mailbox, Host: host}
	}
	tests := []struct {
		in   string
		want []imap.Address
	}{
		{"alice@example.com", []imap.Address{a("", "alice", "example.com")}},
		{"Alice <alice@example.com>", []imap.Address{a("Alice", "alice", "example.com")}},
		{`"Doe, John" <john@example.com>, jane@example.com`, []imap.Address{a("Doe, John", "john", "example.com"), a("", "jane", "example.com")}},
		{`"Quoted \"escape\"" <q@example.com>`, []imap.Address{a(`Quoted "escape"`, "q", "example.com")}},
		{"=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>", []imap.Address{a("=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=", "yamada", "example.jp")}},
		{"=?UTF-8?Q?a?= =?UTF-8?Q?b?= <ab@example.com>", []imap.Address{a("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab", "example.com")}},
		{"bob@example.com (Bob Smith)", []imap.Address{a("Bob Smith", "bob", "example.com")}},
		{"Bob (the builder) Smith <bob@example.com>", []imap.Address{a("Bob Smith", "bob", "example.com")}},
		{"John Q. Public <jqp@example.com>", []imap.Address{a("John Q. Public", "jqp", "example.com")}},
		{"<@route1,@route2:user@example.com>", []imap.Address{a("", "user", "example.com")}},
		{"undisclosed-recipients:;", []imap.Address{{Mailbox: "undisclosed-recipients"}, {}}},
		{"Team: a@x.org, B <b@y.org>; c@z.org", []imap.Address{{Mailbox: "Team"}, a("", "a", "x.org"), a("B", "b", "y.org"), {}, a("", "c", "z.org")}},
		{"Open group: a@x.org", []imap.Address{{Mailbox: "Open group"}, a("", "a", "x.org"), {}}},
		{"root", []imap.Address{a("", "root", missingDomain)}},
		{"Name <>", []imap.Address{a("Name", missingMailbox, missingDomain)}},
		{"<>", nil},
		{"", nil},
		{" , ,", nil},
		{`"john doe"@example.com`, []imap.Address{a("", `"john doe"`, "example.com")}},
		{"user@[192.0.2.1]", []imap.Address{a("", "user", "[192.0.2.1]")}},
		{"Unclosed <a@b.c", []imap.Address{a("Unclosed", "a", "b.c")}},
		{"a@b.c\r\n\t, d@e.f", []imap.Address{a("", "a", "b.c"), a("", "d", "e.f")}},
		{"foo@bar.com <foo@bar.com>", []imap.Address{a("foo@bar.com", "foo", "bar.com")}},
	}
	for _, tt := range tests {
		if got := parseAddressList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseAddressList(%q)\n got %#v\nwant %#v", tt.in, got, tt.want)
		}
	}
}

func TestEnvelope(t *testing.T) {
	const h = "Date: Mon, 4 Mar 2013 09:14:55 +0900 (JST)\r\n" +
		"Subject: =?ISO-2022-JP?B?GyRCTEBGfCROMnE1RCRLJEQkJCRGGyhC?=\r\n" +
		"  (continued)\r\n" +
		"From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>\r\n" +
		"Sender: list@example.jp\r\n" +
		"Reply-To: \r\n" +
		"To: a@example.com, B <b@example.com>\r\n" +
		"cc: team:;\r\n" +
		"BCC: hidden@example.com\r\n" +
		"In-Reply-To: <x@example.com> (comment) <y@example.com>\r\n" +
		"Message-ID: <m@example.jp>\r\n" +
		"Subject: second subject ignored\r\n" +
		"\r\n" +
		"To: body@example.com\r\n"
	want := &imap.Envelope{
		Date:      time.Date(2013, 3, 4, 9, 14, 55, 0, time.FixedZone("", 9*3600)),
		Subject:   "=?ISO-2022-JP?B?GyRCTEBGfCROMnE1RCRLJEQkJCRGGyhC?=  (continued)",
		From:      []imap.Address{{Name: "=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?=", Mailbox: "yamada", Host: "example.jp"}},
		Sender:    []imap.Address{{Mailbox: "list", Host: "example.jp"}},
		ReplyTo:   nil,
		To:        []imap.Address{{Mailbox: "a", Host: "example.com"}, {Name: "B", Mailbox: "b", Host: "example.com"}},
		Cc:        []imap.Address{{Mailbox: "team"}, {}},
		Bcc:       []imap.Address{{Mailbox: "hidden", Host: "example.com"}},
		InReplyTo: []string{"x@example.com", "y@example.com"},
		MessageID: "m@example.jp",
	}
	got := Envelope([]byte(h))
	if !envelopeEqual(got, want) {
		t.Errorf("Envelope:\n got %#v\nwant %#v", got, want)
	}

	empty := Envelope([]byte("X-Nothing: here\r\n\r\nDate: Mon, 4 Mar 2013 09:14:55 +0900\r\n"))
	if !envelopeEqual(empty, &imap.Envelope{}) {
		t.Errorf("Envelope without fields = %#v", empty)
	}
	for _, in := range [][]byte{nil, []byte("\x00\xff:\r\n"), []byte(": : :\r\n\r\n"), []byte("From: <<<@@@>>>\r\n")} {
		if Envelope(in) == nil {
			t.Errorf("Envelope(%q) = nil", in)
		}
	}
}

// envelopeEqual compares envelopes, dates by instant and zone offset.
func envelopeEqual(a, b *imap.Envelope) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !sameTime(a.Date, b.Date) {
		return false
	}
	x, y := *a, *b
	x.Date, y.Date = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	_, ao := a.Zone()
	_, bo := b.Zone()
	return a.Equal(b) && ao == bo
}

func TestEnvelopeRoundTrip(t *testing.T) {
	envs := []*imap.Envelope{
		{},
		{Date: time.Date(2013, 3, 4, 9, 14, 55, 0, time.UTC)},
		{Date: time.Date(1969, 7, 20, 20, 17, 40, 123, time.FixedZone("", 5*3600+1800))},
		{Date: time.Date(2013, 3, 4, 9, 14, 55, 0, time.FixedZone("JST", 9*3600)), Subject: "s"},
		{From: []imap.Address{}, To: []imap.Address{{}}, InReplyTo: []string{}},
		{Cc: []imap.Address{{Mailbox: "g"}, {Name: "n", Mailbox: "m", Host: "h"}, {}}, InReplyTo: []string{"a", ""}, MessageID: "id"},
		{Subject: string([]byte{0, 0xff, '\r', '\n'})},
	}
	for _, name := range fixtureNames(t) {
		envs = append(envs, Envelope(readFixture(t, name)))
	}
	for i, e := range envs {
		b := EncodeEnvelope(e)
		got, err := DecodeEnvelope(b)
		if err != nil {
			t.Fatalf("%d: decode: %v", i, err)
		}
		if !envelopeEqual(got, e) {
			t.Errorf("%d: round trip\n got %#v\nwant %#v", i, got, e)
		}
		if !bytes.Equal(EncodeEnvelope(got), b) {
			t.Errorf("%d: re-encoding differs", i)
		}
		// Every truncation is an error, never a panic.
		for n := 0; n < len(b); n++ {
			if _, err := DecodeEnvelope(b[:n]); err == nil {
				t.Errorf("%d: truncated to %d bytes: no error", i, n)
			}
		}
	}
	if _, err := DecodeEnvelope(append(EncodeEnvelope(&imap.Envelope{}), 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	if _, err := DecodeEnvelope([]byte{99, 1}); err == nil {
		t.Error("unknown version: no error")
	}
}
