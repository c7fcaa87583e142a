package main

// popbridge with no command (a double-click on Windows or macOS), and
// `popbridge console`.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/popbridge/popbridge/control"
)

// openBrowser opens url in the default browser; tests replace it.
var openBrowser = func(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	case "darwin":
		cmd = exec.Command("open", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

// runDesktop starts popbridge as a desktop app: with the configuration it
// finds or, when there is none, a new one in the user's config dir (the
// console's setup fills it in); the console opens in the browser.
func runDesktop(stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	softMemoryLimit()
	if err := desktop(ctx, stdout, stderr); err != nil {
		return fail(stderr, err)
	}
	return 0
}

// desktop is runDesktop until ctx ends.
func desktop(ctx context.Context, stdout, stderr io.Writer) error {
	path, err := FindConfig("")
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
	cfg, err := loadConfigFlag(path, stderr)
	if err != nil {
		return err
	}
	return runShell(ctx, cfg, shellOptions{desktop: true}, stdout, stderr)
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
