// Package instance keeps popbridge to one bridge per data dir, the way a
// desktop app is one window: starting popbridge again (a double-click, the
// autostart entry, `popbridge start`) while a bridge runs on the same data
// dir opens that bridge's console instead of failing.
//
// Implementation notes:
//
//   - The lock is the database's: bbolt holds an exclusive flock (Windows:
//     LockFileEx) on data_dir/popbridge.db while the bridge runs, and the
//     kernel releases it when the process dies, however it dies. A crash
//     leaves no lock to clean up.
//   - The running bridge publishes data_dir/control.json (Info: the control
//     endpoint's loopback address, a random bearer token, its pid; mode
//     0600, written atomically). After a crash the file stays behind. It is
//     stale when its pid is not alive, or when its address does not answer
//     with that token (connection refused, or someone else's server on a
//     recycled port answering 401). A stale file is never trusted and never
//     deleted here (a bridge starting at the same moment may be replacing
//     it): the next bridge overwrites it once it holds the database lock.
//   - Run is the start-up sequence: a live bridge → open its console; else
//     serve; if serving finds the database locked (a bridge still starting,
//     or `import`/`migrate` working without one), wait for that bridge's
//     control endpoint to answer and open its console, or say who holds the
//     data dir.
//   - The console URL comes from the bridge (POST /console-url on the
//     control endpoint, registered by Register): the console mints a
//     one-time login token for it. The browser is opened through Opener, a
//     variable tests replace.
package instance

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FileName is the control file in the data dir.
const FileName = "control.json"

// Info is the content of control.json: how to reach the running bridge.
type Info struct {
	Addr  string `json:"addr"`  // loopback host:port of the control endpoint
	Token string `json:"token"` // bearer token
	PID   int    `json:"pid"`
}

// File returns the control file of a data dir.
func File(dataDir string) string { return filepath.Join(dataDir, FileName) }

// ErrNotRunning means no bridge answers for the data dir.
var ErrNotRunning = errors.New("no popbridge is running on this data directory")

// ErrNoConsole means the running bridge has no console to open (turned
// off, or a build without one).
var ErrNoConsole = errors.New("the running popbridge has no console")

// Read returns the control file's content (not checked for life).
func Read(dataDir string) (*Info, error) {
	b, err := os.ReadFile(File(dataDir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNotRunning
		}
		return nil, err
	}
	var in Info
	if err := json.Unmarshal(b, &in); err != nil || in.Addr == "" || in.Token == "" {
		return nil, fmt.Errorf("%w (%s is damaged)", ErrNotRunning, File(dataDir))
	}
	return &in, nil
}

// Publish writes a fresh control file for this process: addr, a new random
// token and os.Getpid(). The caller must hold the data dir (the database
// lock), so the file it replaces is stale.
func Publish(dataDir, addr string) (*Info, error) {
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	in := &Info{Addr: addr, Token: hex.EncodeToString(tok[:]), PID: os.Getpid()}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	path := File(dataDir)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return in, nil
}

// Unpublish removes the control file if it is still in's.
func Unpublish(dataDir string, in *Info) {
	if cur, err := Read(dataDir); err == nil && cur.Token == in.Token {
		os.Remove(File(dataDir))
	}
}

// Endpoint paths on the control endpoint.
const (
	PingPath       = "/instance"    // GET: {"pid": N}
	ConsoleURLPath = "/console-url" // POST: {"url": "http://127.0.0.1:…/…?login=…"}
)

// Register adds the instance routes to a control endpoint. auth wraps a
// handler with the bearer-token check; consoleURL returns a one-time
// console login URL (nil: the bridge has no console, 404).
func Register(mux *http.ServeMux, auth func(http.HandlerFunc) http.HandlerFunc, consoleURL func(context.Context) (string, error)) {
	mux.HandleFunc("GET "+PingPath, auth(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"pid": os.Getpid()})
	}))
	mux.HandleFunc("POST "+ConsoleURLPath, auth(func(w http.ResponseWriter, r *http.Request) {
		if consoleURL == nil {
			http.Error(w, ErrNoConsole.Error(), http.StatusNotFound)
			return
		}
		u, err := consoleURL(r.Context())
		if err != nil {
			if errors.Is(err, ErrNoConsole) {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]string{"url": u})
	}))
}

// Auth is the bearer-token check for in (for endpoints built on Register).
func Auth(in *Info) func(http.HandlerFunc) http.HandlerFunc {
	return func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			want := "Bearer " + in.Token
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
}

// errStale is a control file whose endpoint is someone else's or gone.
var errStale = errors.New("stale control file")

// call makes an authenticated request to the control endpoint.
func call(ctx context.Context, in *Info, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+in.Addr+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+in.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && (errors.Is(err, syscall.ECONNREFUSED) || op.Op == "dial") {
			return errStale
		}
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
	case http.StatusUnauthorized:
		return errStale // a recycled port: not our bridge
	case http.StatusNotFound:
		return ErrNoConsole
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("popbridge at %s: %s: %s", in.Addr, resp.Status, strings.TrimSpace(string(b)))
}

