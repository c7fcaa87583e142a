package backend

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/backend/archive"
	lt "github.com/popbridge/popbridge/internal/legacytest"
	"github.com/popbridge/popbridge/store"
)

// BenchmarkIndexLegacy indexes the same generated messages stored as an
// mbox file (the reference), a Becky! folder, an Outlook Express .dbx file,
// an Apple Mail mailbox and a Windows Live Mail folder: a cold data dir
// every iteration, the durable store, as `popbridge import` runs it. It
// reports MB/s of store bytes, msgs/s, cpu-MB/s (store bytes per second of
// the process's CPU time: steadier on a shared machine), the peak RSS of
// the index run (VmHWM, Linux) and cat-MB/s, the speed of reading the same
// files.
//
//	go test ./backend -run '^$' -bench IndexLegacy -benchtime 1x
//
// POPBRIDGE_BENCH_MESSAGES sets the number of messages (default 20000:
// mostly 1–8 KB text, one in 25 with a 64 KB–1 MB attachment, one in 12
// ISO-2022-JP; about 480 MB per store). POPBRIDGE_BENCH_NOSYNC=1 opens the
// store without fsync, to see the readers' own speed on a slow disk.
func BenchmarkIndexLegacy(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("POPBRIDGE_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	for _, format := range []string{"mbox", "becky", "dbx", "applemail", "wlm"} {
		b.Run(format, func(b *testing.B) {
			src, size := writeLegacyBenchStore(b, filepath.Join(dir, format), format, n)
			cat := catSpeed(b, src.Path)
			b.SetBytes(size)
			var peak int64
			var cpu time.Duration
			msgs := 0
			for b.Loop() {
				b.StopTimer()
				data, err := os.MkdirTemp(dir, "data-")
				if err != nil {
					b.Fatal(err)
				}
				db, err := store.Open(filepath.Join(data, "popbridge.db"), store.Options{NoSync: os.Getenv("POPBRIDGE_BENCH_NOSYNC") == "1"})
				if err != nil {
					b.Fatal(err)
				}
				acct, err := New(Options{DB: db, DataDir: data, Flatten: true, Logger: slog.New(slog.DiscardHandler), Sources: []Source{src}})
				if err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				debug.FreeOSMemory()
				resetPeakRSS()
				cpu0 := processCPU()
				b.StartTimer()
				rep, err := acct.Index(context.Background(), nil)
				b.StopTimer()
				cpu += processCPU() - cpu0
				if p := peakRSS(); p > peak {
					peak = p
				}
				if err != nil || rep.Messages != int64(n) || len(rep.Problems) > 0 {
					b.Fatalf("index: %v; %d of %d messages; problems %v", err, rep.Messages, n, rep.Problems)
				}
				msgs += n
				db.Close()
				os.RemoveAll(data)
				b.StartTimer()
			}
			b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(cat, "cat-MB/s")
			if cpu > 0 {
				// Store bytes per CPU second: steadier than MB/s on a
				// shared machine.
				b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/cpu.Seconds(), "cpu-MB/s")
			}
			if peak > 0 {
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
			}
		})
	}
}

// benchMessage is message i of the legacy corpus (CRLF).
func benchMessage(i int, pool string, lines []string) []byte {
	rng := rand.New(rand.NewPCG(uint64(i), 11))
	date := time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 37 * time.Minute)
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <s%d@example.com>\r\nReceived: from mx.example.com by pop.example.org; %s\r\nMessage-ID: <%d.legacy@example.com>\r\nDate: %s\r\nFrom: Sender %d <s%d@example.com>\r\nTo: you@example.org\r\n",
		i, date.Format(time.RFC1123Z), i, date.Format(time.RFC1123Z), i%500, i%500)
	target := 1024 + rng.IntN(7<<10)
	switch {
	case i%12 == 5:
		b.WriteString("Subject: =?ISO-2022-JP?B?GyRCMnE1RCRON28bKEI=?=\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n")
		for b.Len() < target {
			b.WriteString("\x1b$B$3$l$OK\\J8$G$9!#\x1b(B\r\n")
		}
	case i%25 == 7:
		n := (64<<10 + rng.IntN(960<<10)) / 78 * 78
		start := rng.IntN((len(pool)-n)/78) * 78
		fmt.Fprintf(&b, "Subject: photos %d\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\nContent-Type: text/plain\r\n\r\n%s--b%d\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n%s--b%d--\r\n",
			i, i, i, lines[i%len(lines)], i, pool[start:start+n], i)
	default:
		fmt.Fprintf(&b, "Subject: message %d\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", i)
		for b.Len() < target {
			b.WriteString(lines[rng.IntN(len(lines))])
		}
	}
	return b.Bytes()
}

