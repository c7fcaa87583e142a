package desktop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/autostart"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/internal/oauthtest"
	"github.com/popbridge/popbridge/logfile"
	"github.com/popbridge/popbridge/oauth"
)

// linuxDesktop is a Linux session without a systemd user manager but with
// a desktop: autostart writes ~/.config/autostart/popbridge.desktop.
// Nothing is installed on the test machine.
func linuxDesktop(t *testing.T) autostart.Env {
	home := t.TempDir()
	return autostart.Env{GOOS: "linux", Home: home, ConfigDir: filepath.Join(home, ".config"),
		Getenv: func(k string) string {
			if k == "XDG_CURRENT_DESKTOP" {
				return "GNOME"
			}
			return ""
		},
		Run: func(context.Context, string, ...string) ([]byte, error) {
			return []byte("Failed to connect to bus: No medium found"), errors.New("exit status 1")
		},
		LookPath: func(string) (string, error) { return "/usr/bin/systemctl", nil },
	}
}

type fixture struct {
	hooks   *Hooks
	env     autostart.Env
	dataDir string
	cfg     Config
	mu      sync.Mutex
	opened  []string
	quit    func(context.Context) error
	quits   int
	signed  int
	notify  chan struct{}
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{env: linuxDesktop(t), dataDir: filepath.Join(dir, "data"), notify: make(chan struct{}, 8)}
	os.MkdirAll(f.dataDir, 0o700)
	archive := filepath.Join(dir, "Mail", "Inbox")
	os.MkdirAll(filepath.Dir(archive), 0o700)
	os.WriteFile(archive, []byte("From a@b Thu Jan  1 00:00:00 2015\n\nold mail\n"), 0o600)
	cfgPath := filepath.Join(dir, "popbridge.toml")
	os.WriteFile(cfgPath, []byte("# test\n"), 0o600)
	f.cfg = Config{Path: cfgPath, Sources: []string{archive}}
	opts := Options{
		DataDir: f.dataDir,
		Config: func() Config {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.cfg
		},
		AutostartEnv: func() (autostart.Env, error) { return f.env, nil },
		AutostartEntry: func(cfg, logDir string) (autostart.Entry, error) {
			return autostart.Entry{Exe: "/opt/popbridge/popbridge", Args: autostart.Args(cfg), Config: cfg, LogDir: logDir}, nil
		},
		Exe: "/opt/popbridge/popbridge",
		Open: func(u string) error {
			f.mu.Lock()
			f.opened = append(f.opened, u)
			f.mu.Unlock()
			return nil
		},
		SignedIn: func() { f.mu.Lock(); f.signed++; f.mu.Unlock() },
		Quit:     func(after func(context.Context) error) { f.mu.Lock(); f.quit = after; f.quits++; f.mu.Unlock() },
		Notify:   func() { f.notify <- struct{}{} },
	}
	if mod != nil {
		mod(&opts)
	}
	f.hooks = New(opts)
	t.Cleanup(f.hooks.Close)
	return f
}

func codeOf(err error) (string, string) {
	var e *control.Error
	if errors.As(err, &e) {
		return e.Code, e.Params["reason"]
	}
	return "", ""
}