// Find returns the live bridge of dataDir, or an error wrapping
// ErrNotRunning (no control file, or a stale one).
func Find(ctx context.Context, dataDir string) (*Info, error) {
	in, err := Read(dataDir)
	if err != nil {
		return nil, err
	}
	if in.PID > 0 && !processAlive(in.PID) {
		return nil, fmt.Errorf("%w (the last one, pid %d, has ended)", ErrNotRunning, in.PID)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var pong struct {
		PID int `json:"pid"`
	}
	switch err := call(ctx, in, http.MethodGet, PingPath, &pong); {
	case err == nil:
		return in, nil
	case errors.Is(err, errStale), errors.Is(err, ErrNoConsole):
		// 404 on the ping path: an older bridge without it, or another
		// server; either way, no bridge to open.
		return nil, fmt.Errorf("%w (%s does not answer for it)", ErrNotRunning, in.Addr)
	default:
		return nil, fmt.Errorf("popbridge (pid %d) at %s does not answer: %w", in.PID, in.Addr, err)
	}
}

// ConsoleURL asks the running bridge for a one-time console login URL.
func ConsoleURL(ctx context.Context, in *Info) (string, error) {
	var out struct {
		URL string `json:"url"`
	}
	if err := call(ctx, in, http.MethodPost, ConsoleURLPath, &out); err != nil {
		if errors.Is(err, errStale) {
			return "", ErrNotRunning
		}
		return "", err
	}
	if !strings.HasPrefix(out.URL, "http://") && !strings.HasPrefix(out.URL, "https://") {
		return "", fmt.Errorf("popbridge at %s sent a console URL that is not http(s)", in.Addr)
	}
	return out.URL, nil
}

// Options configure Run.
type Options struct {
	DataDir string
	// Serve runs the bridge until ctx ends.
	Serve func(ctx context.Context) error
	// Locked reports whether an error of Serve means that another process
	// holds the data dir.
	Locked func(error) bool
	// Quiet (autostart) only says that a bridge runs; it does not open its
	// console: launchd and systemd start the entry when it is turned on,
	// and the console that turned it on is already open.
	Quiet bool
	// Open opens a URL in the browser; nil: Opener.
	Open func(url string) error
	// Out receives what the user should read (the console URL, who runs).
	Out io.Writer
	Log *slog.Logger
	// Wait is how long to wait for a bridge that holds the data dir to
	// answer on its control endpoint; 0: 30 s.
	Wait time.Duration
}

// Attached says Run found a bridge running and did not start one.
type Attached struct {
	Info *Info
	URL  string // the console URL opened, "" when none
}

// Run starts the bridge, or opens the console of the one already running
// on the data dir. It returns (nil, Serve's result) when it served, and
// (attached, nil) when another bridge was running.
func Run(ctx context.Context, opts Options) (*Attached, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if in, err := Find(ctx, opts.DataDir); err == nil {
		return attach(ctx, opts, in)
	} else if !errors.Is(err, ErrNotRunning) {
		return nil, err
	} else if _, rerr := Read(opts.DataDir); rerr == nil {
		opts.Log.Info("replacing a stale control file", "reason", err.Error())
	}
	err := opts.Serve(ctx)
	if err == nil || opts.Locked == nil || !opts.Locked(err) {
		return nil, err
	}
	// Someone holds the database: a bridge starting up (its control
	// endpoint comes last), or a command working without a bridge.
	fmt.Fprintf(opts.Out, "popbridge: another popbridge holds %s; waiting for it to answer…\n", opts.DataDir)
	wait := opts.Wait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if in, ferr := Find(ctx, opts.DataDir); ferr == nil {
			return attach(ctx, opts, in)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("%w; it did not answer within %s, so it is probably a command such as import or migrate working without a bridge: start popbridge again when it has finished", err, wait)
		case <-tick.C:
		}
	}
}

func attach(ctx context.Context, opts Options, in *Info) (*Attached, error) {
	a := &Attached{Info: in}
	if opts.Quiet {
		fmt.Fprintf(opts.Out, "popbridge is already running (pid %d); nothing to start\n", in.PID)
		opts.Log.Info("another popbridge is already running on this data dir; exiting", "pid", in.PID, "data_dir", opts.DataDir)
		return a, nil
	}
	u, err := ConsoleURL(ctx, in)
	if errors.Is(err, ErrNoConsole) {
		fmt.Fprintf(opts.Out, "popbridge is already running (pid %d); it has no console to open (`popbridge status` shows what it does)\n", in.PID)
		return a, nil
	}
	if err != nil {
		return a, fmt.Errorf("popbridge is already running (pid %d), but its console address could not be fetched: %w", in.PID, err)
	}
	a.URL = u
	open := opts.Open
	if open == nil {
		open = Opener
	}
	fmt.Fprintf(opts.Out, "popbridge is already running (pid %d); its console: %s\n", in.PID, u)
	if err := open(u); err != nil {
		fmt.Fprintf(opts.Out, "popbridge: could not open a browser (%v); open the address above yourself\n", err)
	}
	return a, nil
}
