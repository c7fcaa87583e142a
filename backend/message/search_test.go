package message

import (
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func seqSet(ranges ...[2]uint32) imap.SeqSet {
	var s imap.SeqSet
	for _, r := range ranges {
		s.AddRange(r[0], r[1])
	}
	return s
}

func uidSet(ranges ...[2]imap.UID) imap.UIDSet {
	var s imap.UIDSet
	for _, r := range ranges {
		s.AddRange(r[0], r[1])
	}
	return s
}

func TestMatchMetadata(t *testing.T) {
	jst := time.FixedZone("", 9*3600)
	meta := SearchMeta{
		SeqNum: 3, UID: 10, MaxSeq: 5, MaxUID: 20,
		Flags: []imap.Flag{imap.FlagSeen, "$Label1"},
		Size:  1000,
		// 2013-03-04T16:00Z, but the 5th where it was received.
		InternalDate: time.Date(2013, 3, 5, 1, 0, 0, 0, jst),
	}
	last := meta
	last.SeqNum, last.UID = 5, 20
	tests := []struct {
		name string
		m    SearchMeta
		c    imap.SearchCriteria
		want bool
	}{
		{"all", meta, imap.SearchCriteria{}, true},
		{"seq", meta, imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(3)}}, true},
		{"seq other", meta, imap.SearchCriteria{SeqNum: []imap.SeqSet{seqSet([2]uint32{1, 2})}}, false},
		{"seq star", meta, imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(0)}}, false},
		{"seq star last", last, imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(0)}}, true},
		{"seq 3:*", meta, imap.SearchCriteria{SeqNum: []imap.SeqSet{seqSet([2]uint32{3, 0})}}, true},
		{"seq 4:*", meta, imap.SearchCriteria{SeqNum: []imap.SeqSet{seqSet([2]uint32{4, 0})}}, false},
		{"seq 7:* beyond max matches max", last, imap.SearchCriteria{SeqNum: []imap.SeqSet{seqSet([2]uint32{7, 0})}}, true},
		{"seq 7:* beyond max not others", meta, imap.SearchCriteria{SeqNum: []imap.SeqSet{seqSet([2]uint32{7, 0})}}, false},
		{"seq reversed 4:2", meta, imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 4, Stop: 2}}}}, true},
		{"seq two sets intersect", meta, imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(3, 4), imap.SeqSetNum(4)}}, false},
		{"uid", meta, imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(10)}}, true},
		{"uid 5:*", meta, imap.SearchCriteria{UID: []imap.UIDSet{uidSet([2]imap.UID{5, 0})}}, true},
		{"uid 25:* max 20", last, imap.SearchCriteria{UID: []imap.UIDSet{uidSet([2]imap.UID{25, 0})}}, true},
		{"uid 25:* not 10", meta, imap.SearchCriteria{UID: []imap.UIDSet{uidSet([2]imap.UID{25, 0})}}, false},
		{"uid searchres unresolved", meta, imap.SearchCriteria{UID: []imap.UIDSet{imap.SearchRes()}}, false},
		{"flag", meta, imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, true},
		{"flag case", meta, imap.SearchCriteria{Flag: []imap.Flag{`\SEEN`, "$label1"}}, true},
		{"flag missing", meta, imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, false},
		{"not flag", meta, imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagFlagged}}, true},
		{"not flag set", meta, imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, false},
		{"recent never", SearchMeta{Flags: []imap.Flag{`\Recent`}}, imap.SearchCriteria{Flag: []imap.Flag{`\Recent`}}, false},
		{"old", meta, imap.SearchCriteria{NotFlag: []imap.Flag{`\Recent`}}, true},
		{"new", SearchMeta{}, imap.SearchCriteria{Flag: []imap.Flag{`\Recent`}, NotFlag: []imap.Flag{imap.FlagSeen}}, false},
		{"larger", meta, imap.SearchCriteria{Larger: 999}, true},
		{"larger equal", meta, imap.SearchCriteria{Larger: 1000}, false},
		{"smaller", meta, imap.SearchCriteria{Smaller: 1001}, true},
		{"smaller equal", meta, imap.SearchCriteria{Smaller: 1000}, false},
		{"since own-zone date", meta, imap.SearchCriteria{Since: day(2013, 3, 5)}, true},
		{"since next day", meta, imap.SearchCriteria{Since: day(2013, 3, 6)}, false},
		{"before same day", meta, imap.SearchCriteria{Before: day(2013, 3, 5)}, false},
		{"before next day", meta, imap.SearchCriteria{Before: day(2013, 3, 6)}, true},
		{"on", meta, imap.SearchCriteria{Since: day(2013, 3, 5), Before: day(2013, 3, 5).Add(24 * time.Hour)}, true},
		{"on UTC date", meta, imap.SearchCriteria{Since: day(2013, 3, 4), Before: day(2013, 3, 4).Add(24 * time.Hour)}, false},
		{"criteria time of day ignored", meta, imap.SearchCriteria{Since: time.Date(2013, 3, 5, 23, 0, 0, 0, time.UTC)}, true},
		{"not", meta, imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagSeen}}}}, false},
		{"or", meta, imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagFlagged}}, {UID: []imap.UIDSet{imap.UIDSetNum(10)}}}}}, true},
		{"or neither", meta, imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagFlagged}}, {Larger: 5000}}}}, false},
		{"not or", meta, imap.SearchCriteria{Not: []imap.SearchCriteria{{Or: [][2]imap.SearchCriteria{{{Larger: 5000}, {Not: []imap.SearchCriteria{{Smaller: 10}}}}}}}}, false},
		{"modseq ignored", meta, imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: 5}}, true},
	}
	for _, tt := range tests {
		loaded := false
		got, err := Match(tt.m, func() ([]byte, error) { loaded = true; return nil, nil }, &tt.c)
		if err != nil || got != tt.want {
			t.Errorf("%s: Match = %v, %v; want %v", tt.name, got, err, tt.want)
		}
		if loaded {
			t.Errorf("%s: loaded content for metadata-only criteria", tt.name)
		}
		if NeedsContent(&tt.c) {
			t.Errorf("%s: NeedsContent = true", tt.name)
		}
	}

	c := ResolveSearchRes(&imap.SearchCriteria{Not: []imap.SearchCriteria{{UID: []imap.UIDSet{imap.SearchRes()}}}}, imap.UIDSetNum(10))
	if got, _ := Match(meta, nil, c); got {
		t.Error("NOT $ with $ = {10}: matched uid 10")
	}
	if got, _ := Match(meta, nil, nil); !got {
		t.Error("nil criteria: no match")
	}
}