// TestAutostartSwitch: the switch writes the entry (here an XDG desktop
// file, nothing installed), reports where it is and, in plain words, that
// the program it starts is not there; off removes exactly that.
func TestAutostartSwitch(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	sys, err := f.hooks.System(ctx)
	if err != nil || sys.Autostart == nil || *sys.Autostart || !sys.Uninstall || len(sys.SignInProviders) != 2 {
		t.Fatalf("System before: %+v %v", sys, err)
	}
	on := true
	sys, err = f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &on})
	if err != nil {
		t.Fatal(err)
	}
	desktopFile := filepath.Join(f.env.Home, ".config", "autostart", "popbridge.desktop")
	b, err := os.ReadFile(desktopFile)
	if err != nil || !strings.Contains(string(b), "\nExec=/opt/popbridge/popbridge start -autostart -config "+f.cfg.Path+"\n") {
		t.Fatalf("desktop entry: %v\n%s", err, b)
	}
	if !*sys.Autostart || sys.AutostartMethod != autostart.MethodXDGAutostart || sys.AutostartWhere != desktopFile {
		t.Errorf("System after on: %+v", sys)
	}
	var codes []string
	for _, n := range sys.AutostartNotes {
		codes = append(codes, n.Code)
	}
	if strings.Join(codes, ",") != autostart.NoteXDGFallback+","+autostart.NoteNextLogin {
		t.Errorf("notes %q", codes)
	}
	// The entry starts /opt/popbridge/popbridge, which does not exist here:
	// the moved-program problem, with the path to word it.
	if len(sys.AutostartProblems) != 1 || sys.AutostartProblems[0].Code != autostart.ProblemMissingExe || sys.AutostartProblems[0].Params["exe"] != "/opt/popbridge/popbridge" {
		t.Errorf("problems %+v", sys.AutostartProblems)
	}
	off := false
	if sys, err = f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &off}); err != nil || *sys.Autostart {
		t.Fatalf("off: %+v %v", sys, err)
	}
	if _, err := os.Stat(desktopFile); !os.IsNotExist(err) {
		t.Errorf("desktop entry left: %v", err)
	}
	if _, err := os.Stat(autostart.RecordPath(f.env)); !os.IsNotExist(err) {
		t.Errorf("record left: %v", err)
	}
}

// TestAutostartErrors: what cannot be done is said with a reason the
// console words.
func TestAutostartErrors(t *testing.T) {
	ctx := context.Background()
	on := true
	f := newFixture(t, func(o *Options) {
		o.AutostartEntry = func(string, string) (autostart.Entry, error) {
			return autostart.Entry{}, errors.New("autostart: popbridge runs from a temporary build")
		}
	})
	if _, err := f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &on}); err == nil {
		t.Fatal("a temporary program was accepted")
	} else if code, reason := codeOf(err); code != control.CodeAutostart || reason != ReasonProgram {
		t.Errorf("temporary program: %v (%s/%s)", err, code, reason)
	}
	f = newFixture(t, nil)
	f.env.Getenv = func(string) string { return "" } // no desktop session either
	if _, err := f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &on}); err == nil {
		t.Fatal("no way to start was accepted")
	} else if code, reason := codeOf(err); code != control.CodeAutostart || reason != ReasonNoUserSystemd || !strings.Contains(err.Error(), "crontab") {
		t.Errorf("no user systemd: %v (%s/%s)", err, code, reason)
	}
}

