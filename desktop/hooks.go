// Package desktop is popbridge as a desktop app on the user's computer:
// the control API's SystemHooks — the console's "start with my computer"
// switch (package autostart), the Microsoft and Google sign-in of the new
// mailbox (package oauth), the uninstall button (package uninstall) and
// the log view (package logfile) — and the browser opener.
//
// Implementation notes:
//
//   - Everything goes through the control API: the console calls System,
//     SetSystem, UninstallPlan and Log, which the control Service passes
//     here. Nothing here reaches into the backend.
//   - A browser sign-in runs in the bridge process: Start listens on a
//     loopback port, popbridge opens the provider's page in the browser
//     (Options.Open), and the flow waits up to ten minutes in the
//     background for the browser to come back. When it completes,
//     SignedIn restarts the bridge so that it connects with the new
//     token, and Notify tells the console. System reports the sign-in's
//     state by asking the token store (an access token about to expire is
//     renewed then; a refresh token the provider refused becomes "needed",
//     worded by oauth.ConsentError.Text in both languages). Tokens and the
//     client secret never leave the token store and the config file.
//   - Uninstall from the console removes the autostart entry at once.
//     popbridge keeps running unless the user also asked to quit it
//     (SystemChange.Quit; the console's box for it is ticked by default,
//     since Windows does not let a running program be deleted); deleting
//     the data dir quits it (Options.Quit) and deletes the dir once
//     nothing holds it any more. The archives never go: package uninstall
//     refuses a data dir that is, holds or lies in one.
//   - "Quit popbridge" (SystemChange.Quit alone) stops it cleanly through
//     the same Options.Quit: the shell cancels the bridge, closes the
//     console and the control endpoint (control.json goes) and lets the
//     data dir go. The answer is sent first.
package desktop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/popbridge/popbridge/autostart"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/logfile"
	"github.com/popbridge/popbridge/oauth"
	"github.com/popbridge/popbridge/uninstall"
)

// Options wire the hooks to a running popbridge. DataDir and Config are
// required; zero values of the others get the documented defaults.
type Options struct {
	// DataDir is the bridge's data dir (sign-ins, logs).
	DataDir string
	// Config returns the configuration as it is now.
	Config func() Config
	// AutostartEnv is the system the autostart entry is on; nil:
	// autostart.DefaultEnv.
	AutostartEnv func() (autostart.Env, error)
	// AutostartEntry says what the entry runs; nil: autostart.NewEntry.
	AutostartEntry func(configPath, logDir string) (autostart.Entry, error)
	// Exe is this program, symlinks resolved: autostart notices an entry
	// that starts another one, and uninstall says it stays.
	Exe string
	// LogFile is the log the console shows ("" when popbridge logs to a
	// terminal only). The rotating log in the data dir is read with its
	// older files.
	LogFile string
	// Open opens a URL in the user's browser (the provider's sign-in
	// page); nil: OpenBrowser.
	Open func(url string) error
	// SignedIn is called when a browser sign-in completed (the bridge
	// restarts with it).
	SignedIn func()
	// Quit stops popbridge, then runs after (nil: nothing; a plain quit);
	// nil Quit: neither uninstall nor quit is offered.
	Quit func(after func(context.Context) error)
	// Notify says that System changed by itself (a sign-in finished).
	Notify func()
	// SignInTimeout bounds a browser sign-in; 0: 10 minutes.
	SignInTimeout time.Duration
	Logger        *slog.Logger
}

// Config is what the hooks need of the configuration.
type Config struct {
	Path    string   // the configuration file
	Sources []string // the [[archive.sources]] paths: never deleted
	// SignIn is the new mailbox's browser sign-in ([upstream.oauth2]);
	// nil when it has none.
	SignIn *SignIn
}

// SignIn is an account that signs in in the browser.
type SignIn struct {
	OAuth   oauth.Config
	Account string
}

// Hooks implements control.SystemHooks.
type Hooks struct {
	opts  Options
	log   *slog.Logger
	store *oauth.Store

	mu      sync.Mutex
	pending *flow
	notes   []control.SystemNote // what the last autostart change said
}

// flow is the current (or last) browser sign-in.
type flow struct {
	key    string // provider, client and account it is for
	url    string
	done   bool
	err    error
	cancel context.CancelFunc
}

// New returns the hooks.
func New(opts Options) *Hooks {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AutostartEnv == nil {
		opts.AutostartEnv = autostart.DefaultEnv
	}
	if opts.AutostartEntry == nil {
		opts.AutostartEntry = autostart.NewEntry
	}
	if opts.Open == nil {
		opts.Open = OpenBrowser
	}
	if opts.SignInTimeout <= 0 {
		opts.SignInTimeout = 10 * time.Minute
	}
	return &Hooks{opts: opts, log: opts.Logger, store: oauth.NewStore(opts.DataDir)}
}

