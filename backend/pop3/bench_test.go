package pop3

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchMsg is a generated message of about size bytes: headers and
// base64-looking body lines, CRLF.
func benchMsg(i, size int, rng *rand.Rand) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b strings.Builder
	b.Grow(size + 512)
	fmt.Fprintf(&b, "Received: from mx.example.net by pop.example.com; Tue, 3 Jan 2006 10:%02d:00 +0000\r\n", i%60)
	fmt.Fprintf(&b, "From: Sender %d <s%d@example.net>\r\nTo: alice@example.com\r\nSubject: benchmark message %d\r\n", i%97, i%97, i)
	fmt.Fprintf(&b, "Message-ID: <bench-%d@example.net>\r\nDate: Tue, 3 Jan 2006 10:%02d:00 +0000\r\nMIME-Version: 1.0\r\n", i, i%60)
	b.WriteString("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	line := make([]byte, 76)
	for b.Len() < size {
		for j := range line {
			line[j] = alphabet[rng.IntN(len(alphabet))]
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// procKB reads a "VmXXX:  123 kB" line of /proc/self/status; 0 if absent.
func procKB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				return v
			}
		}
	}
	return 0
}

// benchFetch fetches msgs (put into Dovecot's Maildir) into a fresh
// bridge per iteration, with fsync on, and reports messages/s, MB/s (via
// SetBytes), peak RSS and how far the round raised RSS above where it
// started.
func benchFetch(b *testing.B, n int, gen func(i int) []byte) {
	dc := startDovecot(b, false)
	var total int64
	for i := 0; i < n; i += 100 { // in batches, so the corpus is not all in memory
		var batch [][]byte
		for j := i; j < min(i+100, n); j++ {
			batch = append(batch, gen(j))
			total += int64(len(batch[len(batch)-1]))
		}
		writeMaildirAs(b, dc, batch, i)
	}
	serverUIDLs(b, dc.POP3Port) // Dovecot indexes the new Maildir once, untimed
	b.SetBytes(total)
	var elapsed time.Duration
	var peak, growth float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		br := newBridge(b, bridgeOptions{sync: true, noIMAP: true})
		f := newFetcher(b, br, nil, plainAccount(dc.POP3Port))
		runtime.GC()
		debug.FreeOSMemory()
		base := procKB("VmRSS")
		resetPeakRSS()
		b.StartTimer()
		start := time.Now()
		res, err := f.Round(context.Background())
		elapsed += time.Since(start)
		b.StopTimer()
		if err != nil || res.Fetched != n || res.Bytes != total {
			b.Fatalf("round: %v (%s)", err, res)
		}
		hwm := procKB("VmHWM")
		peak = max(peak, hwm)
		growth = max(growth, hwm-base)
		br.db.Close()
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(peak/1024, "peak-RSS-MB")
	b.ReportMetric(growth/1024, "RSS-growth-MB")
}

// BenchmarkFetch: 2,000 messages of typical sizes (1.5–13.5 KB, every
// 50th 200 KB; about 25 MB).
func BenchmarkFetch(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	benchFetch(b, 2000, func(i int) []byte {
		size := 1500 + (i*7919)%12000
		if i%50 == 49 {
			size = 200 << 10
		}
		return benchMsg(i, size, rng)
	})
}

// BenchmarkFetchLarge: six 16 MB messages; RSS-growth-MB shows what one
// large message costs in memory (one message is held at a time).
func BenchmarkFetchLarge(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	benchFetch(b, 6, func(i int) []byte { return benchMsg(i, 16<<20, rng) })
}