func TestMatchContent(t *testing.T) {
	type tc struct {
		fixture string
		c       imap.SearchCriteria
		want    bool
	}
	hdr := func(k, v string) imap.SearchCriteria {
		return imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}}
	}
	body := func(s string) imap.SearchCriteria { return imap.SearchCriteria{Body: []string{s}} }
	text := func(s string) imap.SearchCriteria { return imap.SearchCriteria{Text: []string{s}} }
	tests := []tc{
		{"jp-iso2022jp.eml", hdr("Subject", "会議"), true},
		{"jp-iso2022jp.eml", hdr("subject", "明日の会議について"), true},
		{"jp-iso2022jp.eml", hdr("From", "山田"), true},
		{"jp-iso2022jp.eml", hdr("From", "YAMADA@example.JP"), true},
		{"jp-iso2022jp.eml", hdr("To", "山田"), false},
		{"jp-iso2022jp.eml", body("第二会議室"), true},
		{"jp-iso2022jp.eml", body("会議について"), false},
		{"jp-iso2022jp.eml", text("会議について"), true},
		{"jp-iso2022jp.eml", text("第二会議室"), true},
		{"jp-iso2022jp.eml", text("ESMTP ID 4A1B2C3D"), true},
		{"jp-iso2022jp.eml", body(""), true},
		{"jp-shiftjis.eml", body("議事録"), true},
		{"jp-shiftjis.eml", body("ソフトウェア表示"), true},
		{"jp-shiftjis.eml", hdr("Subject", "見積書"), true},
		{"jp-shiftjis.eml", text("見積書"), true},
		{"jp-eucjp.eml", body("予算案について会議"), true},
		{"jp-eucjp.eml", hdr("Subject", "予算案"), true},
		{"utf8-qp.eml", body("GRÜSSE"), true},         // full case folding: ß = ss
		{"utf8-qp.eml", body("straßenplanung"), true}, // across a soft line break
		{"utf8-qp.eml", body("会議"), true},
		{"utf8-qp.eml", hdr("Subject", "münchen"), true},
		{"utf8-qp.eml", hdr("From", "jürgen"), true},
		{"utf8-qp.eml", body("=C3"), false},
		{"utf8-base64.eml", hdr("Subject", "東京の"), true}, // word split inside a character
		{"utf8-base64.eml", body("東京の会議"), true},
		{"utf8-base64.eml", body("σίσυφος"), true},
		{"utf8-base64.eml", body("résumé ATTACHED"), true},
		{"utf8-base64.eml", body("UmVzdW1l"), false},
		{"multipart-mixed.eml", body("quarterly report attached"), true},
		{"multipart-mixed.eml", body("PDF-1.4"), false},
		{"multipart-mixed.eml", body("multi-part message in MIME"), false}, // preamble
		{"multipart-mixed.eml", hdr("Cc", ""), true},
		{"multipart-mixed.eml", hdr("Bcc", ""), false},
		{"multipart-mixed.eml", hdr("content-type", "MULTIPART/mixed"), true},
		{"multipart-alternative.eml", body("<b>html</b>"), true},
		{"nested-rfc822.eml", body("転送された本文"), true},
		{"nested-rfc822.eml", body("inner subject"), true},
		{"nested-rfc822.eml", body("会議"), false},
		{"nested-rfc822.eml", text("fwd: 明日の会議"), true},
		{"nested-rfc822.eml", hdr("Subject", "inner"), false},
		{"broken-boundary.eml", body("not the declared one"), true},
		{"truncated-multipart.eml", body("never closed"), true},
		{"missing-headers.eml", text("no date, from"), true},
		{"jp-iso2022jp.eml", imap.SearchCriteria{SentSince: day(2013, 3, 4), SentBefore: day(2013, 3, 5)}, true},
		{"jp-iso2022jp.eml", imap.SearchCriteria{SentBefore: day(2013, 3, 4)}, false},
		{"jp-iso2022jp.eml", imap.SearchCriteria{SentSince: day(2013, 3, 5)}, false},
		{"utf8-base64.eml", imap.SearchCriteria{SentSince: day(2013, 3, 8), SentBefore: day(2013, 3, 9)}, true}, // 13:00Z, 08:00 -0500
		{"missing-headers.eml", imap.SearchCriteria{SentBefore: day(2100, 1, 1)}, false},
		{"missing-headers.eml", imap.SearchCriteria{Not: []imap.SearchCriteria{{SentBefore: day(2100, 1, 1)}}}, true},
		{"jp-eucjp.eml", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{body("nothing"), hdr("subject", "予算")}}}, true},
		{"jp-eucjp.eml", imap.SearchCriteria{Body: []string{"予算", "会議"}, Text: []string{"tanaka"}}, true},
		{"jp-eucjp.eml", imap.SearchCriteria{Body: []string{"予算", "見積"}}, false},
	}
	for _, tt := range tests {
		msg := readFixture(t, tt.fixture)
		loads := 0
		got, err := Match(SearchMeta{UID: 1}, func() ([]byte, error) { loads++; return msg, nil }, &tt.c)
		if err != nil || got != tt.want {
			t.Errorf("%s %+v: Match = %v, %v; want %v", tt.fixture, tt.c, got, err, tt.want)
		}
		if loads != 1 {
			t.Errorf("%s %+v: loaded %d times", tt.fixture, tt.c, loads)
		}
		if !NeedsContent(&tt.c) {
			t.Errorf("%s %+v: NeedsContent = false", tt.fixture, tt.c)
		}
	}
}

