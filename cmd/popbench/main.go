// Command popbench measures popbridge against its performance targets on a
// generated corpus and prints a report:
//
//  1. indexing throughput of a ~1 GB mbox (a cold `popbridge import`),
//     beside the time to merely read the same file from the page cache;
//  2. a client's first full sync of a 100k-message folder (UID FETCH 1:*
//     of UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE), against a private
//     Dovecot serving the same messages when one is installed, and
//     BODY.PEEK[] streaming over the 1 GB folder;
//  3. the bridge's peak RSS while 10 clients at once fetch the list and
//     every body of the 1 GB folder.
//
// Usage:
//
//	go run ./cmd/popbench [-dir DIR] [-size 1GB] [-messages 20000]
//	    [-sync 100000] [-clients 10] [-dovecot=auto|off] [-seed 1] [-quick]
//
// With -upload, popbench measures the upload and migrate figures instead
// (upload.go): [-upload-messages 2000] [-upload-size 64MB]
// [-migrate-messages 5000] [-migrate-size 256MB] [-sync 100000]
// [-relay-ms 25] [-connections 4[,8]] [-seq-sample 200].
//
// The corpus is generated (deterministically from -seed) in a temporary
// directory removed at exit, or in -dir, where it is kept and reused by
// later runs with the same parameters. Index data directories are always
// fresh. The bridge runs in a child process (this binary re-executed) so
// that its RSS is measured alone, and serves through the real front door
// (package server) as `popbridge serve` does. Progress goes to stderr, the
// report to stdout. The exit status is 0 when every measurement ran, missed
// targets included (it is a report), 1 when one failed, 2 on bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/archive"
	"github.com/popbridge/popbridge/store"
)

func main() {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(bridgeChild(cfg, os.Stdin, os.Stdout))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	dir      string
	size     int64
	messages int
	sync     int
	clients  int
	dovecot  string
	seed     uint64
	profile  string // directory for pprof profiles; "" for none
	up       uploadOptions
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("popbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: popbench [-dir DIR] [-size 1GB] [-messages 20000] [-sync 100000] [-clients 10] [-dovecot=auto|off] [-seed 1] [-quick]\n       popbench -upload [-upload-messages 2000] [-migrate-messages 5000] [-sync 100000] [-relay-ms 25] [-connections 4,8] [-quick]\n\n")
		fs.PrintDefaults()
	}
	o := &options{}
	size := fs.String("size", "1GB", "size of the generated archive mbox (KB, MB, GB are powers of 1024)")
	fs.StringVar(&o.dir, "dir", "", "keep the generated corpus in `DIR` and reuse it on later runs (default: a temporary directory, removed at exit)")
	fs.IntVar(&o.messages, "messages", 20000, "minimum number of messages in the archive mbox")
	fs.IntVar(&o.sync, "sync", 100000, "messages in the first-sync folder")
	fs.IntVar(&o.clients, "clients", 10, "concurrent clients for the peak-RSS run")
	fs.StringVar(&o.dovecot, "dovecot", "auto", "compare with a private Dovecot: auto (when installed) or off")
	fs.Uint64Var(&o.seed, "seed", 1, "corpus seed")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of the index runs and of each bridge child, and heap profiles of the bridge at the end of each phase, into `DIR`")
	finishUpload := uploadFlags(fs, &o.up)
	quick := fs.Bool("quick", false, "smoke run: -size 100MB -messages 2000 -sync 10000 unless given (with -upload: -upload-messages 300 -upload-size 4MB -migrate-messages 500 -migrate-size 8MB -relay-ms 5 -seq-sample 50)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := finishUpload(set, *quick); err != nil {
		return nil, err
	}
	if *quick {
		if !set["size"] {
			*size = "100MB"
		}
		if !set["messages"] {
			o.messages = 2000
		}
		if !set["sync"] {
			o.sync = 10000
		}
	}
	var err error
	if o.size, err = parseSize(*size); err != nil {
		return nil, fmt.Errorf("-size: %w", err)
	}
	if o.messages < 1 || o.sync < 1 || o.clients < 1 {
		return nil, errors.New("-messages, -sync and -clients must be at least 1")
	}
	if o.dovecot != "auto" && o.dovecot != "off" {
		return nil, fmt.Errorf("-dovecot=%q: want auto or off", o.dovecot)
	}
	if o.profile != "" {
		if o.profile, err = filepath.Abs(o.profile); err == nil {
			err = os.MkdirAll(o.profile, 0o755)
		}
		if err != nil {
			return nil, fmt.Errorf("-profile: %w", err)
		}
	}
	return o, nil
}

