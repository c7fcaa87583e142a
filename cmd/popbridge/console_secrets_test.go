package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/popbridge/popbridge/certs"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/internal/oauthtest"
	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/oauth"
)

// runTestShell runs popbridge (as serve does) on cfgPath and returns the
// console's login URL.
func runTestShell(t *testing.T, cfgPath string) (string, *syncBuffer, *Config) {
	t.Helper()
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runShell(ctx, cfg, shellOptions{ready: func(u string) { ready <- u }}, out, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("popbridge: %v", err)
		}
	})
	select {
	case u := <-ready:
		return u, out, cfg
	case err := <-done:
		t.Fatalf("popbridge ended: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("popbridge did not start")
	}
	return "", nil, nil
}

// TestConsoleNoSecrets plants known secrets — the mailbox and POP
// passwords (inline and in a file), the device password's hash, the
// control token, and then, after the mailbox switched to a browser sign-in
// through the console, the app registration's client secret and the OAuth
// access and refresh tokens — then asks every page and every call of the
// console and of the control API, and reads the log: none of them ever
// shows up.
func TestConsoleNoSecrets(t *testing.T) {
	testenv.RequireDovecot(t)
	const upPW, popPW, devicePW, clientSecret = "Sekret-Upstream-7Qx", "Sekret-POP-3Wz", "Sekret-Device-9Kp", "Sekret-Client-4Hv"
	fake := oauthtest.Start(t, "nosecrets-client")
	fake.Secret = clientSecret
	oauthPresetOverride = &oauth.Preset{Name: "Google", AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), Scopes: []string{"mail"}, RedirectHost: "127.0.0.1"}
	t.Cleanup(func() { oauthPresetOverride = nil })
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{OAuth2IntrospectURL: fake.IntrospectURL(),
		Users: []testenv.DovecotUser{{Name: "alice", Password: upPW, QuotaBytes: 50 << 20}, {Name: "oldpop", Password: popPW}}})
	dir := t.TempDir()
	home := t.TempDir()
	useHome(t, home)
	mbox := filepath.Join(dir, "Old.mbox")
	var mb strings.Builder
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&mb, "From a@example.com Mon Jan  2 15:04:05 2006\nFrom: a%d@example.com\nSubject: old %d\nMessage-ID: <s%d@example.com>\n\nbody %d\n\n", i, i, i, i)
	}
	if err := os.WriteFile(mbox, []byte(mb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	popFile := filepath.Join(dir, "pop.pass")
	if err := os.WriteFile(popFile, []byte(popPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(devicePW), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "popbridge.toml")
	imapsPort := freePort(t)
	cfgText := fmt.Sprintf(`data_dir = %q
[listen]
imap = "127.0.0.1:%d"
imaps = "127.0.0.1:%d"
[console]
listen = "127.0.0.1:0"
[[users]]
name = "taro@example.jp"
password_hash = %q
[[archive.sources]]
path = %q
[upstream]
host = "127.0.0.1"
port = %d
tls = "none"
username = "alice"
password = %q
[[pop3]]
name = "old"
host = "127.0.0.1"
port = %d
tls = "none"
username = "oldpop"
password_file = %q
`, filepath.Join(dir, "data"), freePort(t), imapsPort, hash, mbox, dc.IMAPPort, upPW, dc.POP3Port, popFile)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	loginURL, out, cfg := runTestShell(t, cfgPath)
	info, err := control.ReadInfo(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	// The TLS keys (read once the bridge made them): their PEM base64
	// lines, and any PEM private key.
	keyLines := []string{"PRIVATE KEY"}
	secrets := func() []string {
		return append(append([]string{upPW, popPW, devicePW, string(hash), info.Token, clientSecret}, keyLines...), fake.Tokens()...)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	base := loginURL[:strings.Index(loginURL, "/login")]
	checked := 0
	check := func(what string, resp *http.Response, body []byte) {
		t.Helper()
		checked++
		for _, s := range secrets() {
			for _, form := range []string{s, jsonEscaped(s)} {
				if strings.Contains(string(body), form) {
					t.Errorf("%s: the answer contains a secret (%.6s…)", what, s)
				}
				for k, vs := range resp.Header {
					if k == "Set-Cookie" {
						continue
					}
					for _, v := range vs {
						if strings.Contains(v, form) {
							t.Errorf("%s: header %s contains a secret", what, k)
						}
					}
				}
			}
		}
	}
	req := func(method, path, body string) (int, []byte) {
		t.Helper()
		r, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if method == "POST" {
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-CSRF-Token", csrf(t, c, base))
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		check(method+" "+path, resp, b)
		return resp.StatusCode, b
	}
	if code, _ := req("GET", loginURL[len(base):], ""); code != 200 {
		t.Fatalf("login: %d", code)
	}
	// Wait until the bridge runs and the archive is indexed.
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, b := req("GET", "/api/dashboard", "")
		var d control.Dashboard
		json.Unmarshal(b, &d)
		if d.State == "running" && d.Totals.Messages == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard never ready: %s", b)
		}
		time.Sleep(50 * time.Millisecond) // polling for readiness
	}
	for _, name := range []string{certs.CAKeyFile, certs.ServerKeyFile} {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, "tls", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				keyLines = append(keyLines, line)
			}
		}
	}
	if len(keyLines) < 3 {
		t.Fatalf("no key lines found: %d", len(keyLines))
	}
	// Subscribe to the event stream while the calls below change things.
	events := make(chan string, 256)
	go func() {
		r, _ := http.NewRequest("GET", base+"/events", nil)
		resp, err := c.Do(r)
		if err != nil {
			close(events)
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			events <- sc.Text()
		}
		close(events)
	}()

	pages := []string{"/", "/setup", "/move", "/devices", "/settings", "/static/console.js", "/static/console.css",
		"/api/dashboard", "/api/settings", "/api/stores", "/api/browse", "/api/presets?email=me%40gmail.com", "/api/devices",
		"/api/migration", "/api/verify/state", "/api/system", "/api/system/uninstall"}
	for _, p := range pages {
		if code, b := req("GET", p, ""); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, b)
		}
	}
	// "Test connection" with the stored password (none typed).
	code, b := req("POST", "/api/upstream/test", `{"host":"127.0.0.1","port":`+fmt.Sprint(dc.IMAPPort)+`,"tls":"none","username":"alice"}`)
	if code != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Errorf("test connection with the stored password: %d %s", code, b)
	}
	req("POST", "/api/upstream/test", `{"host":"127.0.0.1","port":`+fmt.Sprint(dc.IMAPPort)+`,"tls":"none","username":"alice","password":"wrong"}`)
	// The old POP account's test, with the stored password and a wrong one.
	if code, b := req("POST", "/api/pop3/test", `{"host":"127.0.0.1","port":`+fmt.Sprint(dc.POP3Port)+`,"tls":"none","username":"oldpop"}`); code != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Errorf("POP test with the stored password: %d %s", code, b)
	}
	req("POST", "/api/pop3/test", `{"host":"127.0.0.1","port":`+fmt.Sprint(dc.POP3Port)+`,"tls":"none","username":"oldpop","password":"wrong"}`)
	req("POST", "/api/stores/scan", fmt.Sprintf(`{"path":%q,"format":"mbox"}`, mbox))
	req("POST", "/api/devices/account", `{"email":"taro@example.jp","smtp_host":"smtp.example.jp","smtp_port":587}`)
	req("POST", "/api/plan", `{}`)
	if code, b := req("POST", "/api/migration/start", `{}`); code != 200 {
		t.Fatalf("start: %d %s", code, b)
	}
	for {
		_, b := req("GET", "/api/migration", "")
		var st control.MigrationState
		json.Unmarshal(b, &st)
		if st.State == "done" {
			break
		}
		if st.State == "failed" || time.Now().After(deadline.Add(60*time.Second)) {
			t.Fatalf("migration: %s", b)
		}
		time.Sleep(50 * time.Millisecond) // polling for the end
	}
	req("POST", "/api/verify/start", `{}`)
	for {
		_, b := req("GET", "/api/verify/state", "")
		if strings.Contains(string(b), `"state":"done"`) {
			break
		}
		if time.Now().After(deadline.Add(120 * time.Second)) {
			t.Fatalf("verify: %s", b)
		}
		time.Sleep(50 * time.Millisecond) // polling for the end
	}
	for _, p := range []string{"/verify-report.csv", "/devices/popbridge.mobileconfig?host=127.0.0.1", "/devices/popbridge-ca.crt",
		"/api/devices/qr.png?host=127.0.0.1&listener=imaps&kind=settings", "/api/devices/qr.png?host=127.0.0.1&listener=imaps&kind=thunderbird"} {
		if code, b := req("GET", p, ""); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, b)
		}
	}
	req("POST", "/api/settings", `{}`)
	if code, b := req("GET", "/api/settings", ""); code != 200 || !strings.Contains(string(b), `"password_set":true`) {
		t.Errorf("settings: %d %s", code, b)
	}

	// The mailbox switches to a browser sign-in (Google, with a client
	// secret): the console saves it and opens the provider's page, where
	// the user accepts.
	browser := make(chan string, 1)
	oldOpen := openBrowser
	openBrowser = func(u string) error {
		go func() {
			_, body, err := oauthtest.Authorize(u)
			browser <- fmt.Sprint(body, err)
		}()
		return nil
	}
	t.Cleanup(func() { openBrowser = oldOpen })
	if code, b := req("POST", "/api/settings", `{"upstream":{"host":"127.0.0.1","port":`+fmt.Sprint(dc.IMAPPort)+`,"tls":"none","username":"alice",`+
		`"oauth2":{"provider":"google","client_id":"nosecrets-client","client_secret":"`+clientSecret+`"}}}`); code != 200 || !strings.Contains(string(b), `"client_secret_set":true`) {
		t.Fatalf("save the sign-in: %d %s", code, b)
	}
	if code, b := req("POST", "/api/system", `{"sign_in":"google"}`); code != 200 || !strings.Contains(string(b), `"sign_in_url":"`+jsonEscaped(fake.AuthURL())) {
		t.Fatalf("start the sign-in: %d %s", code, b)
	}
	if page := <-browser; !strings.Contains(page, "Signed in") {
		t.Fatalf("the provider's return page: %s", page)
	}
	for {
		_, b := req("GET", "/api/system", "")
		if strings.Contains(string(b), `"state":"signed-in"`) {
			break
		}
		if time.Now().After(deadline.Add(180 * time.Second)) {
			t.Fatalf("not signed in: %s", b)
		}
		time.Sleep(50 * time.Millisecond) // polling for the sign-in
	}
	if len(fake.Tokens()) < 2 {
		t.Fatalf("the fake server issued %d tokens", len(fake.Tokens()))
	}
	for _, p := range pages {
		if code, b := req("GET", p, ""); code != 200 {
			t.Errorf("GET %s after the sign-in: %d %s", p, code, b)
		}
	}
	// "Test connection" with the sign-in (the stored token, XOAUTH2).
	if code, b := req("POST", "/api/upstream/test", `{"host":"127.0.0.1","port":`+fmt.Sprint(dc.IMAPPort)+`,"tls":"none","username":"alice"}`); code != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Errorf("test connection with the sign-in: %d %s", code, b)
	}
	// The tokens are in the token store, nowhere else in the data dir's
	// config.
	written, _ := os.ReadFile(cfgPath)
	for _, tok := range fake.Tokens() {
		if strings.Contains(string(written), tok) {
			t.Error("a token is in the config file")
		}
	}

	// The control API directly, as the CLI sees it.
	cl := control.NewClient(info.Addr, info.Token)
	ctx := context.Background()
	for name, call := range map[string]func() (any, error){
		"status":    func() (any, error) { return cl.Status(ctx) },
		"dashboard": func() (any, error) { return cl.Dashboard(ctx) },
		"settings":  func() (any, error) { return cl.Settings(ctx) },
		"devices":   func() (any, error) { return cl.Devices(ctx) },
		"ca":        func() (any, error) { return cl.CACertificate(ctx) },
		"migration": func() (any, error) { return cl.Migration(ctx) },
		"verify":    func() (any, error) { return cl.VerifyState(ctx) },
		"fetch":     func() (any, error) { return cl.Fetch(ctx, "") },
		"system":    func() (any, error) { return cl.System(ctx) },
		"plan":      func() (any, error) { return cl.UninstallPlan(ctx) },
	} {
		v, err := call()
		if err != nil {
			t.Errorf("control %s: %v", name, err)
			continue
		}
		b, _ := json.Marshal(v)
		check("control "+name, &http.Response{Header: http.Header{}}, b)
	}

	// The events seen meanwhile, and the log.
	n := 0
	for len(events) > 0 {
		line := <-events
		n++
		check("event", &http.Response{Header: http.Header{}}, []byte(line))
	}
	if n == 0 {
		t.Error("no events arrived while things changed")
	}
	check("log", &http.Response{Header: http.Header{}}, []byte(out.String()))
	if checked < 40 {
		t.Errorf("only %d answers checked", checked)
	}
	_ = imapsPort
}

func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

var csrfRe = regexp.MustCompile(`name="csrf-token" content="([0-9a-f]+)"`)

// csrf reads the CSRF token from a console page.
func csrf(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := c.Get(base + "/settings")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := csrfRe.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no CSRF token on the page (%d)", resp.StatusCode)
	}
	return string(m[1])
}