// Close cancels a sign-in under way.
func (h *Hooks) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending != nil && !h.pending.done {
		h.pending.cancel()
	}
}

var _ control.SystemHooks = (*Hooks)(nil)

// System implements control.SystemHooks.
func (h *Hooks) System(ctx context.Context) (*control.System, error) {
	cfg := h.opts.Config()
	sys := &control.System{
		Uninstall:       h.opts.Quit != nil,
		Quit:            h.opts.Quit != nil,
		SignInProviders: []string{oauth.Microsoft, oauth.Google},
		LogFile:         h.opts.LogFile,
	}
	h.autostartState(ctx, sys)
	sys.SignIn = h.signInState(ctx, cfg)
	return sys, nil
}

// SetSystem implements control.SystemHooks.
func (h *Hooks) SetSystem(ctx context.Context, ch control.SystemChange) (*control.System, error) {
	var (
		signInURL string
		report    *control.UninstallReport
		stopping  bool
	)
	switch {
	case ch.Uninstall:
		rep, err := h.uninstall(ctx, ch.RemoveData, ch.Quit)
		if err != nil {
			return nil, err
		}
		report, stopping = rep, ch.Quit || ch.RemoveData
	case ch.Quit:
		if err := h.quit(); err != nil {
			return nil, err
		}
		stopping = true
	case ch.Autostart != nil:
		if err := h.setAutostart(ctx, *ch.Autostart); err != nil {
			return nil, err
		}
	case ch.SignIn != "":
		u, err := h.signIn(ch.SignIn)
		if err != nil {
			return nil, err
		}
		signInURL = u
	default:
		return nil, &control.Error{Code: control.CodeBadRequest, Message: "nothing to change", Status: 400}
	}
	sys, err := h.System(ctx)
	if err != nil {
		return nil, err
	}
	sys.SignInURL = signInURL
	if report != nil {
		sys.UninstallScheduled, sys.Uninstalled = stopping, report
	}
	sys.Stopping = stopping
	h.mu.Lock()
	sys.AutostartNotes = h.notes
	h.mu.Unlock()
	return sys, nil
}

// ---------------------------------------------------------------------
// Autostart

func (h *Hooks) autostartState(ctx context.Context, sys *control.System) {
	off := false
	sys.Autostart = &off
	env, err := h.opts.AutostartEnv()
	if err != nil {
		sys.AutostartError = err.Error()
		return
	}
	st, err := autostart.Check(ctx, env, h.opts.Exe)
	if err != nil {
		sys.AutostartError = err.Error()
		return
	}
	on := st.Enabled
	sys.Autostart = &on
	if !on {
		return
	}
	sys.AutostartMethod, sys.AutostartWhere = st.Method, st.Where
	for _, p := range st.Problems {
		sys.AutostartProblems = append(sys.AutostartProblems, control.SystemNote{Code: p.Code, Text: p.Text, Params: p.Params})
	}
}

// Reasons of a CodeAutostart error (Params["reason"]).
const (
	ReasonNoUserSystemd = "no-user-systemd" // Linux without a systemd user manager or a desktop session
	ReasonUnsupported   = "unsupported"     // an operating system autostart does not know
	ReasonProgram       = "program"         // this copy of popbridge would not survive a reboot (go run, App Translocation)
	ReasonFailed        = "failed"          // anything else: the message says what
)

func (h *Hooks) setAutostart(ctx context.Context, on bool) error {
	env, err := h.opts.AutostartEnv()
	if err != nil {
		return autostartErr(ReasonFailed, err)
	}
	var res *autostart.Result
	if on {
		cfg := h.opts.Config()
		e, err := h.opts.AutostartEntry(cfg.Path, logfile.Dir(h.opts.DataDir))
		if err != nil {
			return autostartErr(ReasonProgram, err)
		}
		res, err = autostart.Enable(ctx, env, e, autostart.Options{})
		switch {
		case errors.Is(err, autostart.ErrNoUserSystemd):
			return autostartErr(ReasonNoUserSystemd, err)
		case errors.Is(err, autostart.ErrUnsupported):
			return autostartErr(ReasonUnsupported, err)
		case err != nil:
			return autostartErr(ReasonFailed, err)
		}
		h.log.Info("autostart turned on in the console", "method", res.Method, "changed", strings.Join(res.Changed, "; "))
	} else {
		res, err = autostart.Disable(ctx, env)
		if err != nil {
			return autostartErr(ReasonFailed, err)
		}
		h.log.Info("autostart turned off in the console", "changed", strings.Join(res.Changed, "; "))
	}
	var notes []control.SystemNote
	for _, n := range res.Notes {
		notes = append(notes, control.SystemNote{Code: n.Code, Text: n.Text})
	}
	h.mu.Lock()
	h.notes = notes
	h.mu.Unlock()
	return nil
}