func (o *options) profilePath(name string) string {
	if o.profile == "" {
		return ""
	}
	return filepath.Join(o.profile, name)
}

// parseSize reads "1GB", "100MB", "512KB", "5MiB" or a byte count.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%q is not a size like 1GB or 100MB", s)
	}
	return int64(f * float64(mult)), nil
}

// results is everything the report prints; zero values were not measured.
type results struct {
	opts    *options
	workDir string
	kept    bool

	archive, syncCorpus *corpusStats

	catWarm, cat   time.Duration
	index          *backend.IndexReport
	syncIndex      *backend.IndexReport
	bridgeSelectUp time.Duration // warm-up SELECT (loads the folder)
	bridgeSync     [2]metaResult
	dovecotVersion string
	dovecotSkip    string // why Dovecot was not compared
	dovecotWarm    time.Duration
	dovecotSync    [2]metaResult
	stream         bodyResult
	load           loadResult
	idleMem        memReport
	loadMem        memReport

	errs []string
}

func (r *results) fail(what string, err error) {
	r.errs = append(r.errs, fmt.Sprintf("%s: %v", what, err))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "popbench: %v\n", err)
		return 2
	}
	r := &results{opts: o}
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "popbench: "+format+"\n", args...)
	}

	work := o.dir
	if work == "" {
		if work, err = os.MkdirTemp("", "popbench-"); err != nil {
			fmt.Fprintf(stderr, "popbench: %v\n", err)
			return 1
		}
		defer os.RemoveAll(work)
	} else {
		if err := os.MkdirAll(work, 0o755); err != nil {
			fmt.Fprintf(stderr, "popbench: -dir: %v\n", err)
			return 1
		}
		r.kept = true
	}
	if work, err = filepath.Abs(work); err != nil {
		fmt.Fprintf(stderr, "popbench: %v\n", err)
		return 1
	}
	r.workDir = work
	dataRoot, err := os.MkdirTemp(work, "data-")
	if err != nil {
		fmt.Fprintf(stderr, "popbench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dataRoot)
	if o.up.enabled {
		return runUpload(ctx, o, work, r.kept, dataRoot, stdout, stderr)
	}

	// Corpora.
	archivePath := filepath.Join(work, fmt.Sprintf("archive-s%d-%d-%d.mbox", o.seed, o.size, o.messages))
	progress("generating archive mbox (%s, ≥ %d messages) in %s", mib(o.size), o.messages, work)
	r.archive, err = ensureCorpus(archivePath, corpusSpec{Seed: o.seed, Size: o.size, Messages: o.messages})
	if err != nil {
		fmt.Fprintf(stderr, "popbench: %v\n", err)
		return 1
	}
	syncPath := filepath.Join(work, fmt.Sprintf("sync-s%d-%d.mbox", o.seed, o.sync))
	progress("generating first-sync mbox (%d messages)", o.sync)
	r.syncCorpus, err = ensureCorpus(syncPath, corpusSpec{Seed: o.seed + 1, Messages: o.sync, Small: true})
	if err != nil {
		fmt.Fprintf(stderr, "popbench: %v\n", err)
		return 1
	}
	if ctx.Err() != nil {
		return 1
	}

	// 1. Index throughput beside a plain read.
	progress("reading archive mbox from the page cache")
	if r.catWarm, err = readAll(archivePath); err == nil {
		r.cat, err = readAll(archivePath)
	}
	if err != nil {
		r.fail("read archive", err)
	}
	bigSrc := []backend.Source{{Name: "archive", Path: archivePath, Format: archive.FormatMbox}}
	bigData := filepath.Join(dataRoot, "archive")
	progress("indexing archive mbox (fresh data dir, durable store)")
	if r.index, err = indexOnce(ctx, bigData, bigSrc, o.profilePath("index-archive.cpu.pprof")); err != nil {
		r.fail("index archive", err)
	}
	syncSrc := []backend.Source{{Name: "sync", Path: syncPath, Format: archive.FormatMbox}}
	syncData := filepath.Join(dataRoot, "sync")
	progress("indexing first-sync mbox")
	if r.syncIndex, err = indexOnce(ctx, syncData, syncSrc, o.profilePath("index-sync.cpu.pprof")); err != nil {
		r.fail("index first-sync mbox", err)
	}

	// 2. First full sync, popbridge then Dovecot.
	if ctx.Err() == nil && r.syncIndex != nil {
		progress("first full sync of %d messages from popbridge", o.sync)
		if err := bridgeSync(ctx, r, syncData, syncSrc); err != nil {
			r.fail("first sync (popbridge)", err)
		}
	}
	if ctx.Err() == nil {
		if err := dovecotSync(ctx, r, syncPath, progress); err != nil {
			r.fail("first sync (Dovecot)", err)
		}
	}

	// 2b and 3. Streaming bodies, then the peak RSS under load.
	if ctx.Err() == nil && r.index != nil {
		progress("BODY.PEEK[] of every message of the archive, 1 client")
		if err := bridgeStream(ctx, r, bigData, bigSrc); err != nil {
			r.fail("body streaming", err)
		}
	}
	if ctx.Err() == nil && r.index != nil {
		progress("%d concurrent clients: list + BODY.PEEK[] of every message", o.clients)
		if err := bridgeLoad(ctx, r, bigData, bigSrc); err != nil {
			r.fail("concurrent clients", err)
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "popbench: interrupted")
		return 1
	}
	printReport(stdout, r)
	if len(r.errs) > 0 {
		return 1
	}
	return 0
}

// readAll reads path to the end (io.Copy to io.Discard): `cat > /dev/null`.
func readAll(path string) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// indexOnce is a cold `popbridge import`: a fresh data dir, the default
// (durable) store, one Index run.
func indexOnce(ctx context.Context, dataDir string, sources []backend.Source, profile string) (*backend.IndexReport, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	db, acct, err := openAccount(dataDir, sources, store.Options{})
	if err != nil {
		return nil, err
	}
	if profile != "" {
		stop, err := startCPUProfile(profile)
		if err != nil {
			db.Close()
			return nil, err
		}
		defer stop()
	}
	rep, err := acct.Index(ctx, nil)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("%d problems, first: %s", len(rep.Problems), rep.Problems[0])
	}
	return rep, nil
}

