package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/emersion/go-imap/v2/imapclient"
	"howett.net/plist"

	"github.com/popbridge/popbridge/certs"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/internal/testenv"
)

// chromiumPackage is the Debian package scripts/test.sh installs.
const chromiumPackage = "chromium"

// requireChromium returns the headless browser's path; without one the
// test fails under CI=true, naming the package, and is skipped otherwise.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/lib/chromium/chromium"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := "chromium not found: apt-get install -y " + chromiumPackage
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser starts a headless Chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := requireChromium(t)
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// cdpDo runs one protocol command as an action.
func cdpDo[P, R any](cmd cdp.Command[P, R], p P) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cmd, p)
		return err
	})
}

// plantHome makes a user's home with a Thunderbird profile (35 messages
// of local mail, one deleted by Thunderbird) and an Outlook .pst (17
// messages) in their usual places.
func plantHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	tb := filepath.Join(home, ".thunderbird")
	prof := filepath.Join(tb, "q7w2.default-release")
	local := filepath.Join(prof, "Mail", "Local Folders")
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(tb, "profiles.ini"), "[Install4F96D1932A9F858E]\nDefault=q7w2.default-release\nLocked=1\n\n[Profile0]\nName=default-release\nIsRelative=1\nPath=q7w2.default-release\nDefault=1\n\n[General]\nStartWithLastProfile=1\nVersion=2\n")
	write(filepath.Join(prof, "prefs.js"), "// Mozilla User Preferences\n")
	msg := func(i int, folder, status string) string {
		return fmt.Sprintf("From old%d@example.jp Mon Jan  2 15:04:05 2012\nX-Mozilla-Status: %s\nFrom: =?UTF-8?B?5pen44GE5Y+L?= <old%d@example.jp>\nTo: taro@example.jp\nSubject: %s %d\nMessage-ID: <%s-%d@example.jp>\nDate: Mon, 2 Jan 2012 15:04:05 +0900\n\n%s のメール %d\n\n",
			i, status, i, folder, i, folder, i, folder, i)
	}
	var inbox, sent strings.Builder
	for i := 1; i <= 30; i++ {
		inbox.WriteString(msg(i, "inbox", "0001"))
	}
	inbox.WriteString(msg(99, "inbox", "0009")) // expunged: not counted, not moved
	for i := 1; i <= 5; i++ {
		sent.WriteString(msg(i, "sent", "0001"))
	}
	write(filepath.Join(local, "Inbox"), inbox.String())
	write(filepath.Join(local, "Inbox.msf"), "")
	write(filepath.Join(local, "Sent"), sent.String())
	ol := filepath.Join(home, "Documents", "Outlook Files")
	if err := os.MkdirAll(ol, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/mooijtech/go-pst/v6").Output()
	if err != nil {
		t.Fatalf("locating the go-pst module (sample PSTs): %v", err)
	}
	pst, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "data", "support.pst"))
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(ol, "Outlook.pst"), string(pst))
	return home
}

// useHome makes home the user's home for this test (discovery, the config
// and data directories).
func useHome(t *testing.T, home string) {
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("POPBRIDGE_CONFIG", "")
	t.Setenv("APPDATA", "")
	t.Setenv("LOCALAPPDATA", "")
}

// privatePorts points a new config's listeners at free ports (the
// documented defaults may be taken on a shared machine).
func privatePorts(t *testing.T, path string) (imapsPort int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	imapsPort = freePort(t)
	s := strings.NewReplacer(
		`#imap = "127.0.0.1:1143"`, fmt.Sprintf(`imap = "127.0.0.1:%d"`, freePort(t)),
		`#imaps = "127.0.0.1:1993"`, fmt.Sprintf(`imaps = "127.0.0.1:%d"`, imapsPort),
		`#listen = "127.0.0.1:8143"`, `listen = "127.0.0.1:0"`,
	).Replace(string(b))
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return imapsPort
}

// shellRun is a popbridge started by a test: done closes when runShell
// has returned err.
type shellRun struct {
	done chan struct{}
	err  error
}

