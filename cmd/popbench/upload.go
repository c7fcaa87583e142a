package main

// The upload section (popbench -upload): issue B's and issue D's
// performance figures, against private Dovecots, directly on loopback and
// through a latency relay (relay.go).
//
//	U1  upload a generated corpus from Local/upload to Dovecot with the
//	    bridge's own upload path (backend.Account.PlanMigration + Migrate
//	    of that one folder: uploadItems, fingerprint dedup, parallel
//	    pipelined APPENDs), beside a plain sequential APPEND loop (one
//	    connection, wait for each OK) with the same messages into another
//	    folder of the same Dovecot; then both through the relay.
//	U2  the same migrate again when everything is already upstream.
//	U3  the first fingerprint sync (SyncRemote on a fresh data dir) of an
//	    upstream folder of -sync messages.
//	U4  migrate a generated multi-folder archive into an empty Dovecot, on
//	    loopback and through the relay, with the migrating process's peak
//	    RSS; each beside a sequential APPEND loop of the same messages.
//
// Every migration runs in a child process (upload_child.go) with a copy of
// a data dir indexed beforehand, as `popbridge migrate` runs after
// `popbridge import`.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/archive"
)

// uploadOptions are the upload section's flags.
type uploadOptions struct {
	enabled     bool
	messages    int   // U1 corpus
	size        int64 // U1 corpus bytes
	migMessages int   // U4 archive
	migSize     int64 // U4 archive bytes
	relay       time.Duration
	conns       []int
	seqSample   int // messages the sequential loops send through the relay (0: all)
	repeat      int // rounds of the loopback pairs (bridge, sequential loop) of U1 and U4
}

// uploadFlags registers the upload flags on fs; the returned function
// finishes them after Parse (quick defaults, validation).
func uploadFlags(fs *flag.FlagSet, u *uploadOptions) func(set map[string]bool, quick bool) error {
	fs.BoolVar(&u.enabled, "upload", false, "run the upload section instead (issue B and D figures): bridge uploads and migrate against private Dovecots, on loopback and through a latency relay")
	fs.IntVar(&u.messages, "upload-messages", 2000, "messages in the upload corpus (-upload)")
	size := fs.String("upload-size", "64MB", "size of the upload corpus (-upload)")
	fs.IntVar(&u.migMessages, "migrate-messages", 5000, "messages in the multi-folder migrate archive (-upload)")
	migSize := fs.String("migrate-size", "256MB", "size of the migrate archive (-upload)")
	relayMS := fs.Float64("relay-ms", 25, "one-way latency the relay adds in each direction, in milliseconds (-upload)")
	conns := fs.String("connections", "4", "upstream max_connections of the bridge; a comma-separated list runs the upload once per value (-upload)")
	fs.IntVar(&u.seqSample, "seq-sample", 200, "the sequential APPEND loops through the relay send every n-th message so that about this many are sent; 0 sends all (-upload)")
	fs.IntVar(&u.repeat, "repeat", 3, "rounds of the loopback pairs (U1: bridge uploads, then the sequential loop; U4: the same on a new Dovecot each round); medians are reported (-upload)")
	return func(set map[string]bool, quick bool) error {
		if quick {
			if !set["upload-messages"] {
				u.messages = 300
			}
			if !set["upload-size"] {
				*size = "4MB"
			}
			if !set["migrate-messages"] {
				u.migMessages = 500
			}
			if !set["migrate-size"] {
				*migSize = "8MB"
			}
			if !set["relay-ms"] {
				*relayMS = 5
			}
			if !set["seq-sample"] {
				u.seqSample = 50
			}
			if !set["repeat"] {
				u.repeat = 1
			}
		}
		var err error
		if u.size, err = parseSize(*size); err != nil {
			return fmt.Errorf("-upload-size: %w", err)
		}
		if u.migSize, err = parseSize(*migSize); err != nil {
			return fmt.Errorf("-migrate-size: %w", err)
		}
		if u.messages < 1 || u.migMessages < 5 || u.seqSample < 0 || u.repeat < 1 {
			return errors.New("-upload-messages and -repeat must be at least 1, -migrate-messages at least 5, -seq-sample not negative")
		}
		if *relayMS < 0 || *relayMS > 1000 {
			return fmt.Errorf("-relay-ms %v: want 0–1000", *relayMS)
		}
		u.relay = time.Duration(*relayMS * float64(time.Millisecond))
		u.conns = nil
		for _, s := range strings.Split(*conns, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 || n > 32 {
				return fmt.Errorf("-connections %q: want numbers 1–32 (max_connections), comma-separated", *conns)
			}
			u.conns = append(u.conns, n)
		}
		return nil
	}
}

