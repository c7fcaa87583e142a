package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets (README "Performance").
const (
	targetIndexMBps = 300.0
	targetPeakRSS   = 100 << 20
)

func mib(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / (1 << 20) / d.Seconds()
}

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// group formats n with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func secs(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func runOutput(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).Output()
	return strings.TrimSpace(string(out)), err
}

func corpusLine(c *corpusStats) string {
	s := fmt.Sprintf("%s, %s messages (%s–%s", mib(c.Bytes), group(int64(c.Messages)), mib(c.Min), mib(c.Max))
	if c.Large > 0 {
		s += fmt.Sprintf("; %s over 100 KB with base64 attachments", group(int64(c.Large)))
	}
	s += fmt.Sprintf("; %s ISO-2022-JP; %s CRLF)", group(int64(c.Japanese)), group(int64(c.CRLF)))
	if c.Reused {
		s += ", reused"
	} else {
		s += ", generated in " + secs(c.Elapsed)
	}
	return s
}

func printReport(w io.Writer, r *results) {
	o := r.opts
	fmt.Fprintf(w, "popbench: popbridge performance report\n\n")
	cpu := cpuModel()
	if cpu != "" {
		cpu = ", " + cpu
	}
	var env []string
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if len(env) > 0 {
		cpu += ", " + strings.Join(env, " ")
	}
	fmt.Fprintf(w, "  machine  %s/%s, %d CPUs%s, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, runtime.Version())
	fmt.Fprintf(w, "  archive  %s\n", corpusLine(r.archive))
	fmt.Fprintf(w, "  sync     %s\n", corpusLine(r.syncCorpus))
	where := "removed at exit"
	if r.kept {
		where = "kept"
	}
	fmt.Fprintf(w, "  corpus   seed %d, in %s (%s)\n", o.seed, r.workDir, where)
	fmt.Fprintf(w, "  units    KB, MB, GB = 2^10, 2^20, 2^30 bytes; MB/s = 2^20 bytes per second\n\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t") }
	row("#", "figure", "popbridge", "reference", "target", "")
	row("-", "------", "---------", "---------", "------", "")
	var details []string
	detail := func(format string, args ...any) { details = append(details, fmt.Sprintf(format, args...)) }

	// 1. Indexing.
	if ix := r.index; ix != nil {
		rate := mbps(ix.Bytes, ix.Elapsed)
		ref := ""
		if r.cat > 0 {
			ref = fmt.Sprintf("cat: %s MB/s", group(int64(mbps(r.archive.Bytes, r.cat))))
		}
		row("1", fmt.Sprintf("index, %s mbox (cold)", mib(r.archive.Bytes)), fmt.Sprintf("%s MB/s", group(int64(rate))), ref, fmt.Sprintf("≥ %.0f MB/s", targetIndexMBps), verdict(rate >= targetIndexMBps))
		row("", "", fmt.Sprintf("%s msg/s", group(int64(perSec(int(ix.Messages), ix.Elapsed)))), "", "", "")
		detail("1   Index: %s messages, %s in %s with a fresh data dir and the default durable store (fsync per commit),", group(ix.Messages), mib(ix.Bytes), secs(ix.Elapsed))
		detail("    the mbox already in the page cache. Reading the same file with io.Copy to io.Discard (after one warm-up")
		detail("    read) takes %s: indexing takes %.1f× as long as cat > /dev/null.", secs(r.cat), ix.Elapsed.Seconds()/max(r.cat.Seconds(), 1e-9))
	} else {
		row("1", "index", "not measured", "", fmt.Sprintf("≥ %.0f MB/s", targetIndexMBps), "")
	}
	if ix := r.syncIndex; ix != nil {
		row("1b", fmt.Sprintf("index, %s small msgs", group(ix.Messages)), fmt.Sprintf("%.0f MB/s", mbps(ix.Bytes, ix.Elapsed)), "", "", "")
		row("", "", fmt.Sprintf("%s msg/s", group(int64(perSec(int(ix.Messages), ix.Elapsed)))), "", "", "")
		detail("1b  Index of the first-sync mbox (%s, 2–4 KB messages): %s.", mib(ix.Bytes), secs(ix.Elapsed))
	}

	// 2. First sync.
	bs, ds := r.bridgeSync, r.dovecotSync
	if bs[0].Messages > 0 {
		ref, status := "", ""
		switch {
		case ds[0].Messages > 0:
			ratio := bs[0].Fetch.Seconds() / ds[0].Fetch.Seconds()
			ref = fmt.Sprintf("Dovecot: %s", secs(ds[0].Fetch))
			status = fmt.Sprintf("%s (%.2f×)", verdict(ratio <= 1), ratio)
		case r.dovecotSkip != "":
			ref = "Dovecot: skipped"
		default:
			ref = "Dovecot: failed"
		}
		row("2", fmt.Sprintf("first sync, %s msgs", group(int64(bs[0].Messages))), secs(bs[0].Fetch), ref, "≤ Dovecot", status)
		row("", "", fmt.Sprintf("%s msg/s", group(int64(perSec(bs[0].Messages, bs[0].Fetch)))), "", "", "")
		detail("2   First full sync: a new connection, LOGIN, SELECT (%s), then UID FETCH 1:* (UID FLAGS INTERNALDATE", secs(bs[0].Select))
		detail("    RFC822.SIZE ENVELOPE) consumed as it streams: %s. Again on a second connection: %s.", secs(bs[0].Fetch), secs(bs[1].Fetch))
		detail("    One warm-up SELECT came first (it loads the folder into the bridge's memory: %s).", secs(r.bridgeSelectUp))
		switch {
		case ds[0].Messages > 0:
			detail("    Dovecot %s, same messages as Maildir files: SELECT %s, FETCH %s, again %s; its warm-up", r.dovecotVersion, secs(ds[0].Select), secs(ds[0].Fetch), secs(ds[1].Fetch))
			detail("    SELECT (indexing the new Maildir) took %s. popbridge/Dovecot = %.2f for the first FETCH.", secs(r.dovecotWarm), bs[0].Fetch.Seconds()/ds[0].Fetch.Seconds())
		case r.dovecotSkip != "":
			detail("    Dovecot not compared: %s.", r.dovecotSkip)
		}
	} else {
		row("2", "first sync", "not measured", "", "≤ Dovecot", "")
	}
	if s := r.stream; s.Messages > 0 {
		row("2b", "BODY.PEEK[], 1 client", fmt.Sprintf("%.0f MB/s", mbps(s.Bytes, s.Elapsed)), "", "", "")
		detail("2b  One client, UID FETCH 1:* BODY.PEEK[] over the archive folder: %s messages, %s in %s (%s msg/s).", group(int64(s.Messages)), mib(s.Bytes), secs(s.Elapsed), group(int64(perSec(s.Messages, s.Elapsed))))
	}

	// 3. Peak RSS.
	if m := r.loadMem; m.PeakRSS > 0 {
		row("3", fmt.Sprintf("peak RSS, %d clients", r.load.Clients), mib(m.PeakRSS), fmt.Sprintf("idle: %s", mib(r.idleMem.PeakRSS)), fmt.Sprintf("≤ %d MB", targetPeakRSS>>20), verdict(m.PeakRSS <= targetPeakRSS))
		detail("3   Peak RSS (%s) of the bridge process alone (the clients run in another process) while %d clients at", m.Source, r.load.Clients)
		detail("    once each fetch the list and then BODY.PEEK[] of every message of the archive folder: %s in total,", mib(r.load.Bytes))
		detail("    %s, %.0f MB/s (slowest client %s). Sampled every 10 ms: anonymous %s, file-backed %s", secs(r.load.Elapsed), mbps(r.load.Bytes, r.load.Elapsed), secs(r.load.Slowest), mib(m.PeakAnon), mib(m.PeakFile))
		detail("    (the binary and bbolt's mmap; reclaimable), Go heap objects %s. Just after start-up: %s.", mib(m.PeakHeap), mib(r.idleMem.PeakRSS))
	} else {
		row("3", "peak RSS", "not measured", "", fmt.Sprintf("≤ %d MB", targetPeakRSS>>20), "")
	}
	tw.Flush()
	fmt.Fprintf(w, "\n")
	for _, d := range details {
		fmt.Fprintln(w, d)
	}

	fmt.Fprintf(w, "\nHow: the bridge serves from a child process through the real front door (package server, LOGIN over loopback),\n")
	fmt.Fprintf(w, "as `popbridge serve` would after `popbridge import`; clients are go-imap v2 imapclient, consuming FETCH\n")
	fmt.Fprintf(w, "responses as they stream. Dovecot gets the same messages as Maildir files (the bytes popbridge serves)\n")
	fmt.Fprintf(w, "and one warm-up SELECT, like the bridge. Missed targets are reported, not fatal.\n")
	if len(r.errs) > 0 {
		fmt.Fprintf(w, "\nErrors:\n")
		for _, e := range r.errs {
			fmt.Fprintf(w, "  - %s\n", e)
		}
	}
}
