package main

// `popbridge fetch -once`, and the [[pop3]] fetch loops that `serve` runs.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"

	"github.com/popbridge/popbridge/backend/pop3"
	"github.com/popbridge/popbridge/control"
)

// fetchReport is what `fetch -once` prints (and the control API returns).
type fetchReport = control.FetchReport

type fetchAccount = control.FetchAccount

func runFetch(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fset := newFlagSet("fetch", "[-config FILE] -once [-account NAME]", stderr)
	cfgPath := fset.String("config", "", "configuration file")
	once := fset.Bool("once", false, "run one fetch round for each [[pop3]] account now, print what it did, and exit")
	account := fset.String("account", "", "only the [[pop3]] account with this name")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "popbridge fetch: unexpected argument %q\n", fset.Arg(0))
		fset.Usage()
		return 2
	}
	if !*once {
		fmt.Fprintf(stderr, "popbridge fetch: -once is required ('popbridge serve' keeps fetching on its own)\n")
		fset.Usage()
		return 2
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	if len(cfg.POP3) == 0 {
		return fail(stderr, errors.New("no [[pop3]] accounts in the configuration; add one to keep fetching an old POP mailbox"))
	}
	if *account != "" && findPOP3(cfg, *account) == nil {
		var names []string
		for _, p := range cfg.POP3 {
			names = append(names, fmt.Sprintf("%q", p.Name))
		}
		return fail(stderr, fmt.Errorf("no [[pop3]] account named %q (configured: %s)", *account, strings.Join(names, ", ")))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The archive must be indexed first when no bridge runs: that is how
	// messages the old client already downloaded are recognised.
	api, done, err := openAPI(ctx, cfg, stderr, true)
	if err != nil {
		return fail(stderr, err)
	}
	defer done()
	r, err := api.Fetch(ctx, *account)
	if err != nil {
		return fail(stderr, err)
	}
	rep := *r
	printFetch(stdout, &rep)
	for _, r := range rep.Accounts {
		if r.Error != "" {
			return 1
		}
	}
	return 0
}

func findPOP3(cfg *Config, name string) *POP3Config {
	for i := range cfg.POP3 {
		if cfg.POP3[i].Name == name {
			return &cfg.POP3[i]
		}
	}
	return nil
}

// fetchNow runs one round for account (all accounts when "").
func fetchNow(ctx context.Context, a *app, account string) fetchReport {
	var rep fetchReport
	fetchers, errs := fetchersFor(a, a.log)
	for _, p := range a.cfg.POP3 {
		if account != "" && p.Name != account {
			continue
		}
		fa := fetchAccount{Name: p.Name}
		if err := errs[p.Name]; err != nil {
			fa.Error = err.Error()
		} else if f := fetchers[p.Name]; f != nil {
			res, err := f.Round(ctx)
			fa.Result = res
			if err != nil {
				fa.Error = err.Error()
			}
		}
		rep.Accounts = append(rep.Accounts, fa)
	}
	return rep
}

func printFetch(w io.Writer, rep *fetchReport) {
	for _, r := range rep.Accounts {
		res := r.Result
		if r.Error != "" {
			fmt.Fprintf(w, "%s: FAILED: %s\n", r.Name, r.Error)
			if res.Fetched+res.Skipped+res.TooBig+res.Deleted > 0 {
				fmt.Fprintf(w, "%s: before that: %s\n", r.Name, res)
			}
		} else {
			fmt.Fprintf(w, "%s: %s\n", r.Name, res)
		}
		for _, e := range res.Errors {
			fmt.Fprintf(w, "%s:   %s\n", r.Name, e)
		}
	}
}

// startPOP starts the fetch loop of every [[pop3]] account; they stop when
// ctx ends. Each loop first waits for a complete index of the archive (so
// that what the old client downloaded is recognised). Accounts whose
// fetcher cannot be built are logged and left out.
func startPOP(ctx context.Context, a *app, log *slog.Logger) []*pop3.Fetcher {
	fetchers, errs := fetchersFor(a, log)
	set := popSetOf(a)
	var out []*pop3.Fetcher
	for _, p := range a.cfg.POP3 {
		if err := errs[p.Name]; err != nil {
			log.Error("POP3 account not fetched", "pop3", p.Name, "err", err)
			continue
		}
		f := fetchers[p.Name]
		out = append(out, f)
		set.loops.Add(1)
		go func() {
			defer set.loops.Done()
			if a.acct.LastIndexed().IsZero() {
				if _, err := a.acct.Index(ctx, nil); err != nil {
					if ctx.Err() != nil {
						return
					}
					log.Warn("archive index failed; fetching anyway (messages the old client downloaded are still recognised by content)", "pop3", p.Name, "err", err)
				}
			}
			log.Info("POP3 fetching started", "pop3", p.Name, "host", p.Host, "port", p.Port, "interval", p.Interval.Duration(), "deliver_to", p.DeliverTo)
			f.Run(ctx)
		}()
	}
	return out
}

// waitPOP waits until the loops started by startPOP have returned (after
// their ctx ended); call it before closing the app, so that no round is
// cut off by the database closing.
func waitPOP(a *app) {
	if s := popSetOf(a); s != nil {
		s.loops.Wait()
	}
}

func popSetOf(a *app) *popSet {
	popRegistry.Lock()
	defer popRegistry.Unlock()
	return popRegistry.m[a]
}

// popStatus returns the saved status of every [[pop3]] account.
func popStatus(a *app) []pop3.AccountStatus {
	var out []pop3.AccountStatus
	for _, p := range a.cfg.POP3 {
		st, err := pop3.Status(a.db, p.Name)
		if err != nil {
			st = pop3.AccountStatus{Name: p.Name, LastError: "cannot read the fetch status: " + err.Error()}
		}
		out = append(out, st)
	}
	return out
}

// printPOPStatus prints the "POP3 accounts" section of `status`.
func printPOPStatus(w io.Writer, sts []pop3.AccountStatus) {
	if len(sts) == 0 {
		return
	}
	fmt.Fprintf(w, "\nPOP3 accounts:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  ACCOUNT\tLAST RUN\tFETCHED\tKNOWN\tTOO BIG\tDELETED\tON SERVER\tRESULT\n")
	for _, s := range sts {
		last := "never"
		if !s.LastRun.IsZero() {
			last = s.LastRun.Local().Format("2006-01-02 15:04")
		}
		result := s.LastResult
		if s.LastError != "" {
			result = "error: " + s.LastError
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, last, s.Fetched, s.Skipped, s.TooBig, s.Deleted, s.OnServer, result)
	}
	tw.Flush()
}

// popRegistry holds each app's fetchers, shared by the loops and the
// control endpoint (so a manual round waits for a running one).
var popRegistry struct {
	sync.Mutex
	m map[*app]*popSet
}

type popSet struct {
	fetchers map[string]*pop3.Fetcher
	errs     map[string]error
	loops    sync.WaitGroup // Run loops started by startPOP
}

// fetchersFor returns a's fetchers by account name (built once), and the
// error of each account that could not be built.
func fetchersFor(a *app, log *slog.Logger) (map[string]*pop3.Fetcher, map[string]error) {
	popRegistry.Lock()
	defer popRegistry.Unlock()
	if popRegistry.m == nil {
		popRegistry.m = map[*app]*popSet{}
	}
	if s, ok := popRegistry.m[a]; ok {
		return s.fetchers, s.errs
	}
	if log == nil {
		log = slog.Default()
	}
	s := &popSet{fetchers: map[string]*pop3.Fetcher{}, errs: map[string]error{}}
	popstate := popstateFiles(a.cfg)
	for i := range a.cfg.POP3 {
		p := &a.cfg.POP3[i]
		f, err := pop3.New(a.db, a.acct, pop3Account(p, popstate), log)
		if err != nil {
			s.errs[p.Name] = err
			continue
		}
		s.fetchers[p.Name] = f
	}
	popRegistry.m[a] = s
	return s.fetchers, s.errs
}

func pop3Account(p *POP3Config, popstate []string) pop3.Account {
	leave := true
	if p.LeaveOnServer != nil {
		leave = *p.LeaveOnServer
	}
	a := pop3.Account{
		Name:           p.Name,
		Host:           p.Host,
		Port:           p.Port,
		TLS:            p.TLS,
		Username:       p.Username,
		Password:       p.ResolvePassword,
		Interval:       p.Interval.Duration(),
		LeaveOnServer:  leave,
		DeleteAfter:    p.DeleteAfter.Duration(),
		DeliverTo:      p.DeliverTo,
		MaxMessageSize: int64(p.MaxMessageSize),
		PopstateFiles:  popstate,
	}
	if p.OAuth2 != nil {
		a.Password, a.Token = nil, p.oauthSource(nil).Token
	}
	return a
}

// popstateFiles finds Thunderbird popstate.dat files for the configured
// archive sources: beside a source file (the account's Inbox mbox), and
// under a source directory (a profile, its Mail directory or one account
// directory), at most four levels down.
func popstateFiles(cfg *Config) []string {
	const maxDepth = 4
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if seen[p] {
			return
		}
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, src := range cfg.Archive.Sources {
		st, err := os.Stat(src.Path)
		if err != nil {
			continue
		}
		if !st.IsDir() {
			add(filepath.Join(filepath.Dir(src.Path), "popstate.dat"))
			continue
		}
		root := filepath.Clean(src.Path)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if d != nil && d.IsDir() && p != root {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if p != root && strings.Count(p[len(root):], string(filepath.Separator)) > maxDepth {
					return fs.SkipDir
				}
				return nil
			}
			if d.Name() == "popstate.dat" {
				add(p)
			}
			return nil
		})
	}
	return out
}