// uploadRun is one bridge upload (a migrate child) at one max_connections.
type uploadRun struct {
	conns int
	res   *migrateChildResult
}

// uploadResults is everything the upload report prints; nil or zero
// values were not measured.
type uploadResults struct {
	opts    *options
	workDir string
	kept    bool

	dovecotVersion string
	upCorpus       *corpusStats
	migCorpus      []*corpusStats // per folder
	migFolders     []string       // their legacy names
	migTotal       corpusStats
	syncCorpus     *corpusStats

	loop     []uploadRun // U1 loopback: -repeat rounds of one run per -connections
	loopSeq  []seqResult // U1 loopback sequential loop, one per round
	relay    []uploadRun // U1 through the relay
	relaySeq seqResult

	rerun      *migrateChildResult // U2 loopback
	rerunRelay *migrateChildResult // U2 through the relay

	syncWarm  time.Duration    // Dovecot's own first SELECT of the sync folder
	syncPlain [2]fpFetchResult // a plain client's FETCH of the same items, before and after
	sync      *migrateChildResult

	migLoop     []*migrateChildResult // U4 loopback, one per -repeat round
	migLoopSeq  []seqResult
	migRelay    *migrateChildResult
	migRelaySeq seqResult

	errs []string
}

func (r *uploadResults) fail(what string, err error) {
	r.errs = append(r.errs, fmt.Sprintf("%s: %v", what, err))
}

// migFolderSpec is the U4 archive's layout: a Thunderbird-style mail
// directory (one mbox file per folder, Archives.sbd/ holding subfolders)
// and each folder's share of the messages and bytes.
var migFolderSpec = []struct {
	file  string // path under the archive directory
	name  string // the legacy folder it becomes
	share float64
}{
	{"Inbox", "Local/Inbox", 0.40},
	{"Sent", "Local/Sent", 0.15},
	{"Work", "Local/Work", 0.15},
	{"Archives.sbd/2009", "Local/Archives/2009", 0.15},
	{"Archives.sbd/2010", "Local/Archives/2010", 0.15},
}

