package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/control"
)

func runImport(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("import", "[-config FILE]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if c, err := control.Dial(ctx, cfg.DataDir); err == nil {
		rep, err := c.Index(ctx)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "The running bridge re-indexed the archive.\n")
		printImport(stdout, rep)
		return 0
	} else if !errors.Is(err, control.ErrNoBridge) {
		return fail(stderr, err)
	}
	// No bridge: index here, with progress.
	log, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeLog()
	a, err := openApp(cfg, log)
	if err != nil {
		return fail(stderr, err)
	}
	defer a.Close()

	progress, done := importProgress(stdout)
	r, err := a.acct.Index(ctx, progress)
	done()
	if err != nil {
		return fail(stderr, fmt.Errorf("import interrupted: %w (run it again to continue; what was indexed is kept)", err))
	}
	printImport(stdout, r)
	return 0
}

// importProgress shows a bar on a terminal and plain lines otherwise.
func importProgress(stdout io.Writer) (func(backend.Progress), func()) {
	f, isFile := stdout.(*os.File)
	if isFile && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(p backend.Progress) {
				if bar == nil {
					bar = progressbar.NewOptions64(max(p.TotalBytes, 1),
						progressbar.OptionSetWriter(stdout),
						progressbar.OptionShowBytes(true),
						progressbar.OptionShowCount(),
						progressbar.OptionSetWidth(30),
						progressbar.OptionThrottle(100*time.Millisecond),
						progressbar.OptionSetPredictTime(true),
						progressbar.OptionShowElapsedTimeOnFinish(),
						progressbar.OptionSetRenderBlankState(true))
				}
				bar.Describe(fmt.Sprintf("[%d/%d folders] %d msgs  %s", p.FoldersDone, p.FoldersTotal, p.Messages, p.Folder))
				bar.Set64(min(p.Bytes, p.TotalBytes))
			}, func() {
				if bar != nil {
					bar.Finish()
					fmt.Fprintln(stdout)
				}
			}
	}
	start := time.Now()
	var last time.Time
	return func(p backend.Progress) {
		if time.Since(last) < 2*time.Second && p.FoldersDone != p.FoldersTotal {
			return
		}
		last = time.Now()
		el := time.Since(start).Seconds()
		rate := 0.0
		if el > 0 {
			rate = float64(p.Bytes) / el / (1 << 20)
		}
		eta := "?"
		if rate > 0 && p.TotalBytes > p.Bytes {
			eta = (time.Duration(float64(p.TotalBytes-p.Bytes)/(rate*(1<<20))) * time.Second).Round(time.Second).String()
		}
		fmt.Fprintf(stdout, "indexing: folder %d/%d %s, %d messages, %s of %s, %.1f MB/s, ETA %s\n",
			p.FoldersDone, p.FoldersTotal, p.Folder, p.Messages, humanBytes(p.Bytes), humanBytes(p.TotalBytes), rate, eta)
	}, func() {}
}

func printImport(w io.Writer, r *backend.IndexReport) {
	fmt.Fprintf(w, "\nIndexed %d new/updated messages, read %s in %s.\n\n", r.Messages, humanBytes(r.Bytes), r.Elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "FOLDER\tMESSAGES\tSIZE\tNEW\tUPDATED\tREMOVED\t\n")
	for _, f := range r.Folders {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t\n", f.Name, f.Total, humanBytes(f.Bytes), f.New, f.Updated, f.Removed)
	}
	tw.Flush()
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\nSkipped (%d):\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	} else {
		fmt.Fprintf(w, "\nNothing was skipped.\n")
	}
}