func autostartErr(reason string, err error) error {
	return &control.Error{Code: control.CodeAutostart, Message: err.Error(), Params: map[string]string{"reason": reason}, Status: 409}
}

// ---------------------------------------------------------------------
// Sign-in

func signInKey(s *SignIn) string {
	return s.OAuth.Provider + "\x00" + s.OAuth.ClientID + "\x00" + strings.ToLower(s.Account)
}

// signIn starts a browser sign-in of the configured account and opens
// the provider's page; it returns the page's address.
func (h *Hooks) signIn(provider string) (string, error) {
	cfg := h.opts.Config()
	si := cfg.SignIn
	if si == nil {
		return "", &control.Error{Code: control.CodeSignIn, Message: "the new mailbox does not sign in in the browser: save it with its sign-in settings ([upstream.oauth2]) first", Status: 409}
	}
	if si.OAuth.Provider != provider {
		return "", &control.Error{Code: control.CodeSignIn, Message: fmt.Sprintf("the new mailbox signs in with %s, not %s", si.OAuth.Provider, provider), Status: 409}
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.SignInTimeout)
	f, err := oauth.Start(ctx, oauth.LoginOptions{Config: si.OAuth, Store: h.store, Account: si.Account, Log: h.log})
	if err != nil {
		cancel()
		return "", &control.Error{Code: control.CodeSignIn, Message: err.Error(), Status: 409}
	}
	fl := &flow{key: signInKey(si), url: f.AuthURL, cancel: cancel}
	h.mu.Lock()
	if h.pending != nil && !h.pending.done {
		h.pending.cancel() // a newer click wins
	}
	h.pending = fl
	h.mu.Unlock()
	go func() {
		err := f.Wait(ctx)
		cancel()
		h.mu.Lock()
		fl.done, fl.err = true, err
		h.mu.Unlock()
		if err != nil {
			h.log.Warn("browser sign-in did not complete", "account", si.Account, "err", err)
		} else if h.opts.SignedIn != nil {
			h.opts.SignedIn()
		}
		if h.opts.Notify != nil {
			h.opts.Notify()
		}
	}()
	if err := h.opts.Open(f.AuthURL); err != nil {
		h.log.Warn("could not open the browser for the sign-in; the console shows the link", "err", err)
	}
	return f.AuthURL, nil
}

// signInState says where the configured account's sign-in stands.
func (h *Hooks) signInState(ctx context.Context, cfg Config) *control.SignIn {
	si := cfg.SignIn
	if si == nil {
		return nil
	}
	st := &control.SignIn{Provider: si.OAuth.Provider, Account: si.Account}
	h.mu.Lock()
	fl := h.pending
	if fl != nil && fl.key != signInKey(si) {
		fl = nil // a sign-in for settings since changed
	}
	var (
		waiting bool
		url     string
		ferr    error
	)
	if fl != nil {
		waiting, url, ferr = !fl.done, fl.url, fl.err
	}
	h.mu.Unlock()
	switch {
	case waiting:
		st.State, st.URL = control.SignInWaiting, url
		return st
	case ferr != nil && !errors.Is(ferr, context.Canceled):
		h.fail(st, ferr)
		return st
	}
	saved, err := h.store.Load(si.OAuth.Provider, si.Account)
	if err != nil {
		st.State, st.Detail = control.SignInError, err.Error()
		return st
	}
	if saved == nil {
		h.fail(st, &oauth.ConsentError{Provider: presetName(si.OAuth), Account: si.Account, Reason: oauth.ReasonNotSignedIn})
		return st
	}
	// The token source renews an access token about to expire: a refresh
	// token the provider no longer accepts shows here.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := oauth.NewSource(si.OAuth, h.store, si.Account, h.log).Token(cctx, false); err != nil {
		h.fail(st, err)
		return st
	}
	st.State = control.SignedIn
	if s, err := h.store.Load(si.OAuth.Provider, si.Account); err == nil && s != nil {
		st.Expires = s.Expiry
	}
	return st
}

// fail words a sign-in that is needed or went wrong.
func (h *Hooks) fail(st *control.SignIn, err error) {
	var ce *oauth.ConsentError
	if errors.As(err, &ce) {
		st.State, st.Reason, st.Texts = control.SignInNeeded, ce.Reason, control.ConsentTexts(ce)
		st.Detail = ce.Detail
		return
	}
	st.State, st.Detail = control.SignInError, err.Error()
}

func presetName(c oauth.Config) string {
	if p, err := c.Preset(); err == nil {
		return p.Name
	}
	return c.Provider
}

// ---------------------------------------------------------------------
// Uninstall

