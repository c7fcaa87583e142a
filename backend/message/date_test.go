package message

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339, "" for no parse
	}{
		{"Tue, 1 Jul 2003 10:52:37 +0200", "2003-07-01T10:52:37+02:00"},
		{"Tue, 01 Jul 2003 10:52:37 +0900 (JST)", "2003-07-01T10:52:37+09:00"},
		{"1 Jul 2003 10:52 +0200", "2003-07-01T10:52:00+02:00"},
		{"Thu, 13 Feb 97 22:05:14 GMT", "1997-02-13T22:05:14Z"},
		{"Thu, 13 Feb 05 22:05:14 EST", "2005-02-13T22:05:14-05:00"},
		{"13 Feb 1997 22:05 JST", "1997-02-13T22:05:00+09:00"},
		{"Mon, 4 Mar 2013 09:14:55 (JST)", "2013-03-04T09:14:55+09:00"},
		{"Mon,4 Mar 2013 09:14:55 +0900", "2013-03-04T09:14:55+09:00"},
		{"Monday, 4-Mar-13 09:14:55 PDT", "2013-03-04T09:14:55-07:00"},
		{"13-Feb-1997 22:05:14 +0000", "1997-02-13T22:05:14Z"},
		{"Thu Feb 13 22:05:14 1997", "1997-02-13T22:05:14Z"},
		{"Thu Feb 13 22:05:14 JST 1997", "1997-02-13T22:05:14+09:00"},
		{"2013-03-04T09:14:55+09:00", "2013-03-04T09:14:55+09:00"},
		{"2013-03-04 09:14:55 Z", "2013-03-04T09:14:55Z"},
		{"Mon, 4 Mar 2013 09:14:55 GMT+0900", "2013-03-04T09:14:55+09:00"},
		{"Mon, 4 Mar 2013 09:14:55 +05:30", "2013-03-04T09:14:55+05:30"},
		{"4 March 2013 9:14:55 -0330", "2013-03-04T09:14:55-03:30"},
		{"Sat, 31 Dec 1969 23:59:59 -0000", "1969-12-31T23:59:59Z"},
		{"Wed, 31 Dec 1969 15:00:00 -0800", "1969-12-31T15:00:00-08:00"},
		{"Mon, 4 Mar 2013 09:14:60 +0000", "2013-03-04T09:14:59Z"},
		{"Mon, 4 Mar 2013", "2013-03-04T00:00:00Z"},
		{"Mon, 4 Mar 2013 09:14:55 A", "2013-03-04T09:14:55Z"},
		{"Mon, 4 Mar 2013 09:14:55 +9999", "2013-03-04T09:14:55Z"},
		{"  Mon, 4 Mar 2013 09:14:55 +0900  \r\n", "2013-03-04T09:14:55+09:00"},
		{"Mon, 4 Mar 2013 9:14:55 PM +0900", "2013-03-04T21:14:55+09:00"},
		{"Mon, 4 Mar 103 09:14:55 +0000", "2003-03-04T09:14:55Z"},
		{"", ""},
		{"garbage", ""},
		{"Mon, 31 Feb 2013 09:14:55 +0000", ""},
		{"Mon, 4 Foo 2013 09:14:55 +0000", ""},
		{"Mon, 4 Mar 2013 25:14:55 +0000", ""},
		{"Mar 2013", ""},
		{"(unclosed comment", ""},
	}
	for _, tt := range tests {
		got, ok := ParseDate(tt.in)
		if tt.want == "" {
			if ok {
				t.Errorf("ParseDate(%q) = %v, want no parse", tt.in, got)
			}
			continue
		}
		want, err := time.Parse(time.RFC3339, tt.want)
		if err != nil {
			t.Fatal(err)
		}
		_, gotOff := got.Zone()
		_, wantOff := want.Zone()
		if !ok || !got.Equal(want) || gotOff != wantOff {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, ok, want)
		}
	}
}

func TestInternalDate(t *testing.T) {
	from := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	const (
		rcvd1 = "Received: from a by b with SMTP; Mon, 4 Mar 2013 09:15:02 +0900\r\n"
		rcvd2 = "Received: from c (c [1.2.3.4]; x=y)\r\n\tby d; Sun, 3 Mar 2013 01:00:00 +0000\r\n"
		date  = "Date: Sat, 2 Mar 2013 12:00:00 -0500\r\n"
	)
	tests := []struct {
		name   string
		header string
		from   time.Time
		want   string
		source string
	}{
		{"from line wins", rcvd1 + date, from, "2001-02-03T04:05:06Z", "from-line"},
		{"topmost received", rcvd1 + rcvd2 + date, time.Time{}, "2013-03-04T09:15:02+09:00", "received"},
		{"received with semicolons, folded", rcvd2 + rcvd1 + date, time.Time{}, "2013-03-03T01:00:00Z", "received"},
		{"bad topmost received falls back to date", "Received: from x by y; not a date\r\n" + rcvd1 + date, time.Time{}, "2013-03-02T12:00:00-05:00", "date"},
		{"received without date", "Received: from x by y\r\n" + date, time.Time{}, "2013-03-02T12:00:00-05:00", "date"},
		{"date only", date, time.Time{}, "2013-03-02T12:00:00-05:00", "date"},
		{"nothing", "Subject: x\r\n", time.Time{}, "", ""},
		{"unparseable date", "Date: yesterday\r\n", time.Time{}, "", ""},
		{"in body does not count", "Subject: x\r\n\r\n" + date, time.Time{}, "", ""},
	}
	for _, tt := range tests {
		got, src := InternalDate([]byte(tt.header), tt.from)
		if src != tt.source {
			t.Errorf("%s: source %q, want %q", tt.name, src, tt.source)
		}
		if tt.want == "" {
			if !got.IsZero() {
				t.Errorf("%s: got %v, want zero", tt.name, got)
			}
			continue
		}
		want, _ := time.Parse(time.RFC3339, tt.want)
		_, go_ := got.Zone()
		_, wo := want.Zone()
		if !got.Equal(want) || go_ != wo {
			t.Errorf("%s: got %v, want %v", tt.name, got, want)
		}
	}
}

func TestClampDate(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	jst := time.FixedZone("", 9*3600)
	tests := []struct {
		in, want time.Time
	}{
		{time.Time{}, epoch},
		{time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), epoch},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), epoch},
		{time.Date(1970, 1, 1, 8, 0, 0, 0, jst), epoch}, // 1969-12-31T23:00Z
		{epoch, epoch},
		{time.Date(2013, 3, 4, 9, 0, 0, 0, jst), time.Date(2013, 3, 4, 9, 0, 0, 0, jst)},
	}
	for _, tt := range tests {
		got := ClampDate(tt.in)
		if !got.Equal(tt.want) || got.Location().String() != tt.want.Location().String() {
			t.Errorf("ClampDate(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