// TestSignIn: the sign-in opens the provider's page, completes when the
// browser comes back, says "signed in" and restarts the bridge; a refresh
// token the provider withdrew becomes "needed", in plain words in both
// languages. No token ever appears in what System returns.
func TestSignIn(t *testing.T) {
	fake := oauthtest.Start(t, "console-client")
	preset := &oauth.Preset{Name: "Microsoft", AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), Scopes: []string{"imap", "offline_access"}, RedirectHost: "127.0.0.1"}
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.hooks.SetSystem(ctx, control.SystemChange{SignIn: oauth.Microsoft}); err == nil {
		t.Fatal("a sign-in without [upstream.oauth2] started")
	} else if code, _ := codeOf(err); code != control.CodeSignIn {
		t.Errorf("no sign-in settings: %v", err)
	}
	f.mu.Lock()
	f.cfg.SignIn = &SignIn{OAuth: oauth.Config{Provider: oauth.Microsoft, ClientID: "console-client", Override: preset}, Account: "alice@outlook.com"}
	f.mu.Unlock()
	if _, err := f.hooks.SetSystem(ctx, control.SystemChange{SignIn: oauth.Google}); err == nil {
		t.Fatal("a Google sign-in started for a Microsoft account")
	}
	sys, err := f.hooks.System(ctx)
	if err != nil || sys.SignIn == nil || sys.SignIn.State != control.SignInNeeded || sys.SignIn.Reason != oauth.ReasonNotSignedIn {
		t.Fatalf("before signing in: %+v %v", sys.SignIn, err)
	}
	sys, err = f.hooks.SetSystem(ctx, control.SystemChange{SignIn: oauth.Microsoft})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	opened := append([]string(nil), f.opened...)
	f.mu.Unlock()
	if len(opened) != 1 || opened[0] != sys.SignInURL || !strings.HasPrefix(sys.SignInURL, fake.AuthURL()+"?") ||
		sys.SignIn.State != control.SignInWaiting || sys.SignIn.URL != sys.SignInURL {
		t.Fatalf("sign-in start: opened %q, %+v", opened, sys)
	}
	// The user's browser.
	if code, page, err := oauthtest.Authorize(opened[0]); err != nil || code != 200 || !strings.Contains(page, "Signed in") {
		t.Fatalf("browser: %d %v\n%s", code, err, page)
	}
	select {
	case <-f.notify:
	case <-time.After(30 * time.Second):
		t.Fatal("no notice that the sign-in finished")
	}
	sys, err = f.hooks.System(ctx)
	if err != nil || sys.SignIn.State != control.SignedIn || sys.SignIn.Account != "alice@outlook.com" || sys.SignIn.Expires.IsZero() {
		t.Fatalf("after signing in: %+v %v", sys.SignIn, err)
	}
	f.mu.Lock()
	signed := f.signed
	f.mu.Unlock()
	if signed != 1 {
		t.Errorf("SignedIn called %d times", signed)
	}
	// The provider withdraws the sign-in; the next renewal finds out.
	fake.RevokeRefreshTokens()
	saved, err := oauth.NewStore(f.dataDir).Load(oauth.Microsoft, "alice@outlook.com")
	if err != nil || saved == nil {
		t.Fatal(err)
	}
	tokens := fake.Tokens()
	saved.Expiry = time.Now().Add(time.Minute) // due for renewal
	if err := oauth.NewStore(f.dataDir).Save(oauth.Config{Provider: oauth.Microsoft, ClientID: "console-client"}, "alice@outlook.com", saved.Token()); err != nil {
		t.Fatal(err)
	}
	sys, err = f.hooks.System(ctx)
	if err != nil || sys.SignIn.State != control.SignInNeeded || sys.SignIn.Reason != oauth.ReasonRevoked {
		t.Fatalf("after the provider withdrew it: %+v %v", sys.SignIn, err)
	}
	if !strings.Contains(sys.SignIn.Texts["en"], "no longer accepts") || !strings.Contains(sys.SignIn.Texts["ja"], "受け付けなくなりました") {
		t.Errorf("re-consent texts %q", sys.SignIn.Texts)
	}
	all := sys.SignIn.Detail + strings.Join([]string{sys.SignIn.Texts["en"], sys.SignIn.Texts["ja"], sys.SignInURL}, " ")
	for _, tok := range tokens {
		if strings.Contains(all, tok) {
			t.Error("a token appears in System")
		}
	}
}

// TestSignInDeclined: a user who says no in the browser is told so.
func TestSignInDeclined(t *testing.T) {
	fake := oauthtest.Start(t, "console-client")
	fake.SetDeny(true)
	f := newFixture(t, nil)
	f.cfg.SignIn = &SignIn{OAuth: oauth.Config{Provider: oauth.Google, ClientID: "console-client",
		Override: &oauth.Preset{Name: "Google", AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), Scopes: []string{"mail"}, RedirectHost: "127.0.0.1"}}, Account: "taro@gmail.com"}
	sys, err := f.hooks.SetSystem(context.Background(), control.SystemChange{SignIn: oauth.Google})
	if err != nil {
		t.Fatal(err)
	}
	oauthtest.Authorize(sys.SignInURL)
	<-f.notify
	sys, _ = f.hooks.System(context.Background())
	if sys.SignIn.State != control.SignInNeeded || sys.SignIn.Reason != oauth.ReasonDeclined || !strings.Contains(sys.SignIn.Texts["ja"], "取り消された") {
		t.Errorf("declined: %+v", sys.SignIn)
	}
	if f.signed != 0 {
		t.Error("SignedIn after a refusal")
	}
}

