package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/popbridge/popbridge/backend"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// migrateRequest is what the CLI sends a running bridge.
type migrateRequest struct {
	Since   string   `json:"since,omitempty"`
	Before  string   `json:"before,omitempty"`
	Folders []string `json:"folders,omitempty"`
	Move    bool     `json:"move,omitempty"`
	DryRun  bool     `json:"dry_run,omitempty"`
	Content bool     `json:"content,omitempty"` // verify: compare full bytes
}

// migrateEvent is one NDJSON line of the control endpoint's answer.
type migrateEvent struct {
	Plan     *backend.Plan            `json:"plan,omitempty"`
	Progress *backend.MigrateProgress `json:"progress,omitempty"`
	Result   *backend.MigrateResult   `json:"result,omitempty"`
	Verify   *backend.VerifyReport    `json:"verify,omitempty"`
	VProg    *backend.VerifyProgress  `json:"verify_progress,omitempty"`
	Error    string                   `json:"error,omitempty"`
}

func parseDay(s, flagName string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("-%s %q: use YYYY-MM-DD", flagName, s)
	}
	return t, nil
}

func (r migrateRequest) options(cfg *Config) (backend.MigrateOptions, error) {
	o := backend.MigrateOptions{Folders: r.Folders, Move: r.Move, Mapping: cfg.Migrate.Folders, DailyLimit: int64(cfg.Migrate.DailyLimit), Content: r.Content}
	var err error
	if o.Since, err = parseDay(r.Since, "since"); err != nil {
		return o, err
	}
	if o.Before, err = parseDay(r.Before, "before"); err != nil {
		return o, err
	}
	if r.Since == "" && !cfg.Migrate.Since.IsZero() {
		o.Since = cfg.Migrate.Since.Time(time.Local)
	}
	if r.Before == "" && !cfg.Migrate.Before.IsZero() {
		o.Before = cfg.Migrate.Before.Time(time.Local)
	}
	return o, nil
}

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
	progress, done := migrateProgress(stdout)
	var plan *backend.Plan
	var res *backend.MigrateResult
	err = streamControl(ctx, cfg, "/migrate", r, func(ev migrateEvent) {
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
	if errors.Is(err, errNoBridge) {
		softMemoryLimit()
		err = migrateDirect(ctx, cfg, r, stdout, stderr, func(p *backend.Plan) { plan = p; printPlan(stdout, p) }, progress, &res)
	}
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

// migrateDirect runs migrate in this process (no bridge running).
func migrateDirect(ctx context.Context, cfg *Config, r migrateRequest, stdout, stderr io.Writer, onPlan func(*backend.Plan), progress func(backend.MigrateProgress), res **backend.MigrateResult) error {
	log, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	a, err := openApp(cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if _, err := a.acct.Index(ctx, nil); err != nil {
		return err
	}
	return runMigration(ctx, a, cfg, r, onPlan, progress, res)
}

func runMigration(ctx context.Context, a *app, cfg *Config, r migrateRequest, onPlan func(*backend.Plan), progress func(backend.MigrateProgress), res **backend.MigrateResult) error {
	o, err := r.options(cfg)
	if err != nil {
		return err
	}
	plan, err := a.acct.PlanMigration(ctx, o)
	if err != nil {
		return err
	}
	onPlan(plan)
	if !plan.Fits {
		return fmt.Errorf("not starting: %s", quotaRefusal(plan))
	}
	if r.DryRun {
		return nil
	}
	o.Progress = progress
	out, err := a.acct.Migrate(ctx, plan, o)
	*res = out
	return err
}

func quotaRefusal(p *backend.Plan) string {
	free := max(p.QuotaLimit-p.QuotaUsed, 0)
	s := fmt.Sprintf("the plan needs %s on the server, only %s of %s is free (%s missing)", humanBytes(p.Need), humanBytes(free), humanBytes(p.QuotaLimit), humanBytes(p.Need-free))
	if p.FitHint != "" {
		s += "; this filter would fit: " + p.FitHint
	}
	return s
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
			fmt.Fprintf(w, "Does NOT fit: %s\n", quotaRefusal(p))
		}
	} else {
		fmt.Fprintf(w, "\nServer quota: not reported by the server\n")
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

// streamControl sends req to a running bridge and reads NDJSON events.
func streamControl(ctx context.Context, cfg *Config, path string, req any, fn func(migrateEvent)) error {
	info, err := readControlInfo(cfg)
	if err != nil {
		return errNoBridge
	}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, "POST", "http://"+info.Addr+path, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	hreq.Header.Set("Authorization", "Bearer "+info.Token)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errNoBridge
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("running bridge at %s: %s", info.Addr, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var ev migrateEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("running bridge: %w", err)
		}
		if ev.Error != "" {
			return errors.New(ev.Error)
		}
		fn(ev)
	}
	return sc.Err()
}

func readControlInfo(cfg *Config) (*controlInfo, error) {
	b, err := os.ReadFile(controlFile(cfg))
	if err != nil {
		return nil, err
	}
	var info controlInfo
	if err := json.Unmarshal(b, &info); err != nil || info.Addr == "" {
		return nil, errNoBridge
	}
	return &info, nil
}

// ndjson writes one event per line and flushes it.
func ndjson(w http.ResponseWriter) func(migrateEvent) {
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	return func(ev migrateEvent) {
		enc.Encode(ev)
		if fl != nil {
			fl.Flush()
		}
	}
}

// migrateHandler runs migrate inside the running bridge.
func migrateHandler(a *app) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req migrateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		send := ndjson(w)
		var res *backend.MigrateResult
		err := runMigration(r.Context(), a, a.cfg, req,
			func(p *backend.Plan) { send(migrateEvent{Plan: p}) },
			func(p backend.MigrateProgress) { send(migrateEvent{Progress: &p}) }, &res)
		if err != nil {
			send(migrateEvent{Error: err.Error()})
			return
		}
		if res != nil {
			send(migrateEvent{Result: res})
		}
	}
}

