package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestConsolePOPAccountsKept: the setup's POP step shows one account. With
// two in the configuration file (the shown one signs in with Microsoft in
// the browser, the other has a password and its own interval), a save in
// a real browser keeps both as they were: nothing the page does not show
// is dropped, and the browser sign-in is not turned into "password
// needed". The page says both things, in English and in Japanese.
func TestConsolePOPAccountsKept(t *testing.T) {
	bctx := browser(t)
	home := t.TempDir()
	useHome(t, home)
	cfgPath, err := defaultConfigPath()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newConfigFile(cfgPath, time.Now()); err != nil {
		t.Fatal(err)
	}
	privatePorts(t, cfgPath)
	closed := freePort(t) // nothing listens: the fetcher's rounds fail quickly
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `
[[pop3]]
name = "outlook"
host = "127.0.0.1"
port = %d
tls = "none"
username = "taro@outlook.example"
[pop3.oauth2]
provider = "microsoft"
client_id = "11111111-2222-3333-4444-555555555555"

[[pop3]]
name = "isp"
host = "127.0.0.1"
port = %d
tls = "none"
username = "taro"
password = "isp-Pw-77"
interval = "10m"
`, closed, closed)
	f.Close()
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	loginURL, out, _ := startDesktop(t, cfg)
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out.String())
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	step("open the login link", chromedp.Navigate(loginURL), chromedp.WaitVisible(chromedp.CSS("#step-1")))
	step("go to the POP step", chromedp.Click(chromedp.CSS(`#steps button[data-step="3"]`)), chromedp.WaitVisible(chromedp.CSS("#step-3")),
		chromedp.WaitVisible(chromedp.CSS("#pop-oauth")), chromedp.WaitVisible(chromedp.CSS("#pop-others")))
	if s := text("#pop-oauth"); !strings.Contains(s, "Microsoft") || !strings.Contains(s, "password") {
		t.Errorf("the sign-in note: %q", s)
	}
	if s := text("#pop-others"); !strings.Contains(s, "isp") {
		t.Errorf("the other accounts: %q", s)
	}
	host, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#pop-username').value`))
	if err != nil || host != "taro@outlook.example" {
		t.Fatalf("the shown account: %q %v", host, err)
	}
	step("delete after 20 days, save", chromedp.Click(chromedp.CSS(`input[name="pop-keep"][value="days"]`)),
		chromedp.SetValue(chromedp.CSS("#pop-days"), "20"), chromedp.Click(chromedp.CSS("#pop-save")), chromedp.WaitVisible(chromedp.CSS("#step-4")))

	got, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.POP3) != 2 {
		t.Fatalf("%d POP accounts after the save, want 2", len(got.POP3))
	}
	ms, isp := got.POP3[0], got.POP3[1]
	if ms.Name != "outlook" || ms.OAuth2 == nil || ms.OAuth2.Provider != "microsoft" || ms.IsSet() || ms.DeleteAfter.Duration() != 20*24*time.Hour {
		t.Errorf("the shown account after the save: %+v (oauth2 %+v)", ms, ms.OAuth2)
	}
	if isp.Name != "isp" || !isp.IsSet() || isp.Interval.Duration() != 10*time.Minute || isp.DeleteAfter != 0 {
		t.Errorf("the other account after the save: %+v", isp)
	}

	// The same notes in Japanese.
	step("Japanese", cdpDo(network.Enable, network.EnableParams{}),
		cdpDo(network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "ja-JP,ja;q=0.9"}}),
		chromedp.Navigate(strings.TrimSuffix(loginURL[:strings.Index(loginURL, "/login")], "/")+"/setup"), chromedp.WaitVisible(chromedp.CSS("#step-1")))
	step("the POP step in Japanese", chromedp.Click(chromedp.CSS(`#steps button[data-step="3"]`)), chromedp.WaitVisible(chromedp.CSS("#pop-others")))
	if s := text("#pop-oauth") + text("#pop-others"); !strings.Contains(s, "サインイン") || !strings.Contains(s, "そのまま残ります") {
		t.Errorf("the notes in Japanese: %q", s)
	}
}
