package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/units"
	"io"
	"os"
	"path/filepath"

	"github.com/popbridge/popbridge/uninstall"
)

func runUninstall(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("uninstall", "[-config FILE] [-data] [-yes]", stderr)
	cfgPath := fs.String("config", "", "configuration file (names the data dir and the archives)")
	data := fs.Bool("data", false, "also delete the data dir (index, your own Local/ messages, sign-ins, logs); never the archives")
	yes := fs.Bool("yes", false, "do not ask for confirmation (scripts)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	env, err := autostartEnv()
	if err != nil {
		return fail(stderr, err)
	}
	opts := uninstall.Options{RemoveData: *data, Autostart: &env}
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		opts.Exe = exe
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	switch {
	case err == nil:
		opts.DataDir, opts.Config = cfg.DataDir, cfg.Path
		for _, s := range cfg.Archive.Sources {
			opts.Sources = append(opts.Sources, s.Path)
		}
	case errors.Is(err, ErrNoConfig) && !*data:
		// Without a config there is still the autostart entry to remove.
	default:
		return fail(stderr, fmt.Errorf("%w (uninstall -data needs the config to know the data dir and the archives)", err))
	}
	ctx := context.Background()
	if *data {
		plan, err := uninstall.Check(ctx, opts)
		if err != nil {
			return fail(stderr, err)
		}
		if plan.Refused != "" && plan.DataExists {
			return fail(stderr, fmt.Errorf("%w %s: %s; nothing was removed", uninstall.ErrRefused, plan.DataDir, plan.Refused))
		}
		if plan.DataExists && !*yes {
			q := fmt.Sprintf("This deletes %s (%s)", plan.DataDir, humanSize(plan.DataBytes))
			if plan.OwnMessages > 0 {
				q += fmt.Sprintf(", including %d messages you copied or moved into Local/… that exist nowhere else", plan.OwnMessages)
			}
			q += ". Your archives stay."
			answered, ok := confirm(stdin, stdout, q)
			if !answered {
				return fail(stderr, errors.New("uninstall -data deletes the data dir: add -yes to confirm (there is no terminal to ask); nothing was removed"))
			}
			if !ok {
				fmt.Fprintln(stdout, "Nothing was removed.")
				return 1
			}
		}
	}
	rep, err := uninstall.Run(ctx, opts)
	if rep != nil {
		if len(rep.Removed) == 0 {
			fmt.Fprintln(stdout, "Removed: nothing (autostart was off).")
		}
		for _, r := range rep.Removed {
			fmt.Fprintf(stdout, "Removed: %s\n", r)
		}
		for _, k := range rep.Kept {
			fmt.Fprintf(stdout, "Left:    %s\n", k)
		}
		for _, n := range rep.Notes {
			fmt.Fprintf(stdout, "Note:    %s\n", n)
		}
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func humanSize(n int64) string { return units.Bytes(n) }