// withBridge runs fn against a fresh bridge child serving dataDir; the
// child is killed if ctx ends first.
func withBridge(ctx context.Context, r *results, phase, dataDir string, sources []backend.Source, fn func(p *bridgeProc) error) error {
	profile := ""
	if r.opts.profile != "" {
		profile = filepath.Join(r.opts.profile, "bridge-"+phase)
	}
	p, err := startBridge(dataDir, sources, profile)
	if err != nil {
		return err
	}
	stopKill := context.AfterFunc(ctx, func() { killGroup(p.cmd.Process.Pid) })
	defer stopKill()
	err = fn(p)
	if err == nil && profile != "" {
		_, err = p.mem() // writes the heap profile
	}
	if serr := p.stop(); err == nil {
		err = serr
	}
	return err
}

// warmSelect logs in and selects mailbox once (the server loads or
// indexes the folder), then logs out.
func warmSelect(addr, mailbox string) (time.Duration, error) {
	c, err := dialLogin(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		return 0, fmt.Errorf("select %q: %w", mailbox, err)
	}
	d := time.Since(start)
	return d, c.Logout().Wait()
}

const (
	bridgeSyncBox = "Local/sync"
	bridgeBigBox  = "Local/archive"
)

func bridgeSync(ctx context.Context, r *results, dataDir string, sources []backend.Source) error {
	return withBridge(ctx, r, "sync", dataDir, sources, func(p *bridgeProc) error {
		var err error
		if r.bridgeSelectUp, err = warmSelect(p.Addr, bridgeSyncBox); err != nil {
			return err
		}
		for i := range r.bridgeSync {
			if r.bridgeSync[i], err = syncOnce(p.Addr, bridgeSyncBox); err != nil {
				return err
			}
		}
		if n := r.bridgeSync[0].Messages; n != r.syncCorpus.Messages {
			return fmt.Errorf("fetched %d messages, the mbox has %d", n, r.syncCorpus.Messages)
		}
		return nil
	})
}

