package main

// The shell: the long-lived part of a running popbridge. It claims the
// data dir, holds the control Service and its endpoint, the console and the
// desktop integration, and it (re)starts the bridge (serve) whenever the
// console saved a new configuration.
//
// Every way of starting popbridge ends here: `popbridge` alone (a
// double-click), `popbridge start`, the autostart entry (`start
// -autostart`) and `popbridge serve`. One popbridge runs per data dir: a
// second start opens the first one's console (serve fails instead, for
// scripts), a start that finds one still starting waits for its control
// endpoint, and a data dir left by a killed bridge is taken over without
// help (the claim is a lock the kernel drops with the process).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/popbridge/popbridge/console"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/logfile"
)

type shell struct {
	svc    *control.Service
	reload chan struct{}
	quit   chan stopRequest
}

// stopRequest is a stop asked in the console: after runs once popbridge
// has let go of everything (uninstall); nil for a plain quit.
type stopRequest struct {
	after func(context.Context) error
}

// shellOptions say how popbridge was started.
type shellOptions struct {
	// desktop: started as a desktop app (no command, or start). The
	// console opens in the browser, a configuration that cannot start the
	// bridge keeps the console up to fix it rather than ending, and
	// without [log] file the log goes to the rotating file in the data dir.
	desktop bool
	// autostart: started by the autostart entry (start -autostart): no
	// browser opens, and a bridge already running means there is nothing
	// to do.
	autostart bool
	// ready, if set, is called with the console's login URL ("" without
	// a console) once everything listens, or with the running bridge's
	// console URL when this start found one (tests).
	ready func(consoleURL string)
	// wait is how long to wait for a popbridge that is starting (it holds
	// the data dir, its control endpoint does not answer yet); 0: 30 s.
	wait time.Duration
}

// errAlreadyRunning is serve's answer when a bridge runs on the data dir.
func errAlreadyRunning(dataDir string) error {
	return fmt.Errorf("another popbridge is already running on the data directory %s; open its console with: popbridge console", dataDir)
}