func TestMatchCharsetFallback(t *testing.T) {
	msgs := map[string]string{
		"unknown charset": "Subject: =?x-unknown?Q?caf=E9?=\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nhello world\r\n",
		"mislabelled jis": "Subject: x\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\x1b$B2q5D\x1b(B hello world\r\n",
		"raw 8-bit":       "Subject: x\r\n\r\nhello \xff\xfe world\r\n",
		"bad base64":      "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8g!!d29y\r\nbGQ\r\n",
		"bad qp":          "Content-Transfer-Encoding: quoted-printable\r\n\r\nhello=ZZ w=\r\norld=\r\n",
	}
	for name, msg := range msgs {
		for _, q := range []string{"hello", "world"} {
			c := imap.SearchCriteria{Body: []string{q}}
			got, err := Match(SearchMeta{}, func() ([]byte, error) { return []byte(msg), nil }, &c)
			if err != nil || !got {
				t.Errorf("%s: BODY %q = %v, %v", name, q, got, err)
			}
		}
	}
	c := imap.SearchCriteria{Body: []string{"会議"}}
	if got, _ := Match(SearchMeta{}, func() ([]byte, error) { return []byte(msgs["mislabelled jis"]), nil }, &c); !got {
		t.Error("ISO-2022-JP labelled us-ascii: not decoded")
	}
	c = imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "x-unknown?Q?caf"}}}
	if got, _ := Match(SearchMeta{}, func() ([]byte, error) { return []byte(msgs["unknown charset"]), nil }, &c); !got {
		t.Error("unknown header charset: raw value not searched")
	}
}

