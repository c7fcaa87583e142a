package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/popbridge/popbridge/autostart"
	"github.com/popbridge/popbridge/logfile"
)

// autostartEnv is the system autostart works on, and autostartEntry what
// the entry runs (tests replace both).
var (
	autostartEnv   = autostart.DefaultEnv
	autostartEntry = autostart.NewEntry
)

func runAutostart(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("autostart", "on|off|status [-config FILE] [-xdg] [-json]", stderr)
	cfgPath := fs.String("config", "", "configuration file (on: the entry starts popbridge with it)")
	xdg := fs.Bool("xdg", false, "Linux: use the desktop's autostart (~/.config/autostart) instead of a systemd user unit")
	asJSON := fs.Bool("json", false, "status: print JSON")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		fs.Usage()
		return 2
	}
	verb := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	env, err := autostartEnv()
	if err != nil {
		return fail(stderr, err)
	}
	ctx := context.Background()
	switch verb {
	case "on":
		cfg, err := loadConfigFlag(*cfgPath, stderr)
		if err != nil {
			return fail(stderr, err)
		}
		if err := cfg.CheckServe(); err != nil {
			return fail(stderr, err)
		}
		e, err := autostartEntry(cfg.Path, logfile.Dir(cfg.DataDir))
		if err != nil {
			return fail(stderr, err)
		}
		opts := autostart.Options{}
		if *xdg {
			opts.Method = autostart.MethodXDGAutostart
		}
		res, err := autostart.Enable(ctx, env, e, opts)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "Autostart is on (%s): popbridge starts with your session, using %s.\n", res.Method, cfg.Path)
		printResult(stdout, res)
	case "off":
		res, err := autostart.Disable(ctx, env)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintln(stdout, "Autostart is off.")
		printResult(stdout, res)
	case "status":
		exe, _ := os.Executable()
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		st, err := autostart.Check(ctx, env, exe)
		if err != nil {
			return fail(stderr, err)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(st)
			return 0
		}
		if !st.Enabled {
			fmt.Fprintln(stdout, "Autostart is off. Turn it on with: popbridge autostart on")
			return 0
		}
		fmt.Fprintf(stdout, "Autostart is on (%s)\n  entry:   %s\n  runs:    %s\n", st.Method, st.Where, strings.Join(st.Command, " "))
		if st.State != "" {
			fmt.Fprintf(stdout, "  state:   %s\n", st.State)
		}
		for _, p := range st.Problems {
			fmt.Fprintf(stdout, "  problem: %s\n", p.Text)
		}
	default:
		fmt.Fprintf(stderr, "popbridge autostart: unknown %q; use on, off or status\n", verb)
		return 2
	}
	return 0
}

func printResult(w io.Writer, res *autostart.Result) {
	for _, c := range res.Changed {
		fmt.Fprintf(w, "  %s\n", c)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", n.Text)
	}
}
