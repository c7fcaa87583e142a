package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/internal/oauthtest"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/oauth"
)

// page drives the browser for a test.
type page struct {
	t   *testing.T
	ctx context.Context
	out *syncBuffer
}

func (p page) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\n%s", what, err, p.out.String())
	}
}

func (p page) eval(what, js string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	return s
}

func (p page) poll(what, js string) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		shown, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`location.href + '\n' + (document.querySelector('main') || document.body || document.documentElement).innerText.slice(0, 3000)`))
		p.t.Fatalf("%s: %v\npage:\n%s\npopbridge:\n%s", what, err, shown, p.out.String())
	}
}

func (p page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// TestConsoleDesktopBrowser: in a real browser, a person whose new mailbox
// is at Microsoft signs in from the setup (the console opens Microsoft's
// page — here a fake authorization server, the opener stubbed and the
// browser's part played by an HTTP client — and then says "signed in";
// Test connection then logs in to a Dovecot that accepts XOAUTH2 only with
// a current token), tests the old POP account, sees on the overview that
// the server reports no quota; then, in English, switches "start with my
// computer" on (the entry is written by the injected autostart system,
// nothing is installed here; the moved program is reported in plain
// words) and off, reads the log, and removes popbridge with its data dir
// (which quits it: the box is fixed): the archive stays.
func TestConsoleDesktopBrowser(t *testing.T) {
	bctx := browser(t)
	testenv.RequireDovecot(t)
	fake := oauthtest.Start(t, "e2e-client-id")
	oauthPresetOverride = &oauth.Preset{Name: "Microsoft", AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(),
		Scopes: []string{"imap", "offline_access"}, RedirectHost: "127.0.0.1"}
	t.Cleanup(func() { oauthPresetOverride = nil })
	const account, popPW = "alice@outlook.com", "old-pop-Pw-2"
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{OAuth2IntrospectURL: fake.IntrospectURL(),
		Users: []testenv.DovecotUser{{Name: account, Password: "not-used-by-popbridge"}, {Name: "oldpop", Password: popPW}}})
	for i := 1; i <= 2; i++ {
		dc.Append(t, "oldpop", "INBOX", []byte(fmt.Sprintf("From: a@example.jp\r\nSubject: pop %d\r\n\r\nstill arriving %d\r\n", i, i)), nil, time.Now())
	}
	home := t.TempDir()
	useHome(t, home)
	env := fakeAutostart(t)
	archive := filepath.Join(home, "Mail", "old.mbox")
	const archiveText = "From a@example.jp Mon Jan  2 15:04:05 2012\nSubject: old\nMessage-ID: <old-1@example.jp>\n\nten years of mail\n\n"
	if err := os.MkdirAll(filepath.Dir(archive), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, []byte(archiveText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath, err := defaultConfigPath()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfigFile(cfgPath, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	privatePorts(t, cfgPath)
	if cfg, _, err = LoadConfig(cfgPath); err != nil {
		t.Fatal(err)
	}
	h := &configHost{path: cfgPath, cfg: cfg, now: time.Now}
	if _, err := h.SaveSettings(context.Background(), control.SettingsChange{Sources: &[]control.SourceSetting{{Path: archive}}}); err != nil {
		t.Fatal(err)
	}
	cfg = h.current()

	// The browser opener: the console's link, and the provider's page,
	// where the "user" accepts.
	logins := make(chan string, 4)
	signedIn := make(chan string, 2)
	old := openBrowser
	openBrowser = func(u string) error {
		if strings.HasPrefix(u, fake.AuthURL()) {
			go func() {
				_, body, err := oauthtest.Authorize(u)
				signedIn <- fmt.Sprint(body, err)
			}()
			return nil
		}
		logins <- u
		return nil
	}
	t.Cleanup(func() { openBrowser = old })
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runShell(ctx, cfg, shellOptions{desktop: true}, out, out) }()
	var loginURL string
	select {
	case loginURL = <-logins:
	case err := <-done:
		t.Fatalf("popbridge ended: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the console was not opened\n%s", out.String())
	}
	base := loginURL[:strings.Index(loginURL, "/login")]

	bctx, bcancel := context.WithTimeout(bctx, 4*time.Minute)
	defer bcancel()
	p := page{t: t, ctx: bctx, out: out}
	p.step("Japanese browser", cdpDo(network.Enable, network.EnableParams{}),
		cdpDo(network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "ja-JP,ja;q=0.9"}}))
	p.step("open the console", chromedp.Navigate(loginURL), chromedp.WaitVisible(chromedp.CSS("#step-1")))

	// 2. New mailbox at Microsoft: sign in in the browser.
	p.step("new mailbox step", chromedp.Click(chromedp.CSS(`#steps button[data-step="2"]`)), chromedp.WaitVisible(chromedp.CSS("#step-2")))
	p.step("address", chromedp.SendKeys(chromedp.CSS("#mb-email"), account), chromedp.Click(chromedp.CSS("#mb-host")),
		chromedp.WaitVisible(chromedp.CSS("#mb-client-id")))
	if hidden := p.eval("password box", `String(document.getElementById('mb-password-box').hidden)`); hidden != "true" {
		t.Error("Microsoft accepts no password, but the console asks for one")
	}
	p.step("server and client ID",
		chromedp.SetValue(chromedp.CSS("#mb-host"), "127.0.0.1"),
		chromedp.SetValue(chromedp.CSS("#mb-tls"), "none"),
		chromedp.SetValue(chromedp.CSS("#mb-port"), fmt.Sprint(dc.IMAPPort)),
		chromedp.SendKeys(chromedp.CSS("#mb-client-id"), "e2e-client-id"))
	if u := p.eval("user name", `document.getElementById('mb-username').value`); u != account {
		t.Fatalf("user name from the preset: %q", u)
	}
	// Access tokens that last a minute are renewed at every use (popbridge
	// renews five minutes ahead), so a withdrawn sign-in shows at once.
	fake.SetLifetime(time.Minute)
	signIn := func(what string) {
		t.Helper()
		p.step(what, chromedp.Click(chromedp.CSS("#mb-signin-btn")))
		select {
		case page := <-signedIn:
			if !strings.Contains(page, "Signed in") {
				t.Fatalf("the provider's return page: %s", page)
			}
		case <-time.After(90 * time.Second):
			t.Fatalf("the provider's page was not opened\n%s", out.String())
		}
		p.poll(what+": signed in", `(() => { const e = document.querySelector('#mb-signin-state .result-ok'); return !!e && e.textContent.includes('サインインしました') && e.textContent.includes('`+account+`'); })()`)
	}
	signIn("sign in")
	// The token works: Test connection logs in with XOAUTH2.
	p.step("test connection", chromedp.Click(chromedp.CSS("#mb-test")))
	p.poll("connection tested", `!!document.querySelector('#mb-result .result-ok, #mb-result .error')`)
	if res := p.text("#mb-result"); !strings.Contains(res, "接続できました") || !strings.Contains(res, "容量（クォータ）を知らせません") {
		t.Fatalf("test connection with the sign-in: %q", res)
	}
	// Microsoft withdraws the sign-in (password changed): the console asks
	// to sign in again, in plain words; signing in again mends it.
	fake.RevokeRefreshTokens()
	p.step("back to the new mailbox", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#mb-signin-btn")))
	p.poll("re-consent asked", `(() => { const e = document.querySelector('#mb-signin-state .error'); return !!e && e.textContent.includes('受け付けなくなりました') && e.textContent.includes('`+account+`'); })()`)
	signIn("sign in again")
	saved, _, err := LoadConfig(cfgPath)
	if err != nil || saved.Upstream == nil || saved.Upstream.OAuth2 == nil || saved.Upstream.OAuth2.ClientID != "e2e-client-id" || saved.Upstream.IsSet() {
		t.Fatalf("the saved mailbox: %+v %v", saved.Upstream, err)
	}
	p.step("save the mailbox", chromedp.Click(chromedp.CSS("#mb-save")), chromedp.WaitVisible(chromedp.CSS("#step-3")))

	// 3. The old POP account: Test connection counts its mail.
	p.step("POP settings", chromedp.Click(chromedp.CSS("#pop-on")),
		chromedp.SetValue(chromedp.CSS("#pop-host"), "127.0.0.1"),
		chromedp.SetValue(chromedp.CSS("#pop-tls"), "none"),
		chromedp.SetValue(chromedp.CSS("#pop-port"), fmt.Sprint(dc.POP3Port)),
		chromedp.SetValue(chromedp.CSS("#pop-username"), "oldpop"),
		chromedp.SendKeys(chromedp.CSS("#pop-password"), "wrong"),
		chromedp.Click(chromedp.CSS("#pop-test")))
	p.poll("POP refused", `!!document.querySelector('#pop-result .error')`)
	if res := p.text("#pop-result"); !strings.Contains(res, "ユーザー名またはパスワードを受け付けませんでした") {
		t.Fatalf("POP test with a wrong password: %q", res)
	}
	p.step("POP password", chromedp.SetValue(chromedp.CSS("#pop-password"), popPW), chromedp.Click(chromedp.CSS("#pop-test")))
	p.poll("POP tested", `!!document.querySelector('#pop-result .result-ok')`)
	if res := p.text("#pop-result"); !strings.Contains(res, "2 通") {
		t.Fatalf("POP test: %q", res)
	}
	p.step("no POP after all", chromedp.Click(chromedp.CSS("#pop-on")), chromedp.Click(chromedp.CSS("#pop-save")), chromedp.WaitVisible(chromedp.CSS("#step-4")))
	p.step("device password", chromedp.Click(chromedp.CSS("#dp-generate")), chromedp.WaitVisible(chromedp.CSS("#dp-shown")))
	p.step("finish", chromedp.Click(chromedp.CSS("#finish")), chromedp.WaitVisible(chromedp.CSS("#folders")))
	// The server reports no quota: the gauge says so.
	p.poll("no quota on the overview", `document.getElementById('quota-text').textContent.includes('容量（クォータ）を知らせません')`)

	// In English: the settings.
	if _, err := chromedp.RunResponse(bctx, chromedp.SetValue(chromedp.CSS("#lang-select"), "en")); err != nil {
		t.Fatalf("switch to English: %v", err)
	}
	p.poll("English", `document.documentElement.lang === 'en'`)
	p.step("settings", chromedp.Navigate(base+"/settings"), chromedp.WaitVisible(chromedp.CSS("#autostart-section")))
	if on := p.eval("switch", `String(document.getElementById('autostart').checked)`); on != "false" {
		t.Fatalf("autostart switch before: %s", on)
	}
	p.step("autostart on", chromedp.Click(chromedp.CSS("#autostart")))
	p.poll("autostart on", `document.getElementById('autostart-status').textContent === 'popbridge starts when you log in.'`)
	entry := filepath.Join(env.Home, ".config", "autostart", "popbridge.desktop")
	b, err := os.ReadFile(entry)
	if err != nil || !strings.Contains(string(b), "\nExec=/opt/popbridge/popbridge start -autostart -config "+cfgPath+"\n") {
		t.Fatalf("the autostart entry: %v\n%s", err, b)
	}
	if probs := p.text("#autostart-problems"); !strings.Contains(probs, "It starts /opt/popbridge/popbridge, which is no longer there (moved or deleted?)") {
		t.Errorf("the moved program is not reported: %q", probs)
	}
	if notes := p.text("#autostart-notes"); !strings.Contains(notes, "desktop's autostart") {
		t.Errorf("notes: %q", notes)
	}
	p.step("autostart off", chromedp.Click(chromedp.CSS("#autostart")))
	p.poll("autostart off", `document.getElementById('autostart-status').textContent === 'popbridge no longer starts by itself.'`)
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Fatalf("the entry after off: %v", err)
	}

	// The log.
	p.step("log", chromedp.Click(chromedp.CSS("#log-show")))
	p.poll("log shown", `!document.getElementById('log-lines').hidden && document.getElementById('log-lines').textContent.includes('OAuth2 sign-in completed')`)
	logText := p.text("#log-lines")
	for _, tok := range fake.Tokens() {
		if strings.Contains(logText, tok) {
			t.Error("a token is in the log view")
		}
	}

	// Remove popbridge, with its data dir: first the plan, then the
	// confirmation.
	p.step("plan", chromedp.Click(chromedp.CSS("#remove-data")), chromedp.Click(chromedp.CSS("#uninstall-btn")), chromedp.WaitVisible(chromedp.CSS("#uninstall-plan")))
	removes, keeps := p.text("#uninstall-removes"), p.text("#uninstall-keeps")
	// Deleting the data needs popbridge stopped: the quit box is ticked
	// and fixed, and the plan says popbridge stops.
	if got := p.eval("quit box", `[document.getElementById('uninstall-quit').checked, document.getElementById('uninstall-quit').disabled, !document.getElementById('uninstall-quit-forced').hidden].join()`); got != "true,true,true" {
		t.Errorf("the quit box with remove data: %s", got)
	}
	if !strings.Contains(removes, "popbridge stops") || strings.Contains(keeps, "keeps running") {
		t.Errorf("uninstall plan on stopping:\nremoves %q\nkeeps %q", removes, keeps)
	}
	if !strings.Contains(removes, "popbridge's own data: "+cfg.DataDir) || !strings.Contains(keeps, "your old mail "+archive+" (never deleted)") ||
		!strings.Contains(keeps, "the settings file "+cfgPath) || strings.Contains(keeps, cfg.DataDir) {
		t.Fatalf("uninstall plan:\nremoves %q\nkeeps %q", removes, keeps)
	}
	p.step("confirm", chromedp.Click(chromedp.CSS("#uninstall-confirm")))
	p.poll("removed", `document.getElementById('uninstall-status').textContent.startsWith('Done. popbridge has stopped')`)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("popbridge after the uninstall: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("popbridge did not stop after the uninstall\n%s", out.String())
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("the data dir is still there: %v", err)
	}
	if b, err := os.ReadFile(archive); err != nil || string(b) != archiveText {
		t.Errorf("the archive was touched: %v", err)
	}
	if _, err := os.Stat(cfgPath); err != nil {
		t.Errorf("the config file: %v", err)
	}
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Errorf("the autostart entry: %v", err)
	}
}