// verifyHandler runs verify inside the running bridge.
func verifyHandler(a *app) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req migrateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		send := ndjson(w)
		o, err := req.options(a.cfg)
		if err == nil {
			o.VerifyProgress = func(p backend.VerifyProgress) { send(migrateEvent{VProg: &p}) }
			var rep *backend.VerifyReport
			rep, err = a.acct.Verify(r.Context(), o)
			if err == nil {
				send(migrateEvent{Verify: rep})
				return
			}
		}
		send(migrateEvent{Error: err.Error()})
	}
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
	progress := verifyProgress(stdout)
	var rep *backend.VerifyReport
	err = streamControl(ctx, cfg, "/verify", r, func(ev migrateEvent) {
		if ev.Verify != nil {
			rep = ev.Verify
		}
		if ev.VProg != nil {
			progress(*ev.VProg)
		}
	})
	if errors.Is(err, errNoBridge) {
		err = func() error {
			log, closeLog, err := newLogger(cfg, stderr)
			if err != nil {
				return err
			}
			defer closeLog()
			a, err := openApp(cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			if _, err := a.acct.Index(ctx, nil); err != nil {
				return err
			}
			o, err := r.options(cfg)
			if err != nil {
				return err
			}
			o.VerifyProgress = progress
			rep, err = a.acct.Verify(ctx, o)
			return err
		}()
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

// verifyProgress reports verify's reading of the server, throttled.
func verifyProgress(stdout io.Writer) func(backend.VerifyProgress) {
	var last time.Time
	return func(p backend.VerifyProgress) {
		if time.Since(last) < 2*time.Second && p.Done != p.Total {
			return
		}
		last = time.Now()
		fmt.Fprintf(stdout, "verify: %s: %d/%d messages read (%s)\n", p.Folder, p.Done, p.Total, humanBytes(p.Bytes))
	}
}

func writeVerifyReport(path string, rep *backend.VerifyReport) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("verify report: %w", err)
	}
	defer f.Close()
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		w := csv.NewWriter(f)
		w.Write([]string{"folder", "target", "uid", "date", "from", "subject", "message_id", "problem", "detail"})
		for _, m := range rep.Missing {
			w.Write([]string{m.Folder, m.Target, fmt.Sprint(m.UID), m.Date.Format(time.RFC3339), m.From, m.Subject, m.MessageID, m.Problem, m.Detail})
		}
		w.Flush()
		return w.Error()
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