func (h *Hooks) uninstallOptions(removeData, self bool) (uninstall.Options, error) {
	env, err := h.opts.AutostartEnv()
	if err != nil {
		return uninstall.Options{}, err
	}
	cfg := h.opts.Config()
	return uninstall.Options{DataDir: h.opts.DataDir, Sources: cfg.Sources, Config: cfg.Path, Exe: h.opts.Exe,
		RemoveData: removeData, Autostart: &env, Self: self}, nil
}

// UninstallPlan implements control.SystemHooks.
func (h *Hooks) UninstallPlan(ctx context.Context) (*control.UninstallPlan, error) {
	if h.opts.Quit == nil {
		return nil, &control.Error{Code: control.CodeUnsupported, Message: "uninstall is not offered here", Status: 404}
	}
	opts, err := h.uninstallOptions(true, true)
	if err != nil {
		return nil, err
	}
	p, err := uninstall.Check(ctx, opts)
	if err != nil {
		return nil, err
	}
	out := &control.UninstallPlan{DataDir: p.DataDir, DataExists: p.DataExists, DataBytes: p.DataBytes, OwnMessages: p.OwnMessages,
		Refused: p.Refused, RefusedCode: p.RefusedCode, Archives: append([]string{}, opts.Sources...), Config: opts.Config, Program: opts.Exe}
	if p.Autostart != nil && p.Autostart.Enabled {
		out.AutostartOn, out.AutostartWhere = true, p.Autostart.Where
	}
	return out, nil
}

// uninstall removes autostart now and, when asked to quit or to delete
// the data dir, stops popbridge and deletes the data dir once it has
// stopped.
func (h *Hooks) uninstall(ctx context.Context, removeData, quit bool) (*control.UninstallReport, error) {
	if h.opts.Quit == nil {
		return nil, &control.Error{Code: control.CodeUnsupported, Message: "uninstall is not offered here", Status: 404}
	}
	opts, err := h.uninstallOptions(removeData, true)
	if err != nil {
		return nil, err
	}
	plan, err := uninstall.Check(ctx, opts)
	if err != nil {
		return nil, err
	}
	if removeData && plan.DataExists && plan.Refused != "" {
		return nil, &control.Error{Code: control.CodeRefused, Message: fmt.Sprintf("%v %s: %s; nothing was removed", uninstall.ErrRefused, opts.DataDir, plan.Refused),
			Params: map[string]string{"reason": plan.RefusedCode, "dir": opts.DataDir}, Status: 409}
	}
	// Autostart first (now), so that popbridge does not come back.
	now := opts
	now.RemoveData = false
	rep, err := uninstall.Run(ctx, now)
	if err != nil {
		return nil, &control.Error{Code: control.CodeInternal, Message: err.Error(), Status: 500}
	}
	out := &control.UninstallReport{Removed: append([]string{}, rep.Removed...), Kept: rep.Kept, Notes: rep.Notes}
	if removeData && plan.DataExists {
		out.DataDir = opts.DataDir
		var kept []string
		for _, k := range rep.Kept {
			if !strings.HasPrefix(k, "data dir ") {
				kept = append(kept, k)
			}
		}
		out.Kept = kept
	}
	h.log.Info("uninstall from the console", "removed", strings.Join(rep.Removed, "; "), "data_dir", out.DataDir, "quit", quit || removeData)
	if !quit && !removeData {
		return out, nil // popbridge runs on, until it is quit or the computer stops
	}
	later := opts
	later.Self = false // by then popbridge has let the data dir go
	h.Close()
	h.opts.Quit(func(ctx context.Context) error {
		if !later.RemoveData || !plan.DataExists {
			return nil
		}
		_, err := uninstall.Run(ctx, later)
		return err
	})
	return out, nil
}

// quit stops popbridge: the shell ends everything once this answer is
// sent.
func (h *Hooks) quit() error {
	if h.opts.Quit == nil {
		return &control.Error{Code: control.CodeUnsupported, Message: "popbridge cannot be quit from here", Status: 404}
	}
	h.log.Info("quit from the console")
	h.Close()
	h.opts.Quit(nil)
	return nil
}

// ---------------------------------------------------------------------
// Log

// Log implements control.SystemHooks.
func (h *Hooks) Log(ctx context.Context, lines int) (*control.Log, error) {
	if h.opts.LogFile == "" {
		return nil, &control.Error{Code: control.CodeUnsupported, Message: "popbridge logs to the terminal it was started in, not to a file", Status: 404}
	}
	var (
		out []string
		err error
	)
	if h.opts.LogFile == logfile.Path(h.opts.DataDir) {
		out, err = logfile.Tail(h.opts.DataDir, lines)
	} else {
		out, err = logfile.TailFile(h.opts.LogFile, lines)
	}
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return &control.Log{File: h.opts.LogFile, Lines: out}, nil
}
