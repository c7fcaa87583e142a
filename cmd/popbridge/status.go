package main

import (
	"encoding/json"
	"fmt"
	"github.com/popbridge/popbridge/internal/units"
	"io"
	"text/tabwriter"

	"github.com/popbridge/popbridge/control"
)

func runStatus(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "[-config FILE] [-json]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	rep, err := getStatus(cfg)
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return 0
	}
	printStatus(stdout, rep)
	return 0
}

func printStatus(w io.Writer, rep *control.Status) {
	state := "not running (read from the data dir)"
	if rep.Running {
		state = "running"
	}
	fmt.Fprintf(w, "popbridge %s — bridge %s\n", rep.Version, state)
	if rep.Console != "" {
		fmt.Fprintf(w, "Console: http://%s/ (open it with: popbridge console)\n", rep.Console)
	}
	fmt.Fprintln(w)
	if q := rep.Quota; q != nil {
		switch {
		case q.Error != "":
			fmt.Fprintf(w, "Server quota: unknown (%s)\n\n", q.Error)
		case q.None || q.Limit <= 0:
			fmt.Fprintf(w, "Server quota: none — %s\n\n", control.NoQuotaText)
		default:
			fmt.Fprintf(w, "Server quota: %s used of %s (%s free)\n\n", humanBytes(q.Used), humanBytes(q.Limit), humanBytes(max(q.Limit-q.Used, 0)))
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "FOLDER\tMESSAGES\tSIZE\tON SERVER\tREMAINING\tHIDDEN\t\n")
	var total, onServer int
	var bytes int64
	for _, f := range rep.Folders {
		if f.NoSelect {
			continue
		}
		note := ""
		if f.Missing {
			note = " (missing from the archive)"
		}
		if f.Remote {
			fmt.Fprintf(tw, "%s (server)\t%d\t%s\t\t\t\t\n", f.Name, f.Messages, humanBytes(f.Bytes))
			continue
		}
		fmt.Fprintf(tw, "%s%s\t%d\t%s\t%d\t%d\t%d\t\n", f.Name, note, f.Messages, humanBytes(f.Bytes), f.OnServer, f.Messages-f.OnServer, f.Hidden)
		total += f.Messages
		onServer += f.OnServer
		bytes += f.Bytes
	}
	fmt.Fprintf(tw, "TOTAL (local)\t%d\t%s\t%d\t%d\t\t\n", total, humanBytes(bytes), onServer, total-onServer)
	tw.Flush()
	if len(rep.POP3) > 0 {
		fmt.Fprintln(w)
		printPOPStatus(w, rep.POP3)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(w, "\nProblems (skipped or unreadable):\n")
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
}

func humanBytes(n int64) string { return units.Bytes(n) }
