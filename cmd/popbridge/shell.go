package main

// The shell: the long-lived part of a running popbridge. It holds the
// control Service and its endpoint, and the console, and it (re)starts
// the bridge (serve) whenever the console saved a new configuration.

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
)

type shell struct {
	svc    *control.Service
	reload chan struct{}
}

// shellOptions say how popbridge was started.
type shellOptions struct {
	// desktop: started without a command (a double-click). The console
	// opens in the browser, and a configuration that cannot start the
	// bridge keeps the console up to fix it rather than ending.
	desktop bool
	// ready, if set, is called with the console's login URL ("" without
	// a console) once everything listens (tests).
	ready func(consoleURL string)
}

// runShell runs popbridge with cfg (loaded from its file, which the
// console may change) until ctx ends.
func runShell(ctx context.Context, cfg *Config, opts shellOptions, stdout, stderr io.Writer) error {
	// One popbridge per data dir: a second start opens the first one's
	// console (desktop) or says so (serve).
	if c, err := control.Dial(ctx, cfg.DataDir); err == nil {
		if opts.desktop {
			u, err := c.ConsoleURL(ctx)
			if err != nil {
				return fmt.Errorf("popbridge is already running, but its console is off: %w", err)
			}
			fmt.Fprintf(stdout, "popbridge is already running. Console: %s\n", u)
			if err := openBrowser(u); err != nil {
				fmt.Fprintf(stderr, "popbridge: could not open the browser (%v); open the link above yourself\n", err)
			}
			if opts.ready != nil {
				opts.ready(u)
			}
			return nil
		}
		return fmt.Errorf("another popbridge is already running on the data directory %s; open its console with: popbridge console", cfg.DataDir)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	baseLog, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	problems := control.NewProblemLog()
	log := slog.New(problems.Handler(baseLog.Handler()))

	sh := &shell{reload: make(chan struct{}, 1)}
	host := &configHost{path: cfg.Path, cfg: cfg, now: time.Now, reload: func() {
		select {
		case sh.reload <- struct{}{}:
		default:
		}
	}}
	sh.svc = control.NewService(control.Options{Version: version, DataDir: cfg.DataDir, Logger: log, Host: host, Problems: problems})
	ctl, err := control.Listen(sh.svc, cfg.DataDir, cfg.Listen.Control)
	if err != nil {
		return err
	}
	defer ctl.Close()

	loginURL := ""
	if cfg.Console.Listen != "" {
		con, err := console.New(console.Options{API: ctl.Client(), Logger: log, Version: version})
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
		if opts.desktop {
			fmt.Fprintf(stdout, "popbridge: console: %s\n", loginURL)
			if err := openBrowser(loginURL); err != nil {
				fmt.Fprintf(stderr, "popbridge: could not open the browser (%v); open the link above yourself\n", err)
			}
		} else {
			fmt.Fprintf(stdout, "popbridge: console on http://%s/ (open it with: popbridge console)\n", con.Addr())
		}
	}
	if opts.ready != nil {
		opts.ready(loginURL)
	}

	cur := cfg
	first := true
	for {
		ictx, cancel := context.WithCancel(withShell(ctx, sh))
		errc := make(chan error, 1)
		go func() { errc <- serve(ictx, cur, log, stdout) }()
		select {
		case <-ctx.Done():
			cancel()
			<-errc
			return nil
		case <-sh.reload:
			cancel()
			if err := <-errc; err != nil {
				log.Warn("bridge stopped with an error before a restart", "err", err)
			}
			log.Info("configuration changed; restarting the bridge")
		case err := <-errc:
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("the bridge stopped")
			}
			if first && !opts.desktop {
				return err
			}
			log.Error("the bridge could not start", "err", err)
			fmt.Fprintf(stdout, "popbridge: %v\n", err)
			sh.svc.SetStartError(err)
			select {
			case <-ctx.Done():
				return nil
			case <-sh.reload:
			}
		}
		first = false
		cur = host.current()
	}
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