func TestMatchLazyLoad(t *testing.T) {
	meta := SearchMeta{UID: 7, Flags: []imap.Flag{imap.FlagSeen}, Size: 100}
	errLoad := errors.New("disk on fire")
	tests := []struct {
		name      string
		c         imap.SearchCriteria
		want      bool
		wantLoads int
	}{
		{"cheap false first", imap.SearchCriteria{Body: []string{"x"}, Flag: []imap.Flag{imap.FlagFlagged}}, false, 0},
		{"cheap false after content key in Not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Body: []string{"x"}}}, Larger: 1000}, false, 0},
		{"or true by cheap side", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"x"}}, {Flag: []imap.Flag{imap.FlagSeen}}}}}, true, 0},
		{"not of cheap true", imap.SearchCriteria{Not: []imap.SearchCriteria{{Or: [][2]imap.SearchCriteria{{{Text: []string{"x"}}, {UID: []imap.UIDSet{imap.UIDSetNum(7)}}}}}}}, false, 0},
		{"content needed", imap.SearchCriteria{Body: []string{"hello"}, Text: []string{"subject: hi"}, Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "hi"}}}, true, 1},
	}
	for _, tt := range tests {
		loads := 0
		got, err := Match(meta, func() ([]byte, error) { loads++; return []byte("Subject: hi\r\n\r\nhello\r\n"), nil }, &tt.c)
		if err != nil || got != tt.want || loads != tt.wantLoads {
			t.Errorf("%s: Match = %v, %v with %d loads; want %v with %d", tt.name, got, err, loads, tt.want, tt.wantLoads)
		}
		// A failing loader only matters when content is needed.
		got, err = Match(meta, func() ([]byte, error) { return nil, errLoad }, &tt.c)
		if tt.wantLoads > 0 {
			if !errors.Is(err, errLoad) || got {
				t.Errorf("%s: with failing load: %v, %v", tt.name, got, err)
			}
		} else if err != nil || got != tt.want {
			t.Errorf("%s: with failing load: %v, %v", tt.name, got, err)
		}
	}
}

func TestNeedsContent(t *testing.T) {
	tests := []struct {
		c    *imap.SearchCriteria
		want bool
	}{
		{nil, false},
		{&imap.SearchCriteria{}, false},
		{&imap.SearchCriteria{Since: day(2000, 1, 1), Larger: 5}, false},
		{&imap.SearchCriteria{SentSince: day(2000, 1, 1)}, true},
		{&imap.SearchCriteria{SentBefore: day(2000, 1, 1)}, true},
		{&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X"}}}, true},
		{&imap.SearchCriteria{Body: []string{""}}, true},
		{&imap.SearchCriteria{Text: []string{"a"}}, true},
		{&imap.SearchCriteria{Not: []imap.SearchCriteria{{}, {Text: []string{"a"}}}}, true},
		{&imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{}, {Not: []imap.SearchCriteria{{Body: []string{"a"}}}}}}}, true},
		{&imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Larger: 1}, {Smaller: 2}}}}, false},
	}
	for i, tt := range tests {
		if got := NeedsContent(tt.c); got != tt.want {
			t.Errorf("%d: NeedsContent = %v, want %v", i, got, tt.want)
		}
	}
}