// startDesktop runs popbridge as a double-click does, with the browser
// opener stubbed: it returns the URL popbridge opened.
func startDesktop(t *testing.T, cfg *Config) (string, *syncBuffer, *shellRun) {
	t.Helper()
	opened := make(chan string, 4)
	old := openBrowser
	openBrowser = func(u string) error { opened <- u; return nil }
	t.Cleanup(func() { openBrowser = old })
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	run := &shellRun{done: make(chan struct{})}
	go func() {
		run.err = runShell(ctx, cfg, shellOptions{desktop: true}, out, out)
		close(run.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-run.done:
			if run.err != nil {
				t.Errorf("popbridge: %v", run.err)
			}
		case <-time.After(30 * time.Second):
			t.Error("popbridge did not stop")
		}
		if t.Failed() {
			t.Logf("popbridge output:\n%s", out.String())
		}
	})
	select {
	case u := <-opened:
		if !strings.Contains(out.String(), u) {
			t.Errorf("the console URL was opened but not printed:\n%s", out.String())
		}
		return u, out, run
	case <-run.done:
		t.Fatalf("popbridge ended: %v\n%s", run.err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("popbridge did not open the console\n%s", out.String())
	}
	return "", nil, nil
}

// TestConsoleBrowser: a person with old mail in Thunderbird and Outlook
// sets popbridge up in a real browser, from nothing, in Japanese; then, in
// English, moves the mail to the server, verifies it and downloads the
// Apple profile, whose CA is the one the IMAPS listener's certificate
// chains to.
func TestConsoleBrowser(t *testing.T) {
	bctx := browser(t)
	testenv.RequireDovecot(t)
	const mailPW = "upstream-Pw-4e2e"
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{Users: []testenv.DovecotUser{{Name: "alice", Password: mailPW, QuotaBytes: 100 << 20}}})
	home := plantHome(t)
	useHome(t, home)
	cfgPath, err := defaultConfigPath()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newConfigFile(cfgPath, time.Now()); err != nil {
		t.Fatal(err)
	}
	imapsPort := privatePorts(t, cfgPath)
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.DataDir); err == nil {
		t.Fatalf("the data dir %s exists before the start", cfg.DataDir)
	}
	loginURL, out, run := startDesktop(t, cfg)

	ctx, cancel := context.WithTimeout(bctx, 4*time.Minute)
	defer cancel()
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out.String())
		}
	}
	eval := func(what, js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	poll := func(what, js string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(90*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + '\n' + (document.querySelector('main') || document.body || document.documentElement).innerText.slice(0, 3000)`))
			t.Fatalf("%s: %v\npage:\n%s\npopbridge:\n%s", what, err, page, out.String())
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

	// In Japanese: the login link leads to the setup (nothing is set up).
	step("Japanese browser", cdpDo(network.Enable, network.EnableParams{}),
		cdpDo(network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "ja-JP,ja;q=0.9"}}))
	step("open the login link", chromedp.Navigate(loginURL), chromedp.WaitVisible(chromedp.CSS("#step-1")))
	if loc := eval("location", `location.pathname`); loc != "/setup" {
		t.Fatalf("after login: %s, want /setup", loc)
	}
	if lang := eval("lang", `document.documentElement.lang`); lang != "ja" || !strings.Contains(text("h1"), "popbridge の設定") {
		t.Fatalf("page language %q, heading %q", lang, text("h1"))
	}

	// 1. Old mail: both stores are found and counted.
	poll("both stores scanned", `(() => { const lis = [...document.querySelectorAll('#stores > li')];
		return lis.length === 2 && lis.every(li => { const s = li.querySelector('.scan'); return s.textContent !== '' && !s.querySelector('.hint'); }); })()`)
	stores := eval("stores", `JSON.stringify([...document.querySelectorAll('#stores > li')].map(li => [li.dataset.path, li.querySelector('.scan').textContent]))`)
	tbPath := filepath.Join(home, ".thunderbird", "q7w2.default-release")
	pstPath := filepath.Join(home, "Documents", "Outlook Files", "Outlook.pst")
	for _, want := range []string{jsonString(tbPath), "35 通", jsonString(pstPath), "17 通"} {
		if !strings.Contains(stores, want) {
			t.Fatalf("stores %s: no %s", stores, want)
		}
	}
	step("include both", chromedp.Click(chromedp.CSS("#store-0")), chromedp.Click(chromedp.CSS("#store-1")),
		chromedp.Click(chromedp.CSS("#save-stores")), chromedp.WaitVisible(chromedp.CSS("#step-2")))

	// 2. New mailbox: no preset for example.com, so by hand; the test
	// shows the quota and the special-use folders.
	step("email", chromedp.SendKeys(chromedp.CSS("#mb-email"), "alice@example.com"), chromedp.Click(chromedp.CSS("#mb-host")),
		chromedp.WaitVisible(chromedp.CSS("#mb-preset")))
	step("server settings",
		chromedp.SetValue(chromedp.CSS("#mb-host"), "127.0.0.1"),
		chromedp.SetValue(chromedp.CSS("#mb-tls"), "none"),
		chromedp.SetValue(chromedp.CSS("#mb-port"), fmt.Sprint(dc.IMAPPort)),
		chromedp.SetValue(chromedp.CSS("#mb-username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#mb-password"), mailPW),
		chromedp.Click(chromedp.CSS("#mb-test")))
	poll("connection tested", `!!document.querySelector('#mb-result .result-ok, #mb-result .error')`)
	res := text("#mb-result")
	for _, want := range []string{"接続できました", "100.0 MB", "送信済み: Sent", "ごみ箱: Trash"} {
		if !strings.Contains(res, want) {
			t.Fatalf("test connection: %q lacks %q", res, want)
		}
	}
	step("save the mailbox", chromedp.Click(chromedp.CSS("#mb-save")), chromedp.WaitVisible(chromedp.CSS("#step-3")))
	// 3. No old POP account.
	step("skip POP", chromedp.Click(chromedp.CSS("#pop-save")), chromedp.WaitVisible(chromedp.CSS("#step-4")))
	// 4. The device password, shown once.
	step("device password", chromedp.Click(chromedp.CSS("#dp-generate")), chromedp.WaitVisible(chromedp.CSS("#dp-shown")))
	devicePW, user := text("#dp-value"), text("#dp-user")
	if !regexp.MustCompile(`^[a-z2-9]{4}(-[a-z2-9]{4}){3}$`).MatchString(devicePW) || user != "alice@example.com" {
		t.Fatalf("device password %q for %q", devicePW, user)
	}
	step("finish", chromedp.Click(chromedp.CSS("#finish")), chromedp.WaitVisible(chromedp.CSS("#folders")))

	// The overview sees the folders, live, as the bridge indexes them.
	poll("folders on the overview", `(() => { const rows = [...document.querySelectorAll('#folders tbody tr')].map(r => [...r.cells].map(c => c.textContent));
		const find = (n) => rows.find(r => r[0] === n);
		const ok = (n, c) => { const r = find(n); return r && r[1] === c && r[2] === '0' && r[3] === c; };
		return ok('Local/Thunderbird/Local Folders/Inbox', '30') && ok('Local/Thunderbird/Local Folders/Sent', '5') && ok('Local/Outlook/Sent Messages', '11') && ok('Local/Outlook/Drafts', '6'); })()`)
	poll("quota on the overview", `document.getElementById('quota-text').textContent.includes('100.0 MB')`)

	// The same folders over IMAP with the device password.
	c := dialBridgeTLS(t, imapsPort, nil, user, devicePW)
	list, err := c.List("", "Local/*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, l := range list {
		names[l.Mailbox] = true
	}
	if !names["Local/Thunderbird/Local Folders/Inbox"] || !names["Local/Outlook/Drafts"] {
		t.Fatalf("IMAP LIST: %v", names)
	}
	c.Logout().Wait()

	// In English from here: the switch at the top is remembered.
	// (SetValue fires the select's change event, as a person's choice does.)
	if _, err := chromedp.RunResponse(ctx, chromedp.SetValue(chromedp.CSS("#lang-select"), "en")); err != nil {
		t.Fatalf("switch to English: %v", err)
	}
	poll("English", `document.documentElement.lang === 'en' && document.querySelector('h1').textContent === 'Overview'`)

	// Move to the server: the plan, then the move to 100 %.
	step("move page", chromedp.Navigate(strings.TrimSuffix(loginURL[:strings.Index(loginURL, "/login")], "/")+"/move"),
		chromedp.WaitVisible(chromedp.CSS("#plan-btn")), chromedp.Click(chromedp.CSS("#plan-btn")))
	poll("plan", `!!document.querySelector('#plan-table tfoot')`)
	if lang := eval("lang", `document.documentElement.lang`); lang != "en" {
		t.Fatalf("the language choice was not remembered: %s", lang)
	}
	total := eval("plan total", `[...document.querySelector('#plan-table tfoot tr').cells].map(c => c.textContent).join('|')`)
	if !strings.HasPrefix(total, "Total||52|") || !strings.Contains(total, "|0|52|") {
		t.Fatalf("plan totals %q, want 52 in scope, 0 on the server, 52 to upload", total)
	}
	step("start", chromedp.Click(chromedp.CSS("#mig-start")))
	poll("moved", `document.getElementById('mig-bar').value === 1 && document.getElementById('mig-status').textContent.startsWith('Everything is on the server.')`)
	if got := text("#mig-status"); !strings.Contains(got, "52 of 52 messages") {
		t.Fatalf("progress: %q", got)
	}
	for folder, want := range map[string]int{"INBOX": 30, "Sent": 16, "Drafts": 6} {
		if n := len(dc.Messages(t, "alice", folder)); n != want {
			t.Errorf("server %s: %d messages, want %d", folder, n, want)
		}
	}
	// Verify, byte by byte, then the report as CSV.
	step("verify", chromedp.Click(chromedp.CSS("#verify-content")), chromedp.Click(chromedp.CSS("#verify-btn")))
	poll("verified", `!!document.querySelector('#verify-out .result-ok') && !document.getElementById('next-steps').hidden`)
	if got := text("#verify-out"); !strings.Contains(got, "Verified: all 52 messages are on the server") || !strings.Contains(got, "compared byte by byte") {
		t.Fatalf("verify: %q", got)
	}
	// (The browser's text() drops the byte order mark Excel needs; it is
	// the first three bytes.)
	csv := eval("csv", `fetch(document.getElementById('csv-link').href).then(async r => r.headers.get('Content-Type') + '|' +
		Array.from(new Uint8Array(await r.clone().arrayBuffer()).slice(0, 3)).join(',') + '|' + await r.text())`)
	if csv != "text/csv; charset=utf-8|239,187,191|folder,target,uid,date,from,subject,message_id,problem,detail\n" {
		t.Fatalf("verify report %q", csv)
	}

	// Devices: the outgoing server for the profile, then the profile.
	step("devices page", chromedp.Navigate(strings.TrimSuffix(loginURL[:strings.Index(loginURL, "/login")], "/")+"/devices"),
		chromedp.WaitVisible(chromedp.CSS("#listeners .listener")))
	if got := text("#dev-user"); got != user {
		t.Fatalf("device user %q", got)
	}
	step("outgoing server", chromedp.WaitVisible(chromedp.CSS("#profile-problem")),
		chromedp.SetValue(chromedp.CSS("#acct-smtp-host"), "smtp.example.com"),
		chromedp.SetValue(chromedp.CSS("#acct-smtp-port"), "587"),
		chromedp.Click(chromedp.CSS("#acct-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#profile-link")))
	qr := eval("qr", `fetch(document.querySelector('#listeners img').src).then(r => r.headers.get('Content-Type') + ' ' + r.status)`)
	if qr != "image/png 200" {
		t.Fatalf("QR code: %s", qr)
	}
	prof := eval("profile", `fetch(document.getElementById('profile-link').href).then(async r => r.headers.get('Content-Type') + ' ' +
		btoa(String.fromCharCode(...new Uint8Array(await r.arrayBuffer()))))`)
	ctype, b64, _ := strings.Cut(prof, " ")
	if ctype != "application/x-apple-aspen-config" {
		t.Fatalf("profile Content-Type %q", ctype)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	ca := checkProfile(t, raw, user, "127.0.0.1", imapsPort)
	// The same CA for Android, Thunderbird and Windows: the link, its
	// fingerprint and the steps are there, and it downloads as a CA
	// certificate.
	if got := eval("CA offer", `[!document.getElementById('ca-offer').hidden, document.getElementById('ca-link').getAttribute('href'),
		document.getElementById('ca-fp').textContent, !document.getElementById('android-ca').hidden, !document.getElementById('tb-ca').hidden,
		!document.getElementById('windows').hidden, document.getElementById('ca-own').hidden].join('|')`); got != "true|/devices/popbridge-ca.crt|"+certs.Fingerprint(ca.Raw)+"|true|true|true|true" {
		t.Fatalf("the certificate offer on the Devices page: %s", got)
	}
	caDL := eval("CA download", `fetch(document.getElementById('ca-link').href).then(async r => r.headers.get('Content-Type') + '|' + await r.text())`)
	ctype, caPEM, _ := strings.Cut(caDL, "|")
	if blk, _ := pem.Decode([]byte(caPEM)); ctype != "application/x-x509-ca-cert" || blk == nil || !bytes.Equal(blk.Bytes, ca.Raw) || strings.Contains(caPEM, "PRIVATE KEY") {
		t.Fatalf("CA download: %s\n%s", ctype, caPEM)
	}
	// The CA in the profile verifies the certificate the IMAPS listener
	// serves: log in over it.
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c = dialBridgeTLS(t, imapsPort, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, user, devicePW)
	c.Logout().Wait()

	// The config the console wrote is the CLI's: private, and `status`
	// reports the console's address.
	if st, err := os.Stat(cfgPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("config mode: %v %v", st.Mode(), err)
	}
	cfg2, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatalf("saved config: %v", err)
	}
	if len(cfg2.Archive.Sources) != 2 || cfg2.Upstream == nil || len(cfg2.Users) != 1 || cfg2.Users[0].Name != user {
		t.Fatalf("saved config: %v", cfg2)
	}
	rep, err := getStatus(cfg2)
	if err != nil || !rep.Running || rep.Console == "" || !strings.HasPrefix(loginURL, "http://"+rep.Console+"/") {
		t.Fatalf("status: %+v %v", rep, err)
	}

	// At last, quit popbridge from the header's link: the confirmation
	// says what it means, then the page says popbridge has stopped, and
	// it has.
	step("quit link", chromedp.Click(chromedp.CSS("#quit-link")), chromedp.WaitVisible(chromedp.CSS("#quit-btn")))
	if loc := eval("location", `location.pathname + location.hash`); loc != "/settings#quit" {
		t.Fatalf("the quit link leads to %s", loc)
	}
	step("quit", chromedp.Click(chromedp.CSS("#quit-btn")), chromedp.WaitVisible(chromedp.CSS("#quit-confirm")))
	confirm := text("#quit-confirm-box")
	for _, want := range []string{"cannot connect", "popbridgew.exe", "does not start by itself"} {
		if !strings.Contains(confirm, want) {
			t.Errorf("the quit confirmation lacks %q: %q", want, confirm)
		}
	}
	step("confirm quit", chromedp.Click(chromedp.CSS("#quit-confirm")))
	poll("stopped", `!!document.getElementById('stopped') && document.getElementById('stopped').textContent.includes('popbridge has stopped; you can close this tab.')`)
	select {
	case <-run.done:
		if run.err != nil {
			t.Fatalf("popbridge after quit: %v", run.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("popbridge did not stop\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, control.InfoFile)); !os.IsNotExist(err) {
		t.Errorf("control.json after quit: %v", err)
	}
}

func jsonString(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`)
}

// dialBridgeTLS logs in to the bridge's IMAPS listener (tlsCfg nil: without
// checking the certificate).
func dialBridgeTLS(t *testing.T, port int, tlsCfg *tls.Config, user, pw string) *imapclient.Client {
	t.Helper()
	if tlsCfg == nil {
		tlsCfg = &tls.Config{InsecureSkipVerify: true}
	}
	c, err := imapclient.DialTLS(fmt.Sprintf("127.0.0.1:%d", port), &imapclient.Options{TLSConfig: tlsCfg})
	if err != nil {
		t.Fatalf("IMAPS to the bridge: %v", err)
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		t.Fatalf("login with the device password: %v", err)
	}
	return c
}

// checkProfile parses an Apple configuration profile: an IMAP account for
// user at host:port over TLS without a password, and a root CA, which it
// returns.
func checkProfile(t *testing.T, raw []byte, user, host string, port int) *x509.Certificate {
	t.Helper()
	var p struct {
		PayloadType    string
		PayloadContent []map[string]any
	}
	if _, err := plist.Unmarshal(raw, &p); err != nil {
		t.Fatalf("profile is not a plist: %v\n%s", err, raw)
	}
	if p.PayloadType != "Configuration" || len(p.PayloadContent) != 2 {
		t.Fatalf("profile: %s with %d payloads", p.PayloadType, len(p.PayloadContent))
	}
	var ca *x509.Certificate
	mail := false
	for _, pl := range p.PayloadContent {
		switch pl["PayloadType"] {
		case "com.apple.mail.managed":
			mail = true
			if pl["EmailAccountType"] != "EmailTypeIMAP" || pl["IncomingMailServerHostName"] != host || fmt.Sprint(pl["IncomingMailServerPortNumber"]) != fmt.Sprint(port) ||
				pl["IncomingMailServerUseSSL"] != true || pl["IncomingMailServerUsername"] != user {
				t.Errorf("mail payload %v", pl)
			}
			for k := range pl {
				if strings.Contains(strings.ToLower(k), "password") && k != "OutgoingPasswordSameAsIncomingPassword" {
					t.Errorf("the profile carries %s", k)
				}
			}
		case "com.apple.security.root":
			der, ok := pl["PayloadContent"].([]byte)
			if !ok {
				t.Fatalf("root payload content %T", pl["PayloadContent"])
			}
			c, err := x509.ParseCertificate(der)
			if err != nil || !c.IsCA {
				t.Fatalf("root payload: %v (CA %v)", err, c != nil && c.IsCA)
			}
			ca = c
		}
	}
	if !mail || ca == nil {
		t.Fatalf("profile payloads: mail %v, CA %v", mail, ca != nil)
	}
	return ca
}
