package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/control"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// migrateRequest is what the CLI asks the control API for.
type migrateRequest = control.MigrateRequest

func scopeFlags(fs *flag.FlagSet, r *migrateRequest, folders *multiFlag) {
	fs.StringVar(&r.Since, "since", "", "only messages on or after this date (YYYY-MM-DD; default [migrate] since)")
	fs.StringVar(&r.Before, "before", "", "only messages before this date (YYYY-MM-DD; default [migrate] before)")
	fs.Var(folders, "folder", "legacy folder to include, e.g. Local/Inbox (repeatable; default all)")
}

func runMigrate(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("migrate", "[-config FILE] [-dry-run] [-since DATE] [-before DATE] [-folder NAME]… [-move]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	var r migrateRequest
	var folders multiFlag
	scopeFlags(fs, &r, &folders)
	fs.BoolVar(&r.DryRun, "dry-run", false, "print the plan and stop")
	fs.BoolVar(&r.Move, "move", false, "hide legacy messages once they are confirmed on the server (files are never touched)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r.Folders = folders
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	if cfg.Upstream == nil {
		return fail(stderr, backend.ErrNoUpstream)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	api, closeAPI, err := openAPI(ctx, cfg, stderr, true)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeAPI()
	if _, direct := api.(*control.Service); direct {
		softMemoryLimit()
	}
	progress, done := migrateProgress(stdout)
	var plan *backend.Plan
	var res *backend.MigrateResult
	err = api.Migrate(ctx, r, func(ev control.MigrateEvent) {
		switch {
		case ev.Plan != nil:
			plan = ev.Plan
			printPlan(stdout, plan)
		case ev.Progress != nil:
			progress(*ev.Progress)
		case ev.Result != nil:
			res = ev.Result
		}
	})
	done()
	if err != nil {
		return fail(stderr, err)
	}
	if r.DryRun {
		fmt.Fprintln(stdout, "\nDry run: nothing was uploaded.")
		if plan != nil && !plan.Fits {
			return 1
		}
		return 0
	}
	if res == nil {
		return fail(stderr, errors.New("migrate ended without a result"))
	}
	printMigrateResult(stdout, res)
	if !res.Complete {
		return 1
	}
	return 0
}

func printPlan(w io.Writer, p *backend.Plan) {
	fmt.Fprintf(w, "Migration plan\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "LEGACY FOLDER\t→ SERVER FOLDER\tIN SCOPE\tSIZE\tON SERVER\tTO UPLOAD\tUPLOAD SIZE\tREPEATS\n")
	var create []string
	var in, on, up int
	var bytes, upb int64
	for _, f := range p.Folders {
		target := f.Target
		if f.Create {
			target += " (new)"
			create = append(create, f.Target)
		}
		fmt.Fprintf(tw, "%s\t→ %s\t%d\t%s\t%d\t%d\t%s\t%d\n", f.Source, target, f.InScope, humanBytes(f.Bytes), f.OnServer, f.ToUpload, humanBytes(f.UploadBytes), f.Repeats)
		in, on, up = in+f.InScope, on+f.OnServer, up+f.ToUpload
		bytes, upb = bytes+f.Bytes, upb+f.UploadBytes
	}
	fmt.Fprintf(tw, "TOTAL\t\t%d\t%s\t%d\t%d\t%s\n", in, humanBytes(bytes), on, up, humanBytes(upb))
	tw.Flush()
	if len(create) > 0 {
		fmt.Fprintf(w, "\nFolders to create on the server: %s\n", strings.Join(create, ", "))
	}
	if p.QuotaKnown {
		fmt.Fprintf(w, "\nServer quota: %s used of %s now, %s after (%s free now)\n", humanBytes(p.QuotaUsed), humanBytes(p.QuotaLimit), humanBytes(p.QuotaUsed+p.Need), humanBytes(max(p.QuotaLimit-p.QuotaUsed, 0)))
		if !p.Fits {
			fmt.Fprintf(w, "Does NOT fit: %s\n", control.QuotaRefusal(p))
		}
	} else {
		fmt.Fprintf(w, "\nServer quota: none — %s\n", control.NoQuotaText)
	}
}

func printMigrateResult(w io.Writer, r *backend.MigrateResult) {
	fmt.Fprintf(w, "\nSummary (%s, %s uploaded)\n\n", r.Elapsed.Round(time.Millisecond), humanBytes(r.Bytes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "LEGACY FOLDER\t→ SERVER FOLDER\tIN SCOPE\tUPLOADED\tALREADY THERE\tFAILED\tHIDDEN\n")
	for _, f := range r.Folders {
		fmt.Fprintf(tw, "%s\t→ %s\t%d\t%d\t%d\t%d\t%d\n", f.Source, f.Target, f.InScope, f.Uploaded, f.Already, f.Failed, f.Hidden)
	}
	tw.Flush()
	for _, f := range r.Folders {
		if f.Error != "" {
			fmt.Fprintf(w, "  %s: %s\n", f.Source, f.Error)
		}
		for _, m := range f.Failures {
			fmt.Fprintf(w, "  %s UID %d (%s, from %s, %q, %s) stays local: %s\n", f.Source, m.UID, m.Date.Format("2006-01-02"), m.From, m.Subject, m.MessageID, m.Reason)
		}
	}
	if r.Stopped != "" {
		fmt.Fprintf(w, "\nStopped early: %s\n", r.Stopped)
	}
	if r.Complete {
		fmt.Fprintf(w, "\nEverything in scope is on the server. Run 'popbridge verify' for the proof.\n")
	} else {
		fmt.Fprintf(w, "\nNot everything in scope is on the server yet; run migrate again to continue (nothing is uploaded twice).\n")
	}
}

// migrateProgress shows bars on a terminal and log lines otherwise.
func migrateProgress(stdout io.Writer) (func(backend.MigrateProgress), func()) {
	f, isFile := stdout.(*os.File)
	if isFile && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(p backend.MigrateProgress) {
				if bar == nil {
					bar = progressbar.NewOptions64(max(p.TotalB, 1), progressbar.OptionSetWriter(stdout), progressbar.OptionShowBytes(true),
						progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true),
						progressbar.OptionShowElapsedTimeOnFinish())
				}
				bar.Describe(fmt.Sprintf("[%d/%d msgs] %s %d/%d", p.Done, p.Total, p.Folder, p.FolderDone, p.FolderTotal))
				bar.Set64(min(p.Bytes, p.TotalB))
			}, func() {
				if bar != nil {
					bar.Finish()
					fmt.Fprintln(stdout)
				}
			}
	}
	var last time.Time
	return func(p backend.MigrateProgress) {
		if time.Since(last) < 2*time.Second && p.Done != p.Total {
			return
		}
		last = time.Now()
		rate := 0.0
		if s := p.Elapsed.Seconds(); s > 0 {
			rate = float64(p.Done) / s
		}
		eta := "?"
		if rate > 0 {
			eta = (time.Duration(float64(p.Total-p.Done)/rate) * time.Second).Round(time.Second).String()
		}
		fmt.Fprintf(stdout, "migrate: %d/%d messages, %s of %s, %.0f msg/s, ETA %s — %s %d/%d\n",
			p.Done, p.Total, humanBytes(p.Bytes), humanBytes(p.TotalB), rate, eta, p.Folder, p.FolderDone, p.FolderTotal)
	}, func() {}
}

func runVerify(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", "[-config FILE] [-content] [-since DATE] [-before DATE] [-folder NAME]… [-report FILE.json|FILE.csv]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	content := fs.Bool("content", false, "compare every message's full bytes with the server's (reads everything from the server; slower)")
	report := fs.String("report", "", "where to write the list of missing messages (.json or .csv; default data_dir/verify-report.json)")
	var r migrateRequest
	var folders multiFlag
	scopeFlags(fs, &r, &folders)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r.Folders = folders
	r.Content = *content
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	if cfg.Upstream == nil {
		return fail(stderr, backend.ErrNoUpstream)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	api, closeAPI, err := openAPI(ctx, cfg, stderr, true)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeAPI()
	var rep *backend.VerifyReport
	if r.Content {
		fmt.Fprintf(stdout, "verify: reading every message from the server and comparing its bytes (this takes a while)…\n")
		rep, err = verifyWithProgress(ctx, api, r, cfg.DataDir, stdout)
	} else {
		rep, err = api.Verify(ctx, r)
	}
	if err != nil {
		return fail(stderr, err)
	}
	path := *report
	if path == "" {
		path = filepath.Join(cfg.DataDir, "verify-report.json")
	}
	if err := writeVerifyReport(path, rep); err != nil {
		return fail(stderr, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "LEGACY FOLDER\t→ SERVER FOLDER\tIN SCOPE\tPRESENT\tMISSING\tDIFFERENT\n")
	for _, f := range rep.Folders {
		fmt.Fprintf(tw, "%s\t→ %s\t%d\t%d\t%d\t%d\n", f.Source, f.Target, f.InScope, f.Present, f.Missing, f.Differ)
	}
	tw.Flush()
	how := "header fields and size"
	if rep.Content {
		how = "full content"
	}
	if rep.OK {
		fmt.Fprintf(stdout, "\nOK: every in-scope legacy message is on the server (compared by %s). Report: %s\n", how, path)
		if !rep.Content {
			fmt.Fprintf(stdout, "For a byte-by-byte proof before you retire the old PC, run 'popbridge verify -content'.\n")
		}
		return 0
	}
	fmt.Fprintf(stdout, "\nNOT ON THE SERVER: %d messages (compared by %s; listed in %s):\n", len(rep.Missing), how, path)
	for i, m := range rep.Missing {
		if i == 20 {
			fmt.Fprintf(stdout, "  … and %d more\n", len(rep.Missing)-20)
			break
		}
		fmt.Fprintf(stdout, "  %s UID %d → %s: %s: %s, from %s, %q, %s\n", m.Folder, m.UID, m.Target, m.Problem, m.Date.Format("2006-01-02"), m.From, m.Subject, m.MessageID)
		if m.Detail != "" {
			fmt.Fprintf(stdout, "    %s\n", m.Detail)
		}
	}
	fmt.Fprintf(stdout, "Run 'popbridge migrate' to upload them.\n")
	return 1
}

// verifyWithProgress runs verify as a job (in the running bridge, or in
// this process) and prints its progress from the event stream; the full
// report is the one the job saved in the data dir.
func verifyWithProgress(ctx context.Context, api control.API, r migrateRequest, dataDir string, stdout io.Writer) (*backend.VerifyReport, error) {
	events, err := api.Events(ctx)
	if err != nil {
		return nil, err
	}
	st, err := api.StartVerify(ctx, r)
	if err != nil {
		return nil, err
	}
	var last time.Time
	for st.State == "running" {
		select {
		case ev, ok := <-events:
			if !ok {
				return nil, errors.New("verify: the bridge stopped")
			}
			if ev.Verify == nil {
				continue
			}
			st = ev.Verify
			if p := st.Progress; p != nil && (time.Since(last) >= 2*time.Second || p.Done == p.Total) {
				last = time.Now()
				fmt.Fprintf(stdout, "verify: %s: %d/%d messages read (%s)\n", p.Folder, p.Done, p.Total, humanBytes(p.Bytes))
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if st.State != "done" {
		if st.Error != "" {
			return nil, errors.New(st.Error)
		}
		return nil, fmt.Errorf("verify ended: %s", st.State)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, control.VerifyReportFile))
	if err != nil {
		return nil, fmt.Errorf("verify report: %w", err)
	}
	var rep backend.VerifyReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("verify report %s: %w", control.VerifyReportFile, err)
	}
	return &rep, nil
}

func writeVerifyReport(path string, rep *backend.VerifyReport) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("verify report: %w", err)
	}
	defer f.Close()
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		return control.WriteVerifyCSV(f, rep)
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