// runUpload is popbench -upload: corpora, Dovecots, the four figures,
// the report. work holds the corpora; dataRoot the data dirs.
func runUpload(ctx context.Context, o *options, work string, kept bool, dataRoot string, stdout, stderr io.Writer) int {
	u := &o.up
	r := &uploadResults{opts: o, workDir: work, kept: kept}
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "popbench: "+format+"\n", args...)
	}

	// Corpora.
	var err error
	upPath := filepath.Join(work, fmt.Sprintf("upload-s%d-%d-%d.mbox", o.seed, u.size, u.messages))
	progress("generating upload corpus (%s, ≥ %d messages)", mib(u.size), u.messages)
	if r.upCorpus, err = ensureCorpus(upPath, corpusSpec{Seed: o.seed + 2, Size: u.size, Messages: u.messages}); err != nil {
		fmt.Fprintf(stderr, "popbench: %v\n", err)
		return 1
	}
	migDir := filepath.Join(work, fmt.Sprintf("migrate-s%d-%d-%d", o.seed, u.migSize, u.migMessages))
	progress("generating migrate archive (%s, ≥ %d messages, %d folders)", mib(u.migSize), u.migMessages, len(migFolderSpec))
	for i, f := range migFolderSpec {
		p := filepath.Join(migDir, filepath.FromSlash(f.file))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintf(stderr, "popbench: %v\n", err)
			return 1
		}
		spec := corpusSpec{Seed: o.seed + 10 + uint64(i), Size: int64(f.share * float64(u.migSize)), Messages: max(int(f.share*float64(u.migMessages)+0.5), 1)}
		st, err := ensureCorpus(p, spec)
		if err != nil {
			fmt.Fprintf(stderr, "popbench: %v\n", err)
			return 1
		}
		r.migCorpus = append(r.migCorpus, st)
		r.migFolders = append(r.migFolders, f.name)
		r.migTotal.add(st)
	}
	r.migTotal.Path = migDir
	syncPath := filepath.Join(work, fmt.Sprintf("sync-s%d-%d.mbox", o.seed, o.sync))
	progress("generating first-sync corpus (%d messages)", o.sync)
	if r.syncCorpus, err = ensureCorpus(syncPath, corpusSpec{Seed: o.seed + 1, Messages: o.sync, Small: true}); err != nil {
		fmt.Fprintf(stderr, "popbench: %v\n", err)
		return 1
	}

	bin, ok := dovecotBinary()
	switch {
	case o.dovecot == "off":
		r.fail("upload section", errors.New("needs Dovecot; -dovecot=off"))
	case !ok:
		r.fail("upload section", errNoDovecot)
	}
	if len(r.errs) == 0 {
		if out, err := runOutput(bin, "--version"); err == nil {
			r.dovecotVersion = strings.Fields(out + " ?")[0]
		}
		upSrc := []backend.Source{{Name: "upload", Path: upPath, Format: archive.FormatMbox}}
		migSrc := []backend.Source{{Name: "archive", Path: migDir, Format: archive.FormatThunderbird}}
		steps := []struct {
			what string
			fn   func() error
		}{
			{"U1/U2 upload", func() error { return uploadFigures(ctx, r, upSrc, upPath, dataRoot, progress) }},
			{"U4 migrate", func() error { return migrateFigures(ctx, r, migSrc, migDir, dataRoot, progress) }},
			{"U3 first fingerprint sync", func() error { return syncFigure(ctx, r, syncPath, dataRoot, progress) }},
		}
		for _, s := range steps {
			if ctx.Err() != nil {
				break
			}
			if err := s.fn(); err != nil {
				r.fail(s.what, err)
			}
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "popbench: interrupted")
		return 1
	}
	printUploadReport(stdout, r)
	if len(r.errs) > 0 {
		return 1
	}
	return 0
}

func (c *corpusStats) add(o *corpusStats) {
	if c.Messages == 0 || o.Min < c.Min {
		c.Min = o.Min
	}
	c.Max = max(c.Max, o.Max)
	c.Bytes += o.Bytes
	c.Messages += o.Messages
	c.Large += o.Large
	c.Japanese += o.Japanese
	c.CRLF += o.CRLF
	c.Elapsed += o.Elapsed
	c.Reused = o.Reused
}

// startBenchDovecot starts an empty private Dovecot, or one whose INBOX
// is the given mbox written as Maildir files.
func startBenchDovecot(ctx context.Context, inbox string, progress func(string, ...any)) (*dovecot, func(), error) {
	d, err := newDovecot()
	if err != nil {
		return nil, nil, err
	}
	if inbox != "" {
		progress("writing the first-sync mbox as Dovecot Maildir files")
		if _, err := writeMaildir(inbox, d.maildir()); err != nil {
			d.remove()
			return nil, nil, err
		}
	}
	if err := d.start(); err != nil {
		d.remove()
		return nil, nil, err
	}
	stopKill := context.AfterFunc(ctx, d.stop)
	return d, func() { stopKill(); d.stop(); d.remove() }, nil
}