var benchPool = sync.OnceValues(func() (string, []string) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the quick brown fox jumps over a lazy dog while mail from ten years ago waits on the old pc meeting invoice photos")
	lines := make([]string, 1024)
	for i := range lines {
		var s strings.Builder
		for s.Len() < 40+rng.IntN(36) {
			if s.Len() > 0 {
				s.WriteByte(' ')
			}
			s.WriteString(words[rng.IntN(len(words))])
		}
		if i%97 == 0 {
			lines[i] = ".a line that Becky! dot-stuffs " + s.String() + "\r\n"
		} else {
			lines[i] = s.String() + "\r\n"
		}
	}
	rnd := make([]byte, 768<<10)
	for i := range rnd {
		rnd[i] = byte(rng.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(rnd)
	var pool strings.Builder
	for len(enc) > 76 {
		pool.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	return pool.String(), lines
})

// writeLegacyBenchStore writes n messages in format below dir and returns
// the source and the bytes of its files.
func writeLegacyBenchStore(b *testing.B, dir, format string, n int) (Source, int64) {
	b.Helper()
	pool, lines := benchPool()
	msg := func(i int) []byte { return benchMessage(i, pool, lines) }
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(os.MkdirAll(dir, 0o755))
	var src Source
	switch format {
	case "mbox":
		path := filepath.Join(dir, "Inbox.mbox")
		f, err := os.Create(path)
		must(err)
		w := bufio.NewWriterSize(f, 1<<20)
		for i := range n {
			fmt.Fprintf(w, "From s%d@example.com Sat Jan  1 00:00:00 2005\r\n", i)
			w.Write(msg(i))
			w.WriteString("\r\n")
		}
		must(w.Flush())
		must(f.Close())
		src = Source{Name: "bench", Path: path, Format: archive.FormatMbox}
	case "becky":
		folder := filepath.Join(dir, "4a5b6c7d.mb", "!!!!Inbox")
		must(os.MkdirAll(folder, 0o755))
		must(os.WriteFile(filepath.Join(dir, "4a5b6c7d.mb", "Mailbox.ini"), []byte("[Account]\r\nName=Bench\r\n"), 0o644))
		idx, err := os.Create(filepath.Join(folder, "Folder.idx"))
		must(err)
		iw := bufio.NewWriterSize(idx, 1<<20)
		iw.WriteString("Becky! Folder Index 2.05\r\n")
		var bmf *os.File
		var bw *bufio.Writer
		var off int64
		name := ""
		for i := range n {
			if i%2000 == 0 { // Becky! spreads a folder over several .bmf files
				if bmf != nil {
					must(bw.Flush())
					must(bmf.Close())
				}
				name = fmt.Sprintf("%08x.bmf", 0x5a000000+i/2000)
				bmf, err = os.Create(filepath.Join(folder, name))
				must(err)
				bw, off = bufio.NewWriterSize(bmf, 1<<20), 0
			}
			m := lt.BeckyMsg{Raw: msg(i), Status: lt.BeckyRead}
			stuffed, _ := lt.BeckyBMF([]lt.BeckyMsg{m})
			iw.Write(lt.BeckyIndexLine(name, off, m))
			bw.Write(stuffed)
			off += int64(len(stuffed))
		}
		must(bw.Flush())
		must(bmf.Close())
		must(iw.Flush())
		must(idx.Close())
		src = Source{Name: "bench", Path: dir, Format: archive.FormatBecky}
	case "dbx":
		msgs := make([]lt.DBXMsg, n)
		for i := range msgs {
			msgs[i] = lt.DBXMsg{Raw: msg(i), Flags: lt.DBXRead}
		}
		data, _ := lt.DBXFile(msgs, lt.DBXOptions{})
		must(os.WriteFile(filepath.Join(dir, "Inbox.dbx"), data, 0o644))
		src = Source{Name: "bench", Path: filepath.Join(dir, "Inbox.dbx"), Format: archive.FormatDBX}
	case "applemail":
		box := filepath.Join(dir, "Inbox.mbox", "4E2D2D3B-6C1B-4B8E-9A55-0A1B2C3D4E5F", "Data")
		for i := range n {
			sub := box
			if i >= 1000 {
				sub = filepath.Join(box, strconv.Itoa(i/1000%10), strconv.Itoa(i/10000%10))
			}
			p := filepath.Join(sub, "Messages", strconv.Itoa(i)+".emlx")
			if i == 0 || i%1000 == 0 {
				must(os.MkdirAll(filepath.Dir(p), 0o755))
			}
			must(os.WriteFile(p, lt.EMLX(lf(msg(i)), lt.EMLXRead, time.Time{}), 0o644))
		}
		src = Source{Name: "bench", Path: filepath.Join(dir, "Inbox.mbox"), Format: archive.FormatAppleMail}
	case "wlm":
		inbox := filepath.Join(dir, "Windows Live Mail", "Inbox")
		must(os.MkdirAll(inbox, 0o755))
		must(os.WriteFile(filepath.Join(dir, "Windows Live Mail", "Mail.MSMessageStore"), nil, 0o644))
		for i := range n {
			must(os.WriteFile(filepath.Join(inbox, fmt.Sprintf("{%08X-1A2B-4C3D-8E9F-000000000000}.eml", i)), msg(i), 0o644))
		}
		src = Source{Name: "bench", Path: filepath.Join(dir, "Windows Live Mail"), Format: archive.FormatWLM}
	}
	// Flush the corpus to disk: the index run's fsyncs must not pay for it.
	var size int64
	must(filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, err := d.Info()
			if err == nil {
				size += fi.Size()
			}
			f, err := os.Open(p)
			if err == nil {
				_ = f.Sync()
				f.Close()
			}
		}
		return err
	}))
	runtime.GC()
	debug.FreeOSMemory()
	return src, size
}

// catSpeed reads every file below path (or the file) like cat, twice (the
// first warms the page cache), and returns MB/s of the second.
func catSpeed(b *testing.B, path string) float64 {
	b.Helper()
	root := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		root = filepath.Dir(path)
	}
	buf := make([]byte, 1<<20)
	var total int64
	var el time.Duration
	for range 2 {
		total = 0
		start := time.Now()
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
			f.Close()
			total += n
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		el = time.Since(start)
	}
	return float64(total) / (1 << 20) / el.Seconds()
}

// resetPeakRSS resets VmHWM to the current RSS (Linux; elsewhere a no-op).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads VmHWM in bytes (0 where /proc is missing).
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