// TestUninstall: the plan says what goes and what stays (the archive, the
// config, the program, and the messages only the data dir holds); the
// uninstall removes autostart at once and the data dir only once
// popbridge has stopped; the archive is untouched.
func TestUninstall(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	on := true
	if _, err := f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &on}); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(f.dataDir, "maildir", "Inbox", "cur", "1:2,S")
	os.MkdirAll(filepath.Dir(own), 0o700)
	os.WriteFile(own, []byte("Subject: only here\n\n"), 0o600)
	plan, err := f.hooks.UninstallPlan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.AutostartOn || plan.DataDir != f.dataDir || !plan.DataExists || plan.OwnMessages != 1 || plan.Refused != "" ||
		len(plan.Archives) != 1 || plan.Archives[0] != f.cfg.Sources[0] || plan.Config != f.cfg.Path || plan.Program != "/opt/popbridge/popbridge" {
		t.Fatalf("plan %+v", plan)
	}
	sys, err := f.hooks.SetSystem(ctx, control.SystemChange{Uninstall: true, RemoveData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !sys.UninstallScheduled || !sys.Stopping || sys.Uninstalled == nil || sys.Uninstalled.DataDir != f.dataDir || len(sys.Uninstalled.Removed) != 1 || *sys.Autostart {
		t.Fatalf("uninstall answer %+v %+v", sys, sys.Uninstalled)
	}
	if _, err := os.Stat(f.dataDir); err != nil {
		t.Fatal("the data dir went before popbridge stopped")
	}
	f.mu.Lock()
	after := f.quit
	f.mu.Unlock()
	if after == nil {
		t.Fatal("popbridge was not asked to stop")
	}
	if err := after(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.dataDir); !os.IsNotExist(err) {
		t.Errorf("data dir left: %v", err)
	}
	if b, err := os.ReadFile(f.cfg.Sources[0]); err != nil || !strings.Contains(string(b), "old mail") {
		t.Errorf("the archive: %v", err)
	}
	if _, err := os.Stat(f.cfg.Path); err != nil {
		t.Errorf("the config: %v", err)
	}
}

// TestUninstallKeepsRunning: an uninstall without deleting the data and
// without quitting removes autostart and leaves popbridge running; with
// Quit it stops popbridge but keeps the data dir.
func TestUninstallKeepsRunning(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	on := true
	if _, err := f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &on}); err != nil {
		t.Fatal(err)
	}
	sys, err := f.hooks.SetSystem(ctx, control.SystemChange{Uninstall: true})
	if err != nil {
		t.Fatal(err)
	}
	if sys.Stopping || sys.UninstallScheduled || sys.Uninstalled == nil || len(sys.Uninstalled.Removed) != 1 || sys.Uninstalled.DataDir != "" || *sys.Autostart {
		t.Fatalf("uninstall answer %+v %+v", sys, sys.Uninstalled)
	}
	f.mu.Lock()
	quits := f.quits
	f.mu.Unlock()
	if quits != 0 {
		t.Fatal("an uninstall without quit stopped popbridge")
	}
	if _, err := os.Stat(f.dataDir); err != nil {
		t.Fatal(err)
	}

	// Again, asking to quit too: the data dir stays.
	f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &on})
	sys, err = f.hooks.SetSystem(ctx, control.SystemChange{Uninstall: true, Quit: true})
	if err != nil {
		t.Fatal(err)
	}
	if !sys.Stopping || !sys.UninstallScheduled || sys.Uninstalled.DataDir != "" || len(sys.Uninstalled.Removed) != 1 || *sys.Autostart {
		t.Fatalf("uninstall and quit answer %+v %+v", sys, sys.Uninstalled)
	}
	f.mu.Lock()
	quits, after := f.quits, f.quit
	f.mu.Unlock()
	if quits != 1 || after == nil {
		t.Fatalf("popbridge asked to stop %d times", quits)
	}
	if err := after(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.dataDir); err != nil {
		t.Errorf("the data dir went without being asked: %v", err)
	}
}

