package message

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// benchMessage builds a CRLF message of about size bytes: a realistic
// header and a body of 76-character lines.
func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(fpBase[:bytes.Index([]byte(fpBase), []byte("\r\n\r\n"))+2])
	b.WriteString("X-Mozilla-Status: 0001\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%06d The quick brown fox jumps over the lazy dog; 会議は明日です。 line end  \r\n", i)
	}
	return b.Bytes()
}

func BenchmarkContentFP(b *testing.B) {
	for _, size := range []int{100 << 10, 2 << 20} {
		msg := benchMessage(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				ContentFP(msg)
			}
		})
	}
}

func BenchmarkHeaderFP(b *testing.B) {
	msg := []byte(hfpMessage)
	b.ReportAllocs()
	for b.Loop() {
		HeaderFP(msg)
	}
}

func BenchmarkEnvelope(b *testing.B) {
	msg := readFixture(b, "jp-iso2022jp.eml")
	b.ReportAllocs()
	for b.Loop() {
		Envelope(msg)
	}
}

func BenchmarkBodyStructure(b *testing.B) {
	msg := readFixture(b, "nested-rfc822.eml")
	b.ReportAllocs()
	for b.Loop() {
		BodyStructure(msg)
	}
}

func BenchmarkMatchBody(b *testing.B) {
	msg := benchMessage(100 << 10)
	c := &imap.SearchCriteria{Body: []string{"lazy cat"}}
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if ok, err := Match(SearchMeta{}, func() ([]byte, error) { return msg, nil }, c); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