// indexBase indexes sources once into dir (durable store, as `popbridge
// import`); runs copy its database (dataDirFrom).
func indexBase(ctx context.Context, dir string, sources []backend.Source) error {
	_, err := indexOnce(ctx, dir, sources, "")
	return err
}

// dataDirFrom makes a fresh data dir holding a copy of base's index.
func dataDirFrom(base, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(base, "popbridge.db"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "popbridge.db"), b, 0o600)
}

// childConfig is a migrate child's configuration; with -profile, its CPU
// profile goes to upload-<data dir name>.cpu.pprof.
func (r *uploadResults) childConfig(op, dataDir, addr string, conns int, sources []backend.Source) migrateChildConfig {
	return migrateChildConfig{Op: op, DataDir: dataDir, Sources: sources, Upstream: addr, User: benchUser, Password: benchPass, MaxConnections: conns,
		Profile: r.opts.profilePath("upload-" + filepath.Base(dataDir) + ".cpu.pprof")}
}

// checkCounts compares STATUS MESSAGES of folders with want.
func checkCounts(addr string, want map[string]int) error {
	var names []string
	for n := range want {
		names = append(names, n)
	}
	got, err := folderCounts(addr, names)
	if err != nil {
		return err
	}
	for _, n := range names {
		if got[n] != want[n] {
			return fmt.Errorf("server folder %q holds %d messages, want %d", n, got[n], want[n])
		}
	}
	return nil
}

// sampleEvery is the stride that makes the relayed sequential loop send
// about sample of total messages.
func sampleEvery(total, sample int) int {
	if sample <= 0 || sample >= total {
		return 1
	}
	return (total + sample - 1) / sample
}