// TestQuit: Quit is offered where uninstall is; it asks the shell to stop
// with nothing to do after it, and changes nothing else.
func TestQuit(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	on := true
	if _, err := f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &on}); err != nil {
		t.Fatal(err)
	}
	sys, err := f.hooks.System(ctx)
	if err != nil || !sys.Quit || sys.Stopping {
		t.Fatalf("system %+v %v", sys, err)
	}
	sys, err = f.hooks.SetSystem(ctx, control.SystemChange{Quit: true})
	if err != nil {
		t.Fatal(err)
	}
	if !sys.Stopping || sys.UninstallScheduled || sys.Uninstalled != nil || !*sys.Autostart {
		t.Fatalf("quit answer %+v", sys)
	}
	f.mu.Lock()
	quits, after := f.quits, f.quit
	f.mu.Unlock()
	if quits != 1 || after != nil {
		t.Fatalf("quit: asked %d times, after %v", quits, after != nil)
	}
	if _, err := os.Stat(f.dataDir); err != nil {
		t.Error(err)
	}

	// Without a shell to stop, quit is neither offered nor done.
	g := newFixture(t, func(o *Options) { o.Quit = nil })
	if sys, _ := g.hooks.System(ctx); sys.Quit || sys.Uninstall {
		t.Errorf("offered without a shell: %+v", sys)
	}
	if _, err := g.hooks.SetSystem(ctx, control.SystemChange{Quit: true}); control.CodeOf(err) != control.CodeUnsupported {
		t.Errorf("quit without a shell: %v", err)
	}
}

// TestUninstallRefused: a data dir that holds an archive is not deleted,
// and nothing else changes either.
func TestUninstallRefused(t *testing.T) {
	f := newFixture(t, nil)
	inside := filepath.Join(f.dataDir, "old.mbox")
	os.WriteFile(inside, []byte("From a@b Thu Jan  1 00:00:00 2015\n\nx\n"), 0o600)
	f.cfg.Sources = append(f.cfg.Sources, inside)
	ctx := context.Background()
	on := true
	f.hooks.SetSystem(ctx, control.SystemChange{Autostart: &on})
	plan, err := f.hooks.UninstallPlan(ctx)
	if err != nil || plan.RefusedCode != "archive" {
		t.Fatalf("plan %+v %v", plan, err)
	}
	_, err = f.hooks.SetSystem(ctx, control.SystemChange{Uninstall: true, RemoveData: true})
	if code, reason := codeOf(err); code != control.CodeRefused || reason != "archive" {
		t.Fatalf("uninstall = %v (%s/%s)", err, code, reason)
	}
	if f.quit != nil {
		t.Error("popbridge was asked to stop")
	}
	if sys, _ := f.hooks.System(ctx); !*sys.Autostart {
		t.Error("autostart was removed by a refused uninstall")
	}
	if _, err := os.Stat(inside); err != nil {
		t.Error(err)
	}
}

// TestLog: the log view reads the rotating log, or the [log] file.
func TestLog(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.LogFile = logfile.Path(o.DataDir) })
	w, err := logfile.Open(f.dataDir, logfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"one", "two", "three"} {
		w.Write([]byte("level=INFO msg=" + l + "\n"))
	}
	w.Close()
	l, err := f.hooks.Log(context.Background(), 2)
	if err != nil || l.File != logfile.Path(f.dataDir) || strings.Join(l.Lines, "|") != "level=INFO msg=two|level=INFO msg=three" {
		t.Fatalf("Log = %+v %v", l, err)
	}
	other := filepath.Join(t.TempDir(), "my.log")
	os.WriteFile(other, []byte("a\nb\nc\n"), 0o600)
	f = newFixture(t, func(o *Options) { o.LogFile = other })
	if l, err := f.hooks.Log(context.Background(), 5); err != nil || strings.Join(l.Lines, "|") != "a|b|c" {
		t.Fatalf("Log of [log] file = %+v %v", l, err)
	}
	f = newFixture(t, nil)
	if _, err := f.hooks.Log(context.Background(), 5); err == nil {
		t.Error("a log without a file")
	} else if code, _ := codeOf(err); code != control.CodeUnsupported {
		t.Errorf("no log file: %v", err)
	}
}