// runShell runs popbridge with cfg (loaded from its file, which the
// console may change) until ctx ends.
func runShell(ctx context.Context, cfg *Config, opts shellOptions, stdout, stderr io.Writer) error {
	claim, done, err := claimOrJoin(ctx, cfg, opts, stdout, stderr)
	if done {
		return err
	}
	released := false
	release := func() {
		if !released {
			claim.Release()
			released = true
		}
	}
	defer release()

	var (
		baseLog  *slog.Logger
		out      = stdout
		closeLog func()
		logFile  = cfg.Log.File
	)
	if opts.desktop {
		baseLog, out, closeLog, err = startLogger(cfg, isTerminal(stderr), stdout, stderr)
		if logFile == "" {
			logFile = logfile.Path(cfg.DataDir)
		}
	} else {
		baseLog, closeLog, err = newLogger(cfg, stderr)
	}
	if err != nil {
		return err
	}
	logClosed := false
	closeLogOnce := func() {
		if !logClosed {
			closeLog()
			logClosed = true
		}
	}
	defer closeLogOnce()
	problems := control.NewProblemLog()
	log := slog.New(problems.Handler(baseLog.Handler()))

	sh := &shell{reload: make(chan struct{}, 1), quit: make(chan stopRequest, 1)}
	host := &configHost{path: cfg.Path, cfg: cfg, now: time.Now, reload: sh.restart}
	hooks := newSystemHooks(sh, host, cfg.DataDir, logFile, problems, log)
	defer hooks.Close()
	sh.svc = control.NewService(control.Options{Version: version, DataDir: cfg.DataDir, Logger: log, Host: host, Problems: problems, System: hooks})
	ctl, err := control.Listen(sh.svc, cfg.DataDir, cfg.Listen.Control)
	if err != nil {
		return err
	}
	ctlClosed := false
	closeCtl := func() {
		if !ctlClosed {
			ctl.Close()
			ctlClosed = true
		}
	}
	defer closeCtl()

	loginURL := ""
	var con *console.Server
	if cfg.Console.Listen != "" {
		con, err = console.New(console.Options{API: ctl.Client(), Logger: log, Version: version})
		if err != nil {
			return err
		}
		addr := cfg.Console.Listen
		err = con.Listen(addr)
		if err != nil && addr == defaultConsole {
			log.Warn("the console's usual port is taken; using a free one", "addr", addr, "err", err)
			err = con.Listen("127.0.0.1:0")
		}
		if err != nil {
			return fmt.Errorf("[console] listen: %w", err)
		}
		defer con.Close()
		sh.svc.SetAddrs("", con.Addr(), con.LoginURL)
		if loginURL, err = con.LoginURL(); err != nil {
			return err
		}
		switch {
		case opts.desktop && !opts.autostart:
			fmt.Fprintf(out, "popbridge: console: %s\n", loginURL)
			if err := openBrowser(loginURL); err != nil {
				fmt.Fprintf(out, "popbridge: could not open the browser (%v); open the link above yourself\n", err)
			}
		default:
			fmt.Fprintf(out, "popbridge: console on http://%s/ (open it with: popbridge console)\n", con.Addr())
		}
	}
	if opts.ready != nil {
		opts.ready(loginURL)
	}

	stop, err := sh.run(ctx, cfg, host, opts, log, out)
	if stop == nil {
		return err
	}
	if stop.after == nil {
		// "Quit popbridge" in the console: the deferred closes stop the
		// console and the control endpoint (control.json goes) and let
		// the data dir go.
		fmt.Fprintln(out, "popbridge: stopped, as asked in the console")
		return nil
	}
	after := stop.after
	// Uninstall from the console: stop everything, give the data dir up,
	// then remove what was asked.
	if con != nil {
		con.Close()
	}
	closeCtl()
	release()
	closeLogOnce()
	actx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := after(actx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "popbridge: uninstalled; it has stopped.")
	return nil
}

// restart asks the shell to restart the bridge with the file as it is now.
func (sh *shell) restart() {
	select {
	case sh.reload <- struct{}{}:
	default:
	}
}

// stop asks the shell to stop popbridge, then run after (uninstall; nil:
// a plain quit).
func (sh *shell) stop(after func(context.Context) error) {
	select {
	case sh.quit <- stopRequest{after: after}:
	default:
	}
}

// lockedRetry is how soon a desktop start tries again when a command
// working without a bridge (import, migrate) holds the database.
const lockedRetry = 5 * time.Second

// run (re)starts the bridge until ctx ends, the bridge could not start at
// all (serve: the error), or the console asked to stop popbridge (stop:
// what to do then).
func (sh *shell) run(ctx context.Context, cfg *Config, host *configHost, opts shellOptions, log *slog.Logger, out io.Writer) (stop *stopRequest, err error) {
	cur := cfg
	first := true
	for {
		ictx, cancel := context.WithCancel(withShell(ctx, sh))
		errc := make(chan error, 1)
		go func() { errc <- serve(ictx, cur, log, out) }()
		select {
		case <-ctx.Done():
			cancel()
			<-errc
			return nil, nil
		case req := <-sh.quit:
			cancel()
			<-errc
			log.Info("popbridge stops, as asked in the console")
			return &req, nil
		case <-sh.reload:
			cancel()
			if err := <-errc; err != nil {
				log.Warn("bridge stopped with an error before a restart", "err", err)
			}
			log.Info("configuration changed; restarting the bridge")
		case err := <-errc:
			cancel()
			if ctx.Err() != nil {
				return nil, nil
			}
			if err == nil {
				err = errors.New("the bridge stopped")
			}
			if first && !opts.desktop {
				return nil, err
			}
			var retry <-chan time.Time
			if isLocked(err) {
				// A command working without a bridge (import, migrate)
				// holds the database: start when it has finished.
				err = fmt.Errorf("%w; popbridge starts by itself once it has finished", err)
				retry = time.After(lockedRetry)
			}
			log.Error("the bridge could not start", "err", err)
			fmt.Fprintf(out, "popbridge: %v\n", err)
			sh.svc.SetStartError(err)
			select {
			case <-ctx.Done():
				return nil, nil
			case req := <-sh.quit:
				log.Info("popbridge stops, as asked in the console")
				return &req, nil
			case <-sh.reload:
			case <-retry:
			}
		}
		first = false
		cur = host.current()
	}
}

