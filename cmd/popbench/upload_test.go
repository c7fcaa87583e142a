package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/testenv"
)

// TestUploadQuickRun runs the whole upload section end to end (small
// corpora, 5 ms relay, real Dovecots, migrate children) and checks that
// every figure is printed as a number with its unit.
func TestUploadQuickRun(t *testing.T) {
	testenv.RequireDovecot(t)
	dir := t.TempDir()
	// -quick, made smaller still so the test stays well under 30 s on a
	// busy 2-core machine.
	args := []string{"-upload", "-quick", "-upload-messages", "200", "-upload-size", "3MB", "-migrate-messages", "250", "-migrate-size", "4MB",
		"-sync", "1000", "-connections", "4,2", "-dir", dir}
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("run exited %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errb)
	}
	report := out.String()
	num := `[0-9][0-9,]*`
	ratio := `(ok|MISSED) \([0-9.]+×\)`
	for _, re := range []string{
		`(?m)^U1 +upload 2[0-9]{2} msgs, loopback \(4 conns\) +` + num + ` msg/s +` + num + ` msg/s +≥ 0\.9× seq +` + ratio,
		`(?m)^ +\(2 conns\) +` + num + ` msg/s +` + num + ` msg/s +≥ 0\.9× seq +` + ratio,
		`(?m)^U1r +upload 2[0-9]{2} msgs, relay 5ms \(4 conns\) +` + num + ` msg/s +` + num + ` msg/s +≥ 10× seq +` + ratio,
		`(?m)^ +[0-9.]+ MB/s +[0-9.]+ MB/s`,
		`(?m)^U2 +re-run, 2[0-9]{2} msgs upstream +[0-9.]+ m?s +relay: [0-9.]+ m?s +≤ 300\.0 ms +(ok|MISSED) \([0-9.]+ m?s per 2,000\)`,
		`(?m)^U3 +first fp sync, 1,000 msgs +` + num + ` msg/s`,
		`(?m)^U4 +migrate 2[0-9]{2} msgs, loopback +` + num + ` msg/s +` + num + ` msg/s +≥ 0\.9× seq +` + ratio,
		`(?m)^U4r +migrate 2[0-9]{2} msgs, relay 5ms +` + num + ` msg/s +` + num + ` msg/s +≥ 10× seq +` + ratio,
		`(?m)^U4m +peak RSS of migrate +[0-9.]+ [KM]B +≤ 100 MB +(ok|MISSED)`,
		`5 folders \(4 created\), 2[0-9]{2} messages`,
		`Sequential loop through the relay: every [0-9]+\. message of the corpus, [0-9]+ messages`,
	} {
		if !regexp.MustCompile(re).MatchString(report) {
			t.Errorf("report does not match %s:\n%s", re, report)
		}
	}
	if strings.Contains(report, "not measured") || strings.Contains(report, "Errors:") {
		t.Errorf("report has unmeasured figures or errors:\n%s", report)
	}
}

// TestRelay checks the relay: bytes arrive complete and in order in both
// directions, each way takes at least the configured delay, and a
// half-close goes through after the data.
func TestRelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echo server: copies until EOF, then closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	const delay = 20 * time.Millisecond
	r, err := startRelay(ln.Addr().String(), delay)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// One byte there and back: at least two delays.
	start := time.Now()
	if _, err := c.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(c, one); err != nil || one[0] != 'x' {
		t.Fatalf("echo of one byte: %q, %v", one, err)
	}
	if rtt := time.Since(start); rtt < 2*delay {
		t.Errorf("round trip through the relay took %v, want ≥ %v", rtt, 2*delay)
	}

	// 3 MB in writes of random sizes, then a half-close; the echo must be
	// the same bytes followed by EOF.
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		rest := data
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(200<<10))
			if _, err := c.Write(rest[:n]); err != nil {
				errc <- err
				return
			}
			rest = rest[n:]
		}
		errc <- c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo through the relay: %d bytes, want the %d bytes sent (first difference at %d)", len(got), len(data), firstDiff(got, data))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRelayLoopbackOnly(t *testing.T) {
	for _, target := range []string{"192.0.2.1:143", "example.com:143", "no-port"} {
		if r, err := startRelay(target, time.Millisecond); err == nil {
			r.Close()
			t.Errorf("startRelay(%q) succeeded, want a refusal", target)
		}
	}
}

func TestSampleEvery(t *testing.T) {
	for _, tc := range []struct{ total, sample, want int }{
		{2000, 200, 10},
		{2001, 200, 11},
		{307, 50, 7},
		{100, 200, 1},
		{100, 0, 1},
		{100, 100, 1},
	} {
		if got := sampleEvery(tc.total, tc.sample); got != tc.want {
			t.Errorf("sampleEvery(%d, %d) = %d, want %d", tc.total, tc.sample, got, tc.want)
		}
	}
}

func TestUploadFlags(t *testing.T) {
	o, err := parseFlags([]string{"-upload", "-quick", "-connections", "4, 8"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	u := o.up
	if !u.enabled || u.messages != 300 || u.size != 4<<20 || u.migMessages != 500 || u.relay != 5*time.Millisecond || u.seqSample != 50 || u.repeat != 1 || len(u.conns) != 2 || u.conns[0] != 4 || u.conns[1] != 8 {
		t.Errorf("-upload -quick: %+v", u)
	}
	o, err = parseFlags([]string{"-upload"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if u := o.up; u.messages != 2000 || u.migMessages != 5000 || u.relay != 25*time.Millisecond || u.repeat != 3 || len(u.conns) != 1 || u.conns[0] != 4 {
		t.Errorf("-upload defaults: %+v", u)
	}
	for _, bad := range [][]string{
		{"-upload", "-connections", "0"},
		{"-upload", "-connections", "4,x"},
		{"-upload", "-relay-ms", "-1"},
		{"-upload", "-upload-messages", "0"},
		{"-upload", "-upload-size", "lots"},
		{"-upload", "-repeat", "0"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
