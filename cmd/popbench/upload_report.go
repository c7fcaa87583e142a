package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets (issues B and D, "Performance").
const (
	targetUploadLoopRatio  = 0.9  // bridge ≥ 0.9× the sequential loop on loopback
	targetUploadRelayRatio = 10.0 // bridge ≥ 10× the sequential loop through the relay
	targetRerun            = 300 * time.Millisecond
	targetRerunMessages    = 2000 // the re-run target is for 2,000 messages
)

func (s seqResult) rate() float64 { return perSec(s.Messages, s.Elapsed) }

// migrateRate is Migrate's messages/s and MB/s (the plan not included).
func (m *migrateChildResult) rate() (float64, float64) {
	return perSec(m.Uploaded, m.Migrate), mbps(m.Bytes, m.Migrate)
}

func ratioVerdict(ratio, target float64) string {
	return fmt.Sprintf("%s (%.2f×)", verdict(ratio >= target), ratio)
}

func printUploadReport(w io.Writer, r *uploadResults) {
	o := r.opts
	u := &o.up
	fmt.Fprintf(w, "popbench -upload: popbridge upload and migrate report\n\n")
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
		cpu += ", " + strings.Join(env, " ") + " (the migrate children inherit it)"
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		cpu += ", migrate children at popbridge's 48 MiB soft memory limit"
	}
	fmt.Fprintf(w, "  machine   %s/%s, %d CPUs%s, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, runtime.Version())
	if r.dovecotVersion != "" {
		fmt.Fprintf(w, "  upstream  Dovecot %s (private, Maildir, mail_fsync = never, loopback)\n", r.dovecotVersion)
	}
	fmt.Fprintf(w, "  upload    %s\n", corpusLine(r.upCorpus))
	fmt.Fprintf(w, "  archive   %s in %d folders\n", corpusLine(&r.migTotal), len(r.migFolders))
	fmt.Fprintf(w, "  sync      %s\n", corpusLine(r.syncCorpus))
	where := "removed at exit"
	if r.kept {
		where = "kept"
	}
	fmt.Fprintf(w, "  corpus    seed %d, in %s (%s)\n", o.seed, r.workDir, where)
	fmt.Fprintf(w, "  relay     %s added each way (RTT + %s), loopback TCP relay in the bench process\n", u.relay, 2*u.relay)
	fmt.Fprintf(w, "  units     KB, MB = 2^10, 2^20 bytes; MB/s = 2^20 bytes per second\n\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t") }
	row("#", "figure", "popbridge", "sequential APPEND", "target", "")
	row("-", "------", "---------", "-----------------", "------", "")
	var details []string
	detail := func(format string, args ...any) { details = append(details, fmt.Sprintf(format, args...)) }

	// U1.
	n := 0
	if r.upCorpus != nil {
		n = r.upCorpus.Messages
	}
	uploadRows := func(id, where string, runs []uploadRun, seqs []seqResult, target float64) {
		label := fmt.Sprintf("upload %s msgs, %s", group(int64(n)), where)
		if len(runs) == 0 || len(seqs) == 0 || seqs[0].Messages == 0 {
			row(id, label, "not measured", "", fmt.Sprintf("≥ %g× seq", target), "")
			return
		}
		var seqRates, seqMB []float64
		for _, s := range seqs {
			seqRates = append(seqRates, s.rate())
			seqMB = append(seqMB, mbps(s.Bytes, s.Elapsed))
		}
		seqRate := median(seqRates)
		for _, c := range connsOf(runs) {
			var rates, mbs, ratios []float64
			for i, run := range runsWith(runs, c) {
				msgs, mb := run.res.rate()
				rates, mbs = append(rates, msgs), append(mbs, mb)
				if i < len(seqRates) {
					ratios = append(ratios, msgs/seqRates[i])
				}
			}
			status := ratioVerdict(median(rates)/seqRate, target)
			if len(ratios) > 1 {
				status += fmt.Sprintf(", rounds %.2f–%.2f×", minOf(ratios), maxOf(ratios))
			}
			row(id, label+fmt.Sprintf(" (%d conns)", c), fmt.Sprintf("%s msg/s", group(int64(median(rates)))), fmt.Sprintf("%s msg/s", group(int64(seqRate))), fmt.Sprintf("≥ %g× seq", target), status)
			row("", "", fmt.Sprintf("%.1f MB/s", median(mbs)), fmt.Sprintf("%.1f MB/s", median(seqMB)), "", "")
			id, label = "", ""
		}
	}
	uploadRows("U1", "loopback", r.loop, r.loopSeq, targetUploadLoopRatio)
	uploadRows("U1r", fmt.Sprintf("relay %s", u.relay), r.relay, []seqResult{r.relaySeq}, targetUploadRelayRatio)
	if len(r.loopSeq) > 1 {
		detail("U1  Loopback: %d rounds, each the bridge uploads (one per -connections value) and then the sequential loop;", len(r.loopSeq))
		detail("    the table shows medians, the verdict the ratio of medians and the range of the per-round ratios.")
	}
	for _, run := range r.loop {
		m := run.res
		msgs, mb := m.rate()
		detail("U1  Loopback, max_connections %d: PlanMigration %s, Migrate %s for %s messages, %s (%s msg/s, %.1f MB/s;",
			run.conns, secs(m.Plan), secs(m.Migrate), group(int64(m.Uploaded)), mib(m.Bytes), group(int64(msgs)), mb)
		detail("    plan + migrate %s msg/s). Migrating process: peak RSS %s, Go heap %s.",
			group(int64(perSec(m.Uploaded, m.Plan+m.Migrate))), mib(m.Mem.PeakRSS), mib(m.Mem.PeakHeap))
	}
	for _, s := range r.loopSeq {
		detail("    Sequential loop: %s messages, %s in %s (%s msg/s).", group(int64(s.Messages)), mib(s.Bytes), secs(s.Elapsed), group(int64(s.rate())))
	}
	for _, run := range r.relay {
		m := run.res
		msgs, mb := m.rate()
		detail("U1r Relay, max_connections %d: PlanMigration %s, Migrate %s (%s msg/s, %.1f MB/s); peak RSS %s.",
			run.conns, secs(m.Plan), secs(m.Migrate), group(int64(msgs)), mb, mib(m.Mem.PeakRSS))
	}
	if s := r.relaySeq; s.Messages > 0 {
		detail("    Sequential loop through the relay: every %d. message of the corpus, %s messages, %s in %s (%.1f msg/s).",
			s.Every, group(int64(s.Messages)), mib(s.Bytes), secs(s.Elapsed), s.rate())
	}

	// U2.
	if m := r.rerun; m != nil {
		total := m.Plan + m.Migrate
		// The target is for 2,000 messages; scale a smaller corpus up.
		scaled := time.Duration(float64(total) * float64(targetRerunMessages) / float64(max(m.Already, 1)))
		fig := secs(total)
		status := verdict(scaled <= targetRerun)
		if m.Already != targetRerunMessages {
			status += fmt.Sprintf(" (%s per 2,000)", secs(scaled))
		}
		ref := ""
		if rr := r.rerunRelay; rr != nil {
			ref = "relay: " + secs(rr.Plan+rr.Migrate)
		}
		row("U2", fmt.Sprintf("re-run, %s msgs upstream", group(int64(m.Already))), fig, ref, fmt.Sprintf("≤ %s", secs(targetRerun)), status)
		detail("U2  Re-run (new process, same data dir, everything already upstream): Index %s (not counted), PlanMigration %s,", secs(m.Index), secs(m.Plan))
		detail("    Migrate %s, uploaded %d, already there %s.", secs(m.Migrate), m.Uploaded, group(int64(m.Already)))
		if rr := r.rerunRelay; rr != nil {
			detail("    Through the relay: PlanMigration %s, Migrate %s.", secs(rr.Plan), secs(rr.Migrate))
		}
	} else {
		row("U2", "re-run, all upstream", "not measured", "", fmt.Sprintf("≤ %s", secs(targetRerun)), "")
	}

	// U3.
	if m := r.sync; m != nil {
		ref := ""
		if p := r.syncPlain[1]; p.Messages > 0 {
			ref = fmt.Sprintf("plain FETCH: %s msg/s", group(int64(perSec(p.Messages, p.Elapsed))))
		}
		row("U3", fmt.Sprintf("first fp sync, %s msgs", group(int64(m.Mirrored))), fmt.Sprintf("%s msg/s", group(int64(perSec(m.Mirrored, m.Sync)))), ref, "", "")
		detail("U3  First fingerprint sync of an upstream INBOX of %s messages on a fresh data dir (SyncRemote: SELECT, UID FETCH 1:*", group(int64(m.Mirrored)))
		detail("    UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (…)], into the store): %s. A second", secs(m.Sync))
		detail("    SyncRemote (nothing new: the flags sweep) %s. Dovecot's own first SELECT of the new Maildir (not counted): %s.", secs(m.Resync), secs(r.syncWarm))
		detail("    Syncing process: peak RSS %s (anonymous %s, file-backed %s: bbolt's mmap), Go heap %s.", mib(m.Mem.PeakRSS), mib(m.Mem.PeakAnon), mib(m.Mem.PeakFile), mib(m.Mem.PeakHeap))
		if p := r.syncPlain; p[0].Messages > 0 && p[1].Messages > 0 {
			detail("    A plain client's SELECT + the same UID FETCH 1:*, responses read and dropped: %s before the sync (Dovecot's", secs(p[0].Elapsed))
			detail("    cache cold: it parses every message), %s after it (cache warm, as the sync found it; the reference).", secs(p[1].Elapsed))
		}
	} else {
		row("U3", "first fp sync", "not measured", "", "", "")
	}

	// U4.
	migRow := func(id, where string, ms []*migrateChildResult, seqs []seqResult, target float64) {
		label := fmt.Sprintf("migrate %s msgs, %s", group(int64(r.migTotal.Messages)), where)
		if len(ms) == 0 || len(seqs) == 0 || seqs[0].Messages == 0 {
			row(id, label, "not measured", "", fmt.Sprintf("≥ %g× seq", target), "")
			return
		}
		var rates, mbs, seqRates, seqMB, ratios []float64
		for i, m := range ms {
			msgs, mb := m.rate()
			rates, mbs = append(rates, msgs), append(mbs, mb)
			if i < len(seqs) {
				seqRates = append(seqRates, seqs[i].rate())
				seqMB = append(seqMB, mbps(seqs[i].Bytes, seqs[i].Elapsed))
				ratios = append(ratios, msgs/seqs[i].rate())
			}
		}
		status := ratioVerdict(median(rates)/median(seqRates), target)
		if len(ratios) > 1 {
			status += fmt.Sprintf(", rounds %.2f–%.2f×", minOf(ratios), maxOf(ratios))
		}
		row(id, label, fmt.Sprintf("%s msg/s", group(int64(median(rates)))), fmt.Sprintf("%s msg/s", group(int64(median(seqRates)))), fmt.Sprintf("≥ %g× seq", target), status)
		row("", "", fmt.Sprintf("%.1f MB/s", median(mbs)), fmt.Sprintf("%.1f MB/s", median(seqMB)), "", "")
	}
	migRow("U4", "loopback", r.migLoop, r.migLoopSeq, targetUploadLoopRatio)
	var relayRuns []*migrateChildResult
	if r.migRelay != nil {
		relayRuns = append(relayRuns, r.migRelay)
	}
	migRow("U4r", fmt.Sprintf("relay %s", u.relay), relayRuns, []seqResult{r.migRelaySeq}, targetUploadRelayRatio)
	var peak int64
	for _, m := range append(slices.Clone(r.migLoop), relayRuns...) {
		peak = max(peak, m.Mem.PeakRSS)
	}
	if peak > 0 {
		row("U4m", "peak RSS of migrate", mib(peak), "", fmt.Sprintf("≤ %d MB", targetPeakRSS>>20), verdict(peak <= targetPeakRSS))
	} else {
		row("U4m", "peak RSS of migrate", "not measured", "", fmt.Sprintf("≤ %d MB", targetPeakRSS>>20), "")
	}
	type migRun struct {
		name string
		m    *migrateChildResult
		seq  seqResult
	}
	var migRuns []migRun
	for i, m := range r.migLoop {
		name := "loopback"
		if len(r.migLoop) > 1 {
			name = fmt.Sprintf("loopback (round %d)", i+1)
		}
		migRuns = append(migRuns, migRun{name, m, r.migLoopSeq[i]})
	}
	if r.migRelay != nil {
		migRuns = append(migRuns, migRun{"relay", r.migRelay, r.migRelaySeq})
	}
	if len(r.migLoop) > 1 {
		detail("U4  Loopback: %d rounds, each on a new Dovecot: the bridge migrates, then the sequential loop; medians as for U1.", len(r.migLoop))
	}
	for _, x := range migRuns {
		m := x.m
		msgs, mb := m.rate()
		detail("U4  %s, max_connections %d: %d folders (%d created), %s messages, %s. Index %s, PlanMigration %s, Migrate %s",
			x.name, o.up.conns[0], m.Folders, m.Create, group(int64(m.Uploaded)), mib(m.Bytes), secs(m.Index), secs(m.Plan), secs(m.Migrate))
		detail("    (%s msg/s, %.1f MB/s). Peak RSS (%s) %s: anonymous %s, file-backed %s, Go heap %s.",
			group(int64(msgs)), mb, m.Mem.Source, mib(m.Mem.PeakRSS), mib(m.Mem.PeakAnon), mib(m.Mem.PeakFile), mib(m.Mem.PeakHeap))
		if s := x.seq; s.Messages > 0 {
			detail("    Sequential loop into Seq/… of the same Dovecot: every %d. message, %s messages, %s in %s (%s msg/s).", s.Every, group(int64(s.Messages)), mib(s.Bytes), secs(s.Elapsed), group(int64(s.rate())))
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n")
	for _, d := range details {
		fmt.Fprintln(w, d)
	}
	fmt.Fprintf(w, "\nHow: each bridge figure is backend.Account.PlanMigration + Migrate (the upload path a COPY from Local/… uses:\n")
	fmt.Fprintf(w, "uploadItems, fingerprint dedup, parallel pipelined APPENDs) in a child process that opens a copy of a data dir\n")
	fmt.Fprintf(w, "indexed beforehand (durable store), as `popbridge migrate` does; rates are over Migrate, the plan is shown apart.\n")
	fmt.Fprintf(w, "The sequential loop is one imapclient connection sending APPEND (same bytes, flags, INTERNALDATE) and waiting\n")
	fmt.Fprintf(w, "for each tagged OK. Every upload is checked with STATUS on the server. Missed targets are reported, not fatal.\n")
	fmt.Fprintf(w, "U1 uploads as a drag inside the bridge does: on max_connections-1 connections (one stays free for clients).\n")
	fmt.Fprintf(w, "U4 uploads as `popbridge migrate` without a running bridge does: on all max_connections connections.\n")
	if len(r.errs) > 0 {
		fmt.Fprintf(w, "\nErrors:\n")
		for _, e := range r.errs {
			fmt.Fprintf(w, "  - %s\n", e)
		}
	}
}

// connsOf lists the max_connections values of runs in first-seen order.
func connsOf(runs []uploadRun) []int {
	var out []int
	seen := map[int]bool{}
	for _, r := range runs {
		if !seen[r.conns] {
			seen[r.conns] = true
			out = append(out, r.conns)
		}
	}
	return out
}

func runsWith(runs []uploadRun, conns int) []uploadRun {
	var out []uploadRun
	for _, r := range runs {
		if r.conns == conns {
			out = append(out, r)
		}
	}
	return out
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(xs []float64) float64 { return slices.Min(xs) }
func maxOf(xs []float64) float64 { return slices.Max(xs) }
