package message

import (
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func addFixtureSeeds(f *testing.F) {
	for _, name := range fixtureNames(f) {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(fpBase))
	f.Add([]byte(hfpMessage))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\n\n--x\n\n--x--"))
}

// FuzzContentFP: no panic, and turning LF into CRLF does not change the
// fingerprint.
func FuzzContentFP(f *testing.F) {
	addFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		fp := ContentFP(msg)
		if got := ContentFP(toCRLF(msg)); got != fp {
			t.Errorf("CRLF copy: %v, want %v", got, fp)
		}
		if got := ContentFP(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))); got != fp {
			t.Errorf("LF copy: %v, want %v", got, fp)
		}
		h, _ := SplitHeader(msg)
		if HeaderFP(msg) != HeaderFP(h) {
			t.Error("HeaderFP of message and of its header differ")
		}
	})
}

// FuzzBodyStructure: no panic, a structure go-imap can write, BODY[part]
// sizes that agree with it, and a cache codec that round-trips it.
// Envelope and InternalDate ride along.
func FuzzBodyStructure(f *testing.F) {
	addFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		bs := BodyStructure(msg)
		if err := checkWritable(bs, "root"); err != nil {
			t.Fatal(err)
		}
		b := EncodeBodyStructure(bs)
		got, err := DecodeBodyStructure(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !bodyStructureEqual(got, bs) {
			t.Fatalf("round trip differs: %s vs %s", shape(got), shape(bs))
		}
		// BODY[part] sizes agree with BODYSTRUCTURE.
		bs.Walk(func(path []int, part imap.BodyStructure) bool {
			if sp, ok := part.(*imap.BodyStructureSinglePart); ok {
				if n := len(BodySection(msg, &imap.FetchItemBodySection{Part: path})); uint32(n) != sp.Size {
					t.Errorf("BODY[%v]: %d bytes, BODYSTRUCTURE says %d", path, n, sp.Size)
				}
			}
			return true
		})
		env := Envelope(msg)
		e, err := DecodeEnvelope(EncodeEnvelope(env))
		if err != nil || !envelopeEqual(e, env) {
			t.Fatalf("envelope round trip: %v", err)
		}
		InternalDate(msg, ClampDate(env.Date))
		// Decoding garbage never panics.
		DecodeBodyStructure(msg)
		DecodeEnvelope(msg)
	})
}

// FuzzMatch: no panic on any message with text keys.
func FuzzMatch(f *testing.F) {
	for _, name := range fixtureNames(f) {
		f.Add(readFixture(f, name), "会議")
	}
	f.Add([]byte("Subject: =?utf-8?b?5p2x?=\r\n\r\nx"), "ß")
	f.Fuzz(func(t *testing.T, msg []byte, q string) {
		c := imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{
			{Body: []string{q}},
			{Text: []string{q}, Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: q}}, SentSince: day(2000, 1, 1)},
		}}}
		if _, err := Match(SearchMeta{}, func() ([]byte, error) { return msg, nil }, &c); err != nil {
			t.Fatal(err)
		}
	})
}
