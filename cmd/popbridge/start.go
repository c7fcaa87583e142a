package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/popbridge/popbridge/logfile"
)

// runStart is popbridge as a desktop app: what a double-click (no
// command) and the autostart entry (start -autostart) run. It creates a
// configuration when there is none (the console's setup fills it in) and
// opens the console in the browser; when a bridge already runs on the data
// dir it opens that one's console instead of failing (with -autostart it
// just exits). It logs to the rotating file data_dir/logs/popbridge.log
// (the console shows it), and to the terminal when there is one.
func runStart(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("start", "[-config FILE] [-autostart]", stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the one popbridge finds, or a new one in your config dir)")
	auto := fs.Bool("autostart", false, "started at login by the autostart entry: no browser; when a bridge already runs, exit quietly")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	softMemoryLimit()
	if err := desktop(ctx, *cfgPath, *auto, stdout, stderr); err != nil {
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