func dovecotSync(ctx context.Context, r *results, syncPath string, progress func(string, ...any)) error {
	if r.opts.dovecot == "off" {
		r.dovecotSkip = "-dovecot=off"
		return nil
	}
	bin, ok := dovecotBinary()
	if !ok {
		r.dovecotSkip = "dovecot not installed (apt-get install -y dovecot-imapd)"
		return nil
	}
	if out, err := runOutput(bin, "--version"); err == nil {
		r.dovecotVersion = strings.Fields(out + " ?")[0]
	}
	d, err := newDovecot()
	if err != nil {
		return err
	}
	defer d.remove()
	progress("writing %d Maildir files for Dovecot", r.syncCorpus.Messages)
	if _, err := writeMaildir(syncPath, d.maildir()); err != nil {
		return err
	}
	if err := d.start(); err != nil {
		return err
	}
	stopKill := context.AfterFunc(ctx, d.stop)
	defer stopKill()
	defer d.stop()
	progress("first full sync of %d messages from Dovecot %s", r.syncCorpus.Messages, r.dovecotVersion)
	if r.dovecotWarm, err = warmSelect(d.addr, "INBOX"); err != nil {
		return err
	}
	for i := range r.dovecotSync {
		if r.dovecotSync[i], err = syncOnce(d.addr, "INBOX"); err != nil {
			return err
		}
	}
	if n := r.dovecotSync[0].Messages; n != r.syncCorpus.Messages {
		return fmt.Errorf("fetched %d messages, the mbox has %d", n, r.syncCorpus.Messages)
	}
	return nil
}

func bridgeStream(ctx context.Context, r *results, dataDir string, sources []backend.Source) error {
	return withBridge(ctx, r, "stream", dataDir, sources, func(p *bridgeProc) error {
		m, b, err := streamOnce(p.Addr, bridgeBigBox)
		if err != nil {
			return err
		}
		if m.Messages != r.archive.Messages {
			return fmt.Errorf("fetched %d messages, the mbox has %d", m.Messages, r.archive.Messages)
		}
		r.stream = b
		return nil
	})
}

func bridgeLoad(ctx context.Context, r *results, dataDir string, sources []backend.Source) error {
	return withBridge(ctx, r, "load", dataDir, sources, func(p *bridgeProc) error {
		r.idleMem = p.Start
		var err error
		if r.load, err = concurrentClients(p.Addr, bridgeBigBox, r.opts.clients); err != nil {
			return err
		}
		if r.load.Messages != r.archive.Messages {
			return fmt.Errorf("each client fetched %d messages, the mbox has %d", r.load.Messages, r.archive.Messages)
		}
		r.loadMem, err = p.mem()
		return err
	})
}
