package main

// popbridge with no command (a double-click on Windows or macOS) is
// `popbridge start`; and `popbridge console` and `popbridge quit`.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/popbridge/popbridge/control"
	desktoppkg "github.com/popbridge/popbridge/desktop"
)

// openBrowser opens url in the default browser ($BROWSER when set); tests
// replace it.
var openBrowser = desktoppkg.OpenBrowser

// desktop runs popbridge as a desktop app until ctx ends: with the
// configuration at cfgPath, else the one it finds or, when there is none,
// a new one in the user's config dir (the console's setup fills it in).
// The console opens in the browser unless autostart.
func desktop(ctx context.Context, cfgPath string, autostart bool, stdout, stderr io.Writer) error {
	path := cfgPath
	var err error
	if path == "" {
		path, err = FindConfig("")
		if errors.Is(err, ErrNoConfig) && os.Getenv(configEnv) == "" {
			if path, err = defaultConfigPath(); err == nil {
				if _, err = newConfigFile(path, time.Now()); err == nil {
					fmt.Fprintf(stdout, "popbridge: created %s; the console walks you through the setup\n", path)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	cfg, err := loadConfigFlag(path, stderr)
	if err != nil {
		return err
	}
	return runShell(ctx, cfg, shellOptions{desktop: true, autostart: autostart}, stdout, stderr)
}

// runConsole opens (or prints) the running bridge's console.
func runConsole(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("console", "[-config FILE] [-print]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	printOnly := fs.Bool("print", false, "print the console's login link instead of opening the browser")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, cfg.DataDir)
	if errors.Is(err, control.ErrNoBridge) {
		return fail(stderr, errors.New("popbridge is not running: start it (double-click popbridge, or run popbridge serve), then try again"))
	}
	if err != nil {
		return fail(stderr, err)
	}
	u, err := c.ConsoleURL(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, u)
	if !*printOnly {
		if err := openBrowser(u); err != nil {
			fmt.Fprintf(stderr, "popbridge: could not open the browser (%v); open the link above yourself\n", err)
		}
	}
	return 0
}

// runQuit stops the running popbridge through its control endpoint, as
// the console's "Quit popbridge" does, and waits until it has let go of
// the data dir.
func runQuit(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("quit", "[-config FILE]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := control.Dial(ctx, cfg.DataDir)
	if errors.Is(err, control.ErrNoBridge) {
		fmt.Fprintln(stdout, "popbridge is not running")
		return 0
	}
	if err != nil {
		return fail(stderr, err)
	}
	pid := c.PID()
	if _, err := c.SetSystem(ctx, control.SystemChange{Quit: true}); err != nil {
		return fail(stderr, fmt.Errorf("popbridge (pid %d) could not be asked to stop: %w", pid, err))
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, held := control.Held(cfg.DataDir); !held {
			fmt.Fprintf(stdout, "popbridge (pid %d) has stopped\n", pid)
			return 0
		}
		select {
		case <-ctx.Done():
			return fail(stderr, fmt.Errorf("popbridge (pid %d) was asked to stop but still holds %s after a minute; if it hangs, end it (Task Manager, Activity Monitor or kill)", pid, cfg.DataDir))
		case <-tick.C:
		}
	}
}
