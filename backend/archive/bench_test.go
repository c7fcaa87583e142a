package archive

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

var benchMbox = sync.OnceValue(func() []byte {
	// ~50 MB of Thunderbird-style messages with varied sizes.
	rng := rand.New(rand.NewPCG(42, 42))
	var b bytes.Buffer
	b.Grow(52 << 20)
	words := strings.Fields("the quick brown fox jumps over a lazy dog while mail from ten years ago waits on the old pc")
	for i := 0; b.Len() < 50<<20; i++ {
		fmt.Fprintf(&b, "From - Mon Apr %02d 09:%02d:%02d 2019\n", 1+i%28, i%60, i%60)
		fmt.Fprintf(&b, "X-Mozilla-Status: %04x\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: %s\n", i%16, strings.Repeat(" ", 80))
		fmt.Fprintf(&b, "Return-Path: <sender%d@example.com>\nMessage-ID: <%d@example.com>\nDate: Mon, 1 Apr 2019 09:00:00 +0900\n", i, i)
		fmt.Fprintf(&b, "From: Sender %d <sender%d@example.com>\nTo: you@example.org\nSubject: message %d\nMIME-Version: 1.0\nContent-Type: text/plain\n\n", i, i, i)
		lines := 10 + rng.IntN(150)
		for range lines {
			n := 3 + rng.IntN(12)
			for k := range n {
				if k > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(words[rng.IntN(len(words))])
			}
			b.WriteByte('\n')
			if rng.IntN(200) == 0 {
				b.WriteString(">From a quoted line\n")
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
})

func BenchmarkScanMbox(b *testing.B) {
	data := benchMbox()
	b.SetBytes(int64(len(data)))
	r := bytes.NewReader(data)
	for b.Loop() {
		n := 0
		_, _, err := ScanMbox(r, "bench.mbox", 0, int64(len(data)), func(e MboxEntry) error {
			n++
			return nil
		})
		if err != nil || n == 0 {
			b.Fatal(err, n)
		}
	}
}

func benchEntries(b *testing.B) [][]byte {
	data := benchMbox()
	var raws [][]byte
	_, _, err := ScanMbox(bytes.NewReader(data), "bench.mbox", 0, int64(len(data)), func(e MboxEntry) error {
		raws = append(raws, bytes.Clone(e.Raw))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return raws
}

func BenchmarkServeMbox(b *testing.B) {
	raws := benchEntries(b)
	b.SetBytes(int64(len(benchMbox())))
	b.Run("alloc", func(b *testing.B) {
		b.SetBytes(int64(len(benchMbox())))
		for b.Loop() {
			for _, r := range raws {
				ServeMbox(r)
			}
		}
	})
	b.Run("reuse", func(b *testing.B) {
		b.SetBytes(int64(len(benchMbox())))
		var buf []byte
		for b.Loop() {
			for _, r := range raws {
				buf = AppendServedMbox(buf[:0], r)
			}
		}
	})
	crlf := make([][]byte, len(raws))
	for i, r := range raws {
		crlf[i] = bytes.ReplaceAll(r, []byte("\n"), []byte("\r\n"))
	}
	b.Run("crlf-input", func(b *testing.B) {
		n := 0
		for _, r := range crlf {
			n += len(r)
		}
		b.SetBytes(int64(n))
		var buf []byte
		for b.Loop() {
			for _, r := range crlf {
				buf = AppendServedMbox(buf[:0], r)
			}
		}
	})
}
