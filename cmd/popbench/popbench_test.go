package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/backend/archive"
)

// TestMain lets the test binary act as the bridge child, as the popbench
// binary does.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(bridgeChild(cfg, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// TestQuickRun runs the whole bench end to end on a tiny corpus and checks
// that every figure of the report is a number with its unit.
func TestQuickRun(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-quick", "-size", "5MB", "-messages", "200", "-sync", "500", "-clients", "10", "-dovecot=off", "-dir", dir}
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("run exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errb)
	}
	report := out.String()
	for _, re := range []string{
		`(?m)^1 +index, [0-9.]+ MB mbox \(cold\) +[0-9,]+ MB/s +cat: [0-9,]+ MB/s +≥ 300 MB/s +(ok|MISSED)`,
		`(?m)^ +[0-9,]+ msg/s`,
		`(?m)^1b +index, 500 small msgs +[0-9,]+ MB/s`,
		`(?m)^2 +first sync, 500 msgs +[0-9.]+ m?s +Dovecot: skipped +≤ Dovecot`,
		`(?m)^2b +BODY\.PEEK\[\], 1 client +[0-9,]+ MB/s`,
		`(?m)^3 +peak RSS, 10 clients +[0-9.]+ [KM]B +idle: [0-9.]+ [KM]B +≤ 100 MB +(ok|MISSED)`,
		`Index: [0-9,]+ messages, [0-9.]+ MB in `,
		`Dovecot not compared: -dovecot=off`,
	} {
		if !regexp.MustCompile(re).MatchString(report) {
			t.Errorf("report does not match %s:\n%s", re, report)
		}
	}
	if strings.Contains(report, "not measured") || strings.Contains(report, "Errors:") {
		t.Errorf("report has unmeasured figures or errors:\n%s", report)
	}
	// Each of the 10 clients fetched every body: 10 × the archive's
	// served bytes.
	m := regexp.MustCompile(`every message of the archive folder: ([0-9.]+) MB in total`).FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no load total in the report:\n%s", report)
	}
	if total, _ := strconv.ParseFloat(m[1], 64); total < 10*4.9 {
		t.Errorf("10 clients fetched %.1f MB in total, want ≥ 10 × the 5 MB archive", total)
	}

	// A second run reuses the corpus kept in -dir.
	out.Reset()
	if code := run(context.Background(), append(args, "-clients", "1"), &out, &errb); code != 0 {
		t.Fatalf("second run exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errb)
	}
	if n := strings.Count(out.String(), ", reused"); n != 2 {
		t.Errorf("second run reused %d corpora, want 2:\n%s", n, &out)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "data-") {
			t.Errorf("data dir %s left behind in -dir", e.Name())
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1GB", 1 << 30, true},
		{"100MB", 100 << 20, true},
		{"5mb", 5 << 20, true},
		{"64MiB", 64 << 20, true},
		{"512KB", 512 << 10, true},
		{"1.5G", 3 << 29, true},
		{"4096", 4096, true},
		{"", 0, false},
		{"-1MB", 0, false},
		{"lots", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestCorpus checks the generator: deterministic per seed, at least the
// requested size and count, sizes within 1 KB–2 MB, ISO-2022-JP and CRLF
// messages present, and every message found by the mbox scanner.
func TestCorpus(t *testing.T) {
	dir := t.TempDir()
	spec := corpusSpec{Seed: 7, Size: 8 << 20, Messages: 300}
	a, err := ensureCorpus(filepath.Join(dir, "a.mbox"), spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ensureCorpus(filepath.Join(dir, "b.mbox"), spec)
	if err != nil {
		t.Fatal(err)
	}
	if sum(t, a.Path) != sum(t, b.Path) {
		t.Errorf("two corpora with seed 7 differ")
	}
	spec.Seed = 8
	c, err := ensureCorpus(filepath.Join(dir, "c.mbox"), spec)
	if err != nil {
		t.Fatal(err)
	}
	if sum(t, a.Path) == sum(t, c.Path) {
		t.Errorf("seeds 7 and 8 gave the same corpus")
	}
	if a.Bytes < spec.Size || a.Messages < spec.Messages || a.Bytes > 2*spec.Size {
		t.Errorf("corpus is %d bytes, %d messages; want ≥ %d bytes (and not twice that), ≥ %d messages", a.Bytes, a.Messages, spec.Size, spec.Messages)
	}
	if a.Min < minSmall || a.Max > maxMessage+maxMessage/8 {
		t.Errorf("message sizes %d–%d, want within %d–%d (plus CRLF growth)", a.Min, a.Max, minSmall, maxMessage)
	}
	if a.Japanese == 0 || a.CRLF == 0 || a.Large == 0 || a.Large > a.Messages/4 {
		t.Errorf("corpus mix: %d ISO-2022-JP, %d CRLF, %d large of %d; want some of each, large a minority", a.Japanese, a.CRLF, a.Large, a.Messages)
	}

	f, err := os.Open(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, jp := 0, 0
	_, probs, err := archive.ScanMbox(f, a.Path, 0, a.Bytes, func(e archive.MboxEntry) error {
		n++
		if bytes.Contains(e.Raw, []byte("charset=ISO-2022-JP")) && bytes.Contains(e.Raw, []byte("\x1b$B")) {
			jp++
		}
		return nil
	})
	if err != nil || len(probs) > 0 {
		t.Fatalf("scan corpus: %v %v", err, probs)
	}
	if n != a.Messages || jp != a.Japanese {
		t.Errorf("scanner found %d messages (%d ISO-2022-JP), generator wrote %d (%d)", n, jp, a.Messages, a.Japanese)
	}

	// The first-sync corpus: only 2–4 KB messages.
	s, err := ensureCorpus(filepath.Join(dir, "s.mbox"), corpusSpec{Seed: 1, Messages: 400, Small: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Messages != 400 || s.Min < 2048 || s.Max > 4096+4096/8 {
		t.Errorf("sync corpus: %d messages of %d–%d bytes, want 400 of 2–4 KB", s.Messages, s.Min, s.Max)
	}

	// Its Maildir for Dovecot holds the served bytes, S= and W= exact.
	md := filepath.Join(dir, "maildir")
	if n, err := writeMaildir(s.Path, md); err != nil || n != 400 {
		t.Fatalf("writeMaildir = %d, %v; want 400", n, err)
	}
	files, _ := os.ReadDir(filepath.Join(md, "cur"))
	if len(files) != 400 {
		t.Fatalf("maildir has %d files, want 400", len(files))
	}
	for _, e := range files[:10] {
		data, err := os.ReadFile(filepath.Join(md, "cur", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		want := ",S=" + strconv.Itoa(len(data)) + ",W=" + strconv.Itoa(len(data)) + ":2,"
		if !strings.Contains(e.Name(), want) || !bytes.HasSuffix(data, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("maildir file %s (%d bytes): want %q in the name and CRLF line ends only", e.Name(), len(data), want)
		}
	}
}

func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
