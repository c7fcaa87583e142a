package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/popbridge/popbridge/instance"
	"github.com/popbridge/popbridge/logfile"
)

// consoleLoginURL mints a one-time console login URL for the control
// endpoint's POST /console-url (instance.Register); nil while this build
// has no console, and the endpoint answers 404.
var consoleLoginURL func(context.Context) (string, error)

// runStart is popbridge as a desktop app: what a double-click (no
// subcommand) and the autostart entry run. Unlike serve it does not fail
// when a bridge already runs on the data dir: it opens that bridge's
// console (with -autostart it just exits). Without a terminal it logs to
// the rotating file data_dir/logs/popbridge.log.
func runStart(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("start", "[-config FILE] [-autostart]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	auto := fs.Bool("autostart", false, "started at login by the autostart entry: when a bridge already runs, exit without opening its console")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	if err := cfg.CheckServe(); err != nil {
		return fail(stderr, err)
	}
	terminal := isTerminal(stderr)
	log, out, closeLog, err := startLogger(cfg, terminal, stdout, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeLog()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	softMemoryLimit()
	_, err = instance.Run(ctx, instance.Options{
		DataDir: cfg.DataDir,
		Serve:   func(ctx context.Context) error { return serve(ctx, cfg, log, out) },
		Locked:  isLocked,
		Quiet:   *auto,
		Out:     out,
		Log:     log,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("popbridge stopped", "err", err)
		return fail(stderr, err)
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// startLogger logs to [log] file when configured, else to the rotating
// file in the data dir (and the terminal, when there is one). Without a
// terminal, what serve prints for the user goes to the log as well.
func startLogger(cfg *Config, terminal bool, stdout, stderr io.Writer) (*slog.Logger, io.Writer, func(), error) {
	if cfg.Log.File != "" {
		log, closeFn, err := newLogger(cfg, stderr)
		return log, stdout, closeFn, err
	}
	w, err := logfile.Open(cfg.DataDir, logfile.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	var also io.Writer
	if terminal {
		also = stderr
	}
	log := logfile.NewLogger(w, also, cfg.Log.SlogLevel())
	out := stdout
	if !terminal {
		// Printed lines are logged too (first: a GUI-subsystem build on
		// Windows has no stdout to write to).
		out = io.MultiWriter(&lineLogger{log: log}, stdout)
	}
	return log, out, func() { w.Close() }, nil
}

// lineLogger turns printed lines into info records.
type lineLogger struct {
	log *slog.Logger
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimPrefix(strings.TrimSpace(string(l.buf[:i])), "popbridge: ")
		if line != "" {
			l.log.Info(line)
		}
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// confirm asks a yes/no question on a terminal; false without one.
func confirm(stdin io.Reader, stdout io.Writer, question string) (answered, yes bool) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, false
	}
	fmt.Fprintf(stdout, "%s Type yes to confirm: ", question)
	line, _ := bufio.NewReader(stdin).ReadString('\n')
	return true, strings.EqualFold(strings.TrimSpace(line), "yes")
}
