package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popbridge/popbridge/autostart"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/internal/oauthtest"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/logfile"
	"github.com/popbridge/popbridge/oauth"
)

func archiveSource(t *testing.T) map[string]string {
	src, err := filepath.Abs("../../testdata/archive/mbox/lf.mbox")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"lf": src}
}

// stubOpener records what would be opened in the browser.
type stubOpener struct {
	mu   sync.Mutex
	urls []string
}

func (s *stubOpener) install(t *testing.T) {
	old := openBrowser
	openBrowser = func(u string) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.urls = append(s.urls, u)
		return nil
	}
	t.Cleanup(func() { openBrowser = old })
}

func (s *stubOpener) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.urls...)
}

// waitOutput waits until out has printed want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("never printed %q:\n%s", want, out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling for the output
	}
}

// TestStartOpensRunningConsole: with popbridge running, `popbridge start`
// and `popbridge` alone open its console (a fresh one-time link each
// time, which logs in) instead of failing; the autostart variant opens
// nothing and exits 0; `serve` keeps its clear error.
func TestStartOpensRunningConsole(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), archiveSource(t), "")
	appendUpstream(t, cfgPath, "[console]\nlisten = \"127.0.0.1:0\"\n")
	loginURL, _, _ := runTestShell(t, cfgPath)
	base := loginURL[:strings.Index(loginURL, "/login")]
	var op stubOpener
	op.install(t)

	seen := map[string]bool{loginURL: true}
	for i, args := range [][]string{{"start", "-config", cfgPath}, nil} {
		if args == nil {
			t.Setenv(configEnv, cfgPath) // `popbridge` alone finds its config
		}
		var out, errb bytes.Buffer
		if code := run(args, nil, &out, &errb); code != 0 {
			t.Fatalf("%q exited %d: %s", args, code, errb.String())
		}
		got := op.got()
		if len(got) != i+1 || !strings.HasPrefix(got[i], base+"/login?token=") || seen[got[i]] {
			t.Fatalf("%q opened %q, want a new login link of %s", args, got, base)
		}
		u := got[i]
		seen[u] = true
		if !strings.Contains(out.String(), u) || !strings.Contains(out.String(), fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(out.String(), "already running") {
			t.Errorf("%q printed %q", args, out.String())
		}
		jar, _ := cookiejar.New(nil)
		resp, err := (&http.Client{Jar: jar}).Get(u)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("the opened link does not log in: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	var out, errb bytes.Buffer
	if code := run([]string{"start", "-autostart", "-config", cfgPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("start -autostart exited %d: %s", code, errb.String())
	}
	if len(op.got()) != 2 || !strings.Contains(out.String(), "already running") {
		t.Errorf("start -autostart opened %q; printed %q", op.got(), out.String())
	}

	out.Reset()
	errb.Reset()
	if code := run([]string{"serve", "-config", cfgPath}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "already running") {
		t.Errorf("serve with a bridge running: exit %d, %q", code, errb.String())
	}
}

// TestStartWaitsForStartingBridge: a popbridge holds the data dir but its
// control endpoint does not answer yet (it is starting): a second start
// waits for it and opens its console, instead of failing; serve fails at
// once.
func TestStartWaitsForStartingBridge(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), archiveSource(t), "")
	dataDir := filepath.Join(dir, "data")
	claim, err := control.ClaimDataDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer claim.Release()
	var op stubOpener
	op.install(t)

	var out, errb bytes.Buffer
	if code := run([]string{"serve", "-config", cfgPath}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "already running") {
		t.Errorf("serve while another one starts: exit %d, %q", code, errb.String())
	}

	sout := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run([]string{"start", "-config", cfgPath}, nil, sout, sout) }()
	waitOutput(t, sout, "waiting for it")
	// Its endpoint comes up.
	const console = "http://127.0.0.1:9/login?token=from-the-starting-one"
	svc := control.NewService(control.Options{DataDir: dataDir, Version: "test"})
	svc.SetAddrs("", "127.0.0.1:9", func() (string, error) { return console, nil })
	srv, err := control.Listen(svc, dataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("start exited %d:\n%s", code, sout.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("start did not find the starting popbridge:\n%s", sout.String())
	}
	if got := op.got(); len(got) != 1 || got[0] != console {
		t.Errorf("opened %q, want %s", got, console)
	}
}

// TestStartAutostartQuiet: the autostart entry's start opens no browser;
// it serves, with the console, and logs to the rotating file in the data
// dir.
func TestStartAutostartQuiet(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), archiveSource(t), "")
	appendUpstream(t, cfgPath, "[console]\nlisten = \"127.0.0.1:0\"\n")
	var op stubOpener
	op.install(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- desktop(ctx, cfgPath, true, out, out) }()
	waitOutput(t, out, "listening on")
	c, err := control.Dial(context.Background(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := c.ConsoleURL(context.Background()); err != nil || !strings.Contains(u, "/login?token=") {
		t.Errorf("console: %q %v", u, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := op.got(); len(got) != 0 {
		t.Errorf("autostart opened %q", got)
	}
	if log := readLog(t, dir); !strings.Contains(log, "listening on") || !strings.Contains(log, "shutting down") {
		t.Errorf("the rotating log:\n%s", log)
	}
}

func readLog(t *testing.T, dir string) string {
	lines, err := logfile.Tail(filepath.Join(dir, "data"), 100)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestStartRecoversAfterSIGKILL: a bridge killed with SIGKILL leaves its
// control.json; `popbridge start` (the real program, no terminal, the
// browser a script) takes the data dir over without help: it serves,
// replaces control.json, opens the console and logs to the rotating file
// in the data dir.
func TestStartRecoversAfterSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), archiveSource(t), "")
	appendUpstream(t, cfgPath, "[console]\nlisten = \"127.0.0.1:0\"\n")
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	first := startProc(t, bin, cfgPath, cfg)
	old, err := control.ReadInfo(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	first.kill()
	if _, err := control.ReadInfo(cfg.DataDir); err != nil {
		t.Fatalf("control.json should outlive SIGKILL: %v", err)
	}
	opened := filepath.Join(dir, "opened")
	browser := filepath.Join(dir, "browser.sh")
	if err := os.WriteFile(browser, []byte("#!/bin/sh\nprintf '%s\\n' \"$1\" >> "+opened+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	out := &syncBuffer{}
	cmd := exec.Command(bin, "start", "-config", cfgPath)
	cmd.Env = append(os.Environ(), "BROWSER="+browser)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	var c *control.Client
	for {
		c, err = control.Dial(context.Background(), cfg.DataDir)
		if err == nil && c.PID() == cmd.Process.Pid {
			break
		}
		select {
		case <-exited:
			t.Fatalf("start exited (%v) instead of recovering:\n%s", waitErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("start did not take over the data dir: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond) // readiness polling
	}
	if in, err := control.ReadInfo(cfg.DataDir); err != nil || in.Token == old.Token || in.PID != cmd.Process.Pid {
		t.Errorf("control.json after the take-over: %+v %v (the dead one's token: %s…)", in, err, old.Token[:4])
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, _ := os.ReadFile(opened)
		if u := strings.TrimSpace(string(b)); strings.Contains(u, "/login?token=") {
			if !strings.Contains(out.String(), u) {
				t.Errorf("the console link %s was opened but not printed:\n%s", u, out.String())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser was not opened on the console:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for the browser script's file
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-exited
	if waitErr != nil {
		t.Errorf("start after SIGTERM: %v\n%s", waitErr, out.String())
	}
	logText := readLog(t, dir)
	if !strings.Contains(logText, "IMAP (STARTTLS) listening on") || !strings.Contains(logText, "shutting down") {
		t.Errorf("the rotating log lacks the start-up and shutdown lines:\n%s", logText)
	}
}

// TestLoginAndServeWithOAuth2: `popbridge login` signs in through the
// browser (a fake authorization server), and serve then logs in to a real
// IMAP server (Dovecot asking the fake server) with XOAUTH2; no token in
// the output or the log.
func TestLoginAndServeWithOAuth2(t *testing.T) {
	testenv.RequireDovecot(t)
	fake := oauthtest.Start(t, "my-client-id")
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{OAuth2IntrospectURL: fake.IntrospectURL()})
	oauthPresetOverride = &oauth.Preset{Name: "Microsoft", AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(),
		Scopes: []string{"imap", "offline_access"}, RedirectHost: "127.0.0.1"}
	t.Cleanup(func() { oauthPresetOverride = nil })
	browser := make(chan string, 1)
	old := openBrowser
	openBrowser = func(u string) error {
		go func() {
			_, body, err := oauthtest.Authorize(u)
			browser <- fmt.Sprint(body, err)
		}()
		return nil
	}
	t.Cleanup(func() { openBrowser = old })

	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), archiveSource(t), "")
	appendUpstream(t, cfgPath, fmt.Sprintf("[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = \"alice\"\n\n[upstream.oauth2]\nprovider = \"microsoft\"\nclient_id = \"my-client-id\"\n", dc.IMAPPort))

	var out, errb bytes.Buffer
	if code := run([]string{"login", "-config", cfgPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("login exited %d: %s\n%s", code, errb.String(), out.String())
	}
	if page := <-browser; !strings.Contains(page, "Signed in") {
		t.Errorf("browser page: %s", page)
	}
	if !strings.Contains(out.String(), "Signed in to Microsoft as alice") || !strings.Contains(out.String(), fake.AuthURL()) {
		t.Errorf("login printed %q", out.String())
	}

	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), "popbridge: upstream") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // waiting for the start-up report
	}
	cancel()
	<-done
	if want := fmt.Sprintf("popbridge: upstream 127.0.0.1:%d connected", dc.IMAPPort); !strings.Contains(logs.String(), want) {
		t.Errorf("serve with [upstream.oauth2] did not connect:\n%s", logs.String())
	}
	all := out.String() + errb.String() + logs.String()
	for _, tok := range fake.Tokens() {
		if strings.Contains(all, tok) {
			t.Errorf("a token appears in the output or log")
		}
	}

	// A login for an account without [pop3.oauth2] says what to add.
	out.Reset()
	errb.Reset()
	if code := run([]string{"login", "-config", cfgPath, "-pop3", "nope"}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), `no [[pop3]] account is named "nope"`) {
		t.Errorf("login -pop3 nope: %d %q", code, errb.String())
	}
}

// TestOAuth2ConfigErrors: the [….oauth2] tables are validated key by key.
func TestOAuth2ConfigErrors(t *testing.T) {
	env := newCfgEnv(t)
	up := "[upstream]\nusername = \"me@outlook.com\"\n"
	tests := []struct{ name, doc, want string }{
		{"no provider", up + "[upstream.oauth2]\nclient_id = \"x\"\n", `upstream.oauth2.provider: required`},
		{"bad provider", up + "[upstream.oauth2]\nprovider = \"yahoo\"\nclient_id = \"x\"\n", `:4: upstream.oauth2.provider: "yahoo" is not a provider`},
		{"no client_id", up + "[upstream.oauth2]\nprovider = \"google\"\n", `upstream.oauth2.client_id: required`},
		{"tenant for google", up + "[upstream.oauth2]\nprovider = \"google\"\nclient_id = \"x\"\ntenant = \"common\"\n", `:6: upstream.oauth2.tenant: only used with provider = "microsoft"`},
		{"with password", up + "password = \"pw\"\n[upstream.oauth2]\nprovider = \"microsoft\"\nclient_id = \"x\"\n", `:3: upstream.password: not used with [upstream.oauth2]`},
		{"with token command", up + "oauth2_token_command = \"t\"\n[upstream.oauth2]\nprovider = \"microsoft\"\nclient_id = \"x\"\n", `:3: upstream.oauth2_token_command: set either oauth2_token_command or [upstream.oauth2]`},
		{"plain auth", up + "auth = \"plain\"\n[upstream.oauth2]\nprovider = \"microsoft\"\nclient_id = \"x\"\n", `:3: upstream.auth: "plain" does not sign in with a token`},
		{"unknown key", up + "[upstream.oauth2]\nprovider = \"microsoft\"\nclient_id = \"x\"\nclientid = \"y\"\n", `clientid`},
		{"pop3 with password", "[[pop3]]\nusername = \"me@outlook.com\"\npassword = \"pw\"\n[pop3.oauth2]\nprovider = \"microsoft\"\nclient_id = \"x\"\n", `:3: pop3[0].password: not used with [pop3.oauth2]`},
	}
	for _, tt := range tests {
		_, _, err := env.parse(tt.doc)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	cfg, _, err := env.parse(up + "[upstream.oauth2]\nprovider = \"Microsoft\"\nclient_id = \"x\"\nclient_secret = \"s3cret\"\n" +
		"[[pop3]]\nusername = \"old@gmail.com\"\n[pop3.oauth2]\nprovider = \"google\"\nclient_id = \"g\"\n")
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.Upstream
	if u.Host != "outlook.office365.com" || u.Port != 993 || u.Auth != AuthXOAuth2 || u.OAuth2.Provider != "microsoft" || u.OAuth2.Tenant != "common" {
		t.Errorf("upstream defaults: %v", u)
	}
	if p := cfg.POP3[0]; p.Host != "pop.gmail.com" || p.Port != 995 || p.OAuth2.Tenant != "" {
		t.Errorf("pop3 defaults: %v", p)
	}
	if s := fmt.Sprint(cfg) + fmt.Sprintf("%#v", u); strings.Contains(s, "s3cret") {
		t.Errorf("client_secret printed: %s", s)
	}
}

// fakeAutostart is a Linux without a systemd user manager, in a desktop
// session: entries go to ~/.config/autostart.
func fakeAutostart(t *testing.T) autostart.Env {
	home := t.TempDir()
	env := autostart.Env{GOOS: "linux", Home: home, ConfigDir: filepath.Join(home, ".config"),
		Getenv: func(k string) string {
			if k == "XDG_CURRENT_DESKTOP" {
				return "KDE"
			}
			return ""
		},
		Run: func(context.Context, string, ...string) ([]byte, error) {
			return []byte("Failed to connect to bus"), errors.New("exit status 1")
		},
		LookPath: func(string) (string, error) { return "/usr/bin/systemctl", nil },
	}
	old, oldEntry := autostartEnv, autostartEntry
	autostartEnv = func() (autostart.Env, error) { return env, nil }
	// The test binary is a temporary build, which NewEntry refuses.
	autostartEntry = func(cfg, logDir string) (autostart.Entry, error) {
		return autostart.Entry{Exe: "/opt/popbridge/popbridge", Args: autostart.Args(cfg), Config: cfg, LogDir: logDir}, nil
	}
	t.Cleanup(func() { autostartEnv, autostartEntry = old, oldEntry })
	return env
}

// TestAutostartAndUninstallCLI: on, status, then uninstall -data: the
// entry and the data dir go, the archive and the config stay.
func TestAutostartAndUninstallCLI(t *testing.T) {
	env := fakeAutostart(t)
	dir := t.TempDir()
	src := archiveSource(t)
	cfgPath := writeConfig(t, dir, freePort(t), src, "")
	os.MkdirAll(filepath.Join(dir, "data", "maildir", "Inbox", "cur"), 0o700)
	os.WriteFile(filepath.Join(dir, "data", "maildir", "Inbox", "cur", "1:2,S"), []byte("Subject: x\n\n"), 0o600)

	var out, errb bytes.Buffer
	if code := run([]string{"autostart", "on", "-config", cfgPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("autostart on: %d %s", code, errb.String())
	}
	desktop := filepath.Join(env.Home, ".config", "autostart", "popbridge.desktop")
	b, err := os.ReadFile(desktop)
	if err != nil || !strings.Contains(string(b), "start -autostart -config "+cfgPath) {
		t.Fatalf("desktop entry: %v\n%s", err, b)
	}
	if !strings.Contains(out.String(), "Autostart is on (xdg-autostart)") {
		t.Errorf("on printed %q", out.String())
	}
	out.Reset()
	if code := run([]string{"autostart", "status"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "Autostart is on") || !strings.Contains(out.String(), desktop) {
		t.Errorf("status: %d %q", code, out.String())
	}

	// No terminal to ask and no -yes: refused, nothing removed.
	out.Reset()
	errb.Reset()
	if code := run([]string{"uninstall", "-config", cfgPath, "-data"}, strings.NewReader("yes\n"), &out, &errb); code != 1 || !strings.Contains(errb.String(), "-yes") {
		t.Errorf("uninstall -data without -yes: %d %q", code, errb.String())
	}
	if _, err := os.Stat(desktop); err != nil {
		t.Fatal("the refused uninstall removed autostart")
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"uninstall", "-config", cfgPath, "-data", "-yes"}, nil, &out, &errb); code != 0 {
		t.Fatalf("uninstall: %d %s", code, errb.String())
	}
	if _, err := os.Stat(desktop); !os.IsNotExist(err) {
		t.Error("autostart entry left")
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Error("data dir left")
	}
	if _, err := os.Stat(src["lf"]); err != nil {
		t.Errorf("archive gone: %v", err)
	}
	if _, err := os.Stat(cfgPath); err != nil {
		t.Errorf("config gone: %v", err)
	}
	for _, want := range []string{"Removed: autostart entry", "Removed: data dir " + filepath.Join(dir, "data"), "Left:    archive " + src["lf"], "Left:    config file " + cfgPath} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("uninstall output lacks %q:\n%s", want, out.String())
		}
	}
}