// claimOrJoin makes sure this is the only popbridge on the data dir:
// it returns the claim, or (done) what to answer when another popbridge
// runs there — its console opened (a desktop start), nothing (autostart),
// or an error (serve).
func claimOrJoin(ctx context.Context, cfg *Config, opts shellOptions, stdout, stderr io.Writer) (claim *control.Claim, done bool, err error) {
	wait := opts.wait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	said := false
	for {
		if c, err := control.Dial(ctx, cfg.DataDir); err == nil {
			return nil, true, joinRunning(ctx, c, cfg, opts, stdout, stderr)
		}
		claim, err := control.ClaimDataDir(cfg.DataDir)
		if err == nil {
			return claim, false, nil
		}
		if !errors.Is(err, control.ErrClaimed) {
			return nil, true, err
		}
		if !opts.desktop {
			return nil, true, errAlreadyRunning(cfg.DataDir)
		}
		// A popbridge is starting: its control endpoint comes soon.
		if !said {
			fmt.Fprintf(stdout, "popbridge: another popbridge is starting on %s; waiting for it…\n", cfg.DataDir)
			said = true
		}
		if time.Now().After(deadline) {
			who := "another process"
			if pid, _ := control.Held(cfg.DataDir); pid > 0 {
				who = fmt.Sprintf("another popbridge (pid %d)", pid)
			}
			return nil, true, fmt.Errorf("%s holds the data directory %s but did not answer within %s; if it hangs, end it (Task Manager, Activity Monitor or kill), then start popbridge again", who, cfg.DataDir, wait)
		}
		select {
		case <-ctx.Done():
			return nil, true, nil
		case <-tick.C:
		}
	}
}

// joinRunning is a start that found popbridge running on the data dir:
// a desktop start opens its console, an autostart start has nothing to
// do, serve says so.
func joinRunning(ctx context.Context, c *control.Client, cfg *Config, opts shellOptions, stdout, stderr io.Writer) error {
	if !opts.desktop {
		return errAlreadyRunning(cfg.DataDir)
	}
	if opts.autostart {
		fmt.Fprintf(stdout, "popbridge is already running (pid %d); nothing to start\n", c.PID())
		if opts.ready != nil {
			opts.ready("")
		}
		return nil
	}
	u, err := c.ConsoleURL(ctx)
	if err != nil {
		if control.CodeOf(err) == control.CodeUnsupported {
			fmt.Fprintf(stdout, "popbridge is already running (pid %d); its console is off ([console] listen = \"off\"): `popbridge status` shows what it does\n", c.PID())
			return nil
		}
		return fmt.Errorf("popbridge is already running (pid %d), but its console could not be opened: %w", c.PID(), err)
	}
	fmt.Fprintf(stdout, "popbridge is already running (pid %d). Console: %s\n", c.PID(), u)
	if err := openBrowser(u); err != nil {
		fmt.Fprintf(stderr, "popbridge: could not open the browser (%v); open the link above yourself\n", err)
	}
	if opts.ready != nil {
		opts.ready(u)
	}
	return nil
}

// defaultConfigPath is where popbridge keeps a config it creates itself:
// the user's config dir (~/.config/popbridge, %AppData%\popbridge,
// ~/Library/Application Support/popbridge).
func defaultConfigPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no place for a configuration file: %w", err)
	}
	return filepath.Join(dir, "popbridge", configFileName), nil
}