// uploadFigures measures U1 and U2 against one Dovecot.
func uploadFigures(ctx context.Context, r *uploadResults, src []backend.Source, mbox, dataRoot string, progress func(string, ...any)) error {
	u := &r.opts.up
	n := r.upCorpus.Messages
	d, stop, err := startBenchDovecot(ctx, "", progress)
	if err != nil {
		return err
	}
	defer stop()
	rl, err := startRelay(d.addr, u.relay)
	if err != nil {
		return err
	}
	defer rl.Close()
	base := filepath.Join(dataRoot, "upload-base")
	progress("indexing the upload corpus")
	if err := indexBase(ctx, base, src); err != nil {
		return err
	}
	run := func(name, addr string, conns int) (*migrateChildResult, string, error) {
		dir := filepath.Join(dataRoot, name)
		if err := dataDirFrom(base, dir); err != nil {
			return nil, dir, err
		}
		target := "Up/" + name
		cfg := r.childConfig("migrate", dir, addr, conns, src)
		cfg.Folders = []string{"Local/upload"}
		cfg.Mapping = map[string]string{"Local/upload": target}
		res, err := runChild(ctx, cfg)
		if err != nil {
			return nil, dir, err
		}
		if res.Uploaded != n || !res.Complete {
			return res, dir, fmt.Errorf("%s: uploaded %d of %d messages (complete=%v, failed %d)", name, res.Uploaded, n, res.Complete, res.Failed)
		}
		return res, dir, checkCounts(d.addr, map[string]int{target: n})
	}
	// Loopback is CPU-bound (Dovecot, the bridge and the loop share the
	// machine): -repeat rounds, alternating, for medians.
	var loopDir, relayDir string
	for round := 1; round <= u.repeat; round++ {
		for _, c := range u.conns {
			progress("U1 bridge upload of %d messages on loopback, max_connections %d (round %d of %d)", n, c, round, u.repeat)
			res, dir, err := run(fmt.Sprintf("bridge-loop-c%d-r%d", c, round), d.addr, c)
			if err != nil {
				return err
			}
			r.loop = append(r.loop, uploadRun{c, res})
			if loopDir == "" {
				loopDir = dir
			}
		}
		progress("U1 sequential APPEND loop of %d messages on loopback (round %d of %d)", n, round, u.repeat)
		folder := fmt.Sprintf("Up/seq-loop-r%d", round)
		seq, err := sequentialAppend(d.addr, []seqJob{{mbox, folder}}, 1)
		if err != nil {
			return err
		}
		if err := checkCounts(d.addr, map[string]int{folder: n}); err != nil {
			return err
		}
		r.loopSeq = append(r.loopSeq, seq)
	}
	for _, c := range u.conns {
		progress("U1 bridge upload of %d messages through the relay (%v each way), max_connections %d", n, u.relay, c)
		res, dir, err := run(fmt.Sprintf("bridge-relay-c%d", c), rl.Addr(), c)
		if err != nil {
			return err
		}
		r.relay = append(r.relay, uploadRun{c, res})
		if relayDir == "" {
			relayDir = dir
		}
	}
	every := sampleEvery(n, u.seqSample)
	progress("U1 sequential APPEND loop through the relay (every %d. message)", every)
	if r.relaySeq, err = sequentialAppend(rl.Addr(), []seqJob{{mbox, "Up/seq-relay"}}, every); err != nil {
		return err
	}
	if err := checkCounts(d.addr, map[string]int{"Up/seq-relay": r.relaySeq.Messages}); err != nil {
		return err
	}

	// U2: the same migrate again; everything is upstream.
	rerun := func(dir, addr string) (*migrateChildResult, error) {
		name := filepath.Base(dir)
		cfg := r.childConfig("migrate", dir, addr, u.conns[0], src)
		cfg.Folders = []string{"Local/upload"}
		cfg.Mapping = map[string]string{"Local/upload": "Up/" + name}
		cfg.Profile = r.opts.profilePath("upload-" + name + "-rerun.cpu.pprof")
		res, err := runChild(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if res.Uploaded != 0 || res.Already != n || !res.Complete {
			return res, fmt.Errorf("re-run: uploaded %d, already there %d of %d (complete=%v)", res.Uploaded, res.Already, n, res.Complete)
		}
		return res, checkCounts(d.addr, map[string]int{"Up/" + name: n})
	}
	progress("U2 re-run of the loopback upload (everything is upstream)")
	if r.rerun, err = rerun(loopDir, d.addr); err != nil {
		return err
	}
	progress("U2 re-run through the relay")
	if r.rerunRelay, err = rerun(relayDir, rl.Addr()); err != nil {
		return err
	}
	return nil
}

// migrateFigures measures U4: the archive into an empty Dovecot on
// loopback (-repeat rounds, a new Dovecot each), then into another through
// the relay, each followed by the sequential loop into Seq/… of the same
// Dovecot.
func migrateFigures(ctx context.Context, r *uploadResults, src []backend.Source, dir, dataRoot string, progress func(string, ...any)) error {
	u := &r.opts.up
	base := filepath.Join(dataRoot, "migrate-base")
	progress("indexing the migrate archive")
	if err := indexBase(ctx, base, src); err != nil {
		return err
	}
	// Where each legacy folder goes (the default mapping, on an empty
	// Dovecot without SPECIAL-USE folders).
	targets := map[string]string{"Local/Inbox": "INBOX", "Local/Sent": "Sent", "Local/Work": "Work", "Local/Archives/2009": "Archives/2009", "Local/Archives/2010": "Archives/2010"}
	one := func(relayed bool, round int) (*migrateChildResult, seqResult, error) {
		var seq seqResult
		d, stop, err := startBenchDovecot(ctx, "", progress)
		if err != nil {
			return nil, seq, err
		}
		defer stop()
		addr, name, every := d.addr, fmt.Sprintf("migrate-loop-r%d", round), 1
		if relayed {
			rl, err := startRelay(d.addr, u.relay)
			if err != nil {
				return nil, seq, err
			}
			defer rl.Close()
			addr, name, every = rl.Addr(), "migrate-relay", sampleEvery(r.migTotal.Messages, u.seqSample)
		}
		ddir := filepath.Join(dataRoot, name)
		if err := dataDirFrom(base, ddir); err != nil {
			return nil, seq, err
		}
		progress("U4 migrate of %d messages in %d folders (%s), max_connections %d", r.migTotal.Messages, len(r.migFolders), name, u.conns[0])
		cfg := r.childConfig("migrate", ddir, addr, u.conns[0], src)
		cfg.Exclusive = true // popbridge migrate without a running bridge
		res, err := runChild(ctx, cfg)
		if err != nil {
			return nil, seq, err
		}
		if res.Uploaded != r.migTotal.Messages || !res.Complete {
			return res, seq, fmt.Errorf("%s: uploaded %d of %d messages (complete=%v, failed %d)", name, res.Uploaded, r.migTotal.Messages, res.Complete, res.Failed)
		}
		want := map[string]int{}
		var jobs []seqJob
		for i, f := range r.migFolders {
			want[targets[f]] = r.migCorpus[i].Messages
			jobs = append(jobs, seqJob{r.migCorpus[i].Path, "Seq/" + targets[f]})
		}
		if err := checkCounts(d.addr, want); err != nil {
			return res, seq, err
		}
		progress("U4 sequential APPEND loop (%s, every %d. message)", name, every)
		if seq, err = sequentialAppend(addr, jobs, every); err != nil {
			return res, seq, err
		}
		return res, seq, nil
	}
	for round := 1; round <= u.repeat; round++ {
		res, seq, err := one(false, round)
		if err != nil {
			return err
		}
		r.migLoop, r.migLoopSeq = append(r.migLoop, res), append(r.migLoopSeq, seq)
	}
	var err error
	r.migRelay, r.migRelaySeq, err = one(true, 1)
	return err
}

// syncFigure measures U3: a Dovecot whose INBOX holds the sync corpus, one
// warm-up SELECT by a plain client (Dovecot builds its index), a plain
// client's FETCH of the items the sync reads (Dovecot parses every message
// for its cache), then a fresh bridge data dir's first SyncRemote of INBOX,
// and the plain FETCH again (now from Dovecot's cache, as the sync had it).
func syncFigure(ctx context.Context, r *uploadResults, syncPath, dataRoot string, progress func(string, ...any)) error {
	d, stop, err := startBenchDovecot(ctx, syncPath, progress)
	if err != nil {
		return err
	}
	defer stop()
	progress("U3 Dovecot's first SELECT of the %d-message INBOX", r.syncCorpus.Messages)
	if r.syncWarm, err = warmSelect(d.addr, "INBOX"); err != nil {
		return err
	}
	progress("U3 plain client: the same FETCH as the sync, Dovecot's cache cold")
	if r.syncPlain[0], err = plainFPFetch(d.addr, "INBOX"); err != nil {
		return err
	}
	progress("U3 first fingerprint sync of INBOX (%d messages) on a fresh data dir", r.syncCorpus.Messages)
	cfg := r.childConfig("sync", filepath.Join(dataRoot, "sync-mirror"), d.addr, r.opts.up.conns[0], nil)
	cfg.SyncFolder = "INBOX"
	if r.sync, err = runChild(ctx, cfg); err != nil {
		return err
	}
	if r.sync.Mirrored != r.syncCorpus.Messages {
		return fmt.Errorf("the mirror of INBOX has %d messages, Dovecot %d", r.sync.Mirrored, r.syncCorpus.Messages)
	}
	progress("U3 plain client again, Dovecot's cache warm")
	if r.syncPlain[1], err = plainFPFetch(d.addr, "INBOX"); err != nil {
		return err
	}
	for _, p := range r.syncPlain {
		if p.Messages != r.syncCorpus.Messages {
			return fmt.Errorf("plain FETCH of INBOX: %d messages, want %d", p.Messages, r.syncCorpus.Messages)
		}
	}
	return nil
}
