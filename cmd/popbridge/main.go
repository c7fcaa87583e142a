// Command popbridge serves a legacy POP mail archive (Thunderbird, mbox,
// Maildir, .eml) and the user's real IMAP mailbox as one IMAP account.
//
// This package is the composition root: it reads the configuration and
// wires store, backend and server together; one file per subcommand.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/popbridge/popbridge/internal/buildinfo"
)

// version, commit and date are stamped at build time by scripts/release.sh
// (-ldflags "-X main.version=v1.2.3 -X main.commit=… -X main.date=…"); a
// `go install …@v1.2.3` build takes them from the Go build information.
var (
	version = devVersion
	commit  string
	date    string
)

const devVersion = "0.1.0-dev"

var build = buildinfo.Resolve(version, commit, date, devVersion)

func init() { version = build.Version }

type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"start", "start the bridge like a desktop app, or open the console of the one running (what a double-click does)", runStart},
		{"serve", "run the bridge: IMAP server over the archive (and upstream)", runServe},
		{"import", "index the legacy archives now, with progress, then exit", runImport},
		{"fetch", "run one POP3 fetch round now (-once) and print what it did", runFetch},
		{"migrate", "upload the legacy archive to the server in bulk (plan, quota check, resumable)", runMigrate},
		{"verify", "prove every in-scope legacy message is on the server; exit 1 if not", runVerify},
		{"status", "per-folder counts, on server / remaining, quota (asks a running bridge, or reads the data dir)", runStatus},
		{"console", "open the running bridge's web console in the browser (-print: print its one-time link)", runConsole},
		{"quit", "stop the running popbridge (what the console's Quit does)", runQuit},
		{"passwd", "print a password hash for [[users]]", runPasswd},
		{"login", "sign in to Microsoft or Google in the browser ([upstream.oauth2], [pop3.oauth2])", runLogin},
		{"autostart", "on|off|status: start popbridge with your session (no administrator rights)", runAutostart},
		{"uninstall", "remove autostart and, with -data, the data dir (never the archives)", runUninstall},
		{"demo", "bundled sample archive + embedded upstream, ready for a client", runDemo},
		{"version", "print the version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "popbridge %s — your old POP mail, on every device, over IMAP\n\nUsage: popbridge [<command> [flags]]\n\nWithout a command, popbridge runs with its web console and opens it in the browser\n(creating a configuration when there is none).\n\nCommands:\n", version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'popbridge <command> -h' for the flags of a command.\nConfiguration: -config FILE, $POPBRIDGE_CONFIG, ./popbridge.toml or the user config dir (see config.example.toml).\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		// A double-click: run as a desktop app with the console.
		return runStart(nil, stdin, stdout, stderr)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "-version", "--version":
		return runVersion(nil, stdin, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "popbridge: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func runVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "[-json]", stderr)
	asJSON := fs.Bool("json", false, "print version, commit, date, Go version and platform as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(build)
		return 0
	}
	fmt.Fprintln(stdout, build)
	return 0
}
