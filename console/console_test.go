package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/certs"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/discover"
)

// memHost is a control.Host over settings in memory.
type memHost struct {
	mu    sync.Mutex
	set   control.Settings
	saved []control.SettingsChange
}

func (h *memHost) Settings() (*control.Settings, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.set
	return &s, nil
}

func (h *memHost) SaveSettings(ctx context.Context, ch control.SettingsChange) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.saved = append(h.saved, ch)
	return false, nil
}

func (h *memHost) Secret(ctx context.Context, which string) (string, error) { return "", nil }

// fakeSystem is the desktop integration, recording what reaches it.
type fakeSystem struct {
	mu      sync.Mutex
	changes []control.SystemChange
	lines   []int
	plans   int
}

func (f *fakeSystem) System(ctx context.Context) (*control.System, error) {
	off := false
	return &control.System{Autostart: &off, Uninstall: true, SignInProviders: []string{"microsoft", "google"}, LogFile: "/data/logs/popbridge.log"}, nil
}

func (f *fakeSystem) SetSystem(ctx context.Context, ch control.SystemChange) (*control.System, error) {
	f.mu.Lock()
	f.changes = append(f.changes, ch)
	f.mu.Unlock()
	return f.System(ctx)
}

func (f *fakeSystem) UninstallPlan(ctx context.Context) (*control.UninstallPlan, error) {
	f.mu.Lock()
	f.plans++
	f.mu.Unlock()
	return &control.UninstallPlan{DataDir: "/data", Archives: []string{"/home/me/Mail"}}, nil
}

func (f *fakeSystem) Log(ctx context.Context, lines int) (*control.Log, error) {
	f.mu.Lock()
	f.lines = append(f.lines, lines)
	f.mu.Unlock()
	return &control.Log{File: "/data/logs/popbridge.log", Lines: []string{"level=INFO msg=one"}}, nil
}

func (f *fakeSystem) calls() (int, []int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.changes), append([]int(nil), f.lines...), f.plans
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testConsole struct {
	svc   *control.Service
	con   *Server
	base  string // http://127.0.0.1:port
	port  string
	clock *clock
	host  *memHost
	sys   *fakeSystem
}

// newTestConsole runs a console over a real control Service and endpoint
// (no bridge attached: calls that need one answer "not running").
func newTestConsole(t *testing.T) *testConsole {
	t.Helper()
	dir := t.TempDir()
	home := t.TempDir()
	host := &memHost{set: control.Settings{ConfigPath: dir + "/popbridge.toml", DataDir: dir, Configured: true, Prefix: "Local",
		Sources: []control.SourceSetting{}, POP3: []control.POPSetting{}, Users: []control.UserSetting{{Name: "me", PasswordSet: true}}}}
	sys := &fakeSystem{}
	svc := control.NewService(control.Options{Version: "test", DataDir: dir, Host: host, AttachWait: time.Millisecond, System: sys,
		Env: &discover.Env{GOOS: "linux", Home: home}, Logger: slog.New(slog.DiscardHandler)})
	svc.SetStartError(context.Canceled)
	ctl, err := control.Listen(svc, dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	c := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	con, err := New(Options{API: ctl.Client(), Version: "test", Now: c.now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := con.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { con.Close() })
	_, port, _ := strings.Cut(con.Addr(), ":")
	return &testConsole{svc: svc, con: con, base: "http://" + con.Addr(), port: port, clock: c, host: host, sys: sys}
}

// client is a browser: cookies, no redirects followed.
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, u string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login uses a fresh login URL and returns the page's CSRF token.
func (tc *testConsole) login(t *testing.T, c *http.Client) string {
	t.Helper()
	u, err := tc.con.LoginURL()
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := do(t, c, "GET", u, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	_, page := do(t, c, "GET", tc.base+"/settings", nil, nil)
	m := regexp.MustCompile(`name="csrf-token" content="([0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

func TestListenLoopbackOnly(t *testing.T) {
	con, err := New(Options{API: &control.Client{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "192.168.1.10:0", ":0", "example.com:80"} {
		if err := con.Listen(addr); err == nil {
			con.Close()
			t.Errorf("Listen(%q) accepted a non-loopback address", addr)
		}
	}
}

// TestHostCheck: only localhost and loopback addresses may be named in
// the Host header (a DNS name pointed at 127.0.0.1 is refused).
func TestHostCheck(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	for _, h := range []string{"evil.example.com", "evil.example.com:" + tc.port, "127.0.0.1.nip.io:" + tc.port, "localhost.evil.com", "10.0.0.1:" + tc.port, "[fe80::1]:" + tc.port} {
		for _, path := range []string{"/", "/login?token=x", "/static/console.js", "/api/settings"} {
			resp, body := do(t, c, "GET", tc.base+path, nil, map[string]string{"Host": h})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Host check") {
				t.Errorf("Host %q %s: %d %q", h, path, resp.StatusCode, body)
			}
		}
	}
	for _, h := range []string{"127.0.0.1:" + tc.port, "localhost:" + tc.port, "[::1]:" + tc.port, "LOCALHOST", "127.1.2.3"} {
		resp, _ := do(t, c, "GET", tc.base+"/", nil, map[string]string{"Host": h})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Host %q: %d, want 401 (allowed, but not logged in)", h, resp.StatusCode)
		}
	}
}

// TestLoginToken: the login URL works once and for 15 minutes; it sets an
// HttpOnly, SameSite=Strict session cookie; nothing works without it.
func TestLoginToken(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	for _, path := range []string{"/", "/setup", "/api/settings", "/api/stores", "/events", "/verify-report.csv", "/devices/popbridge.mobileconfig",
		"/devices/popbridge-ca.crt", "/api/system", "/api/system/uninstall", "/api/system/log"} {
		resp, _ := do(t, c, "GET", tc.base+path, nil, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d", path, resp.StatusCode)
		}
	}
	resp, _ := do(t, c, "GET", tc.base+"/login?token=0123456789abcdef0123456789abcdef0123456789abcdef", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("made-up token: %d %v", resp.StatusCode, resp.Cookies())
	}
	u, _ := tc.con.LoginURL()
	resp, page := do(t, c, "GET", u, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `http-equiv="refresh"`) {
		t.Fatalf("login: %d\n%s", resp.StatusCode, page)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "popbridge_session_"+tc.port {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/" || len(sess.Value) < 32 {
		t.Fatalf("session cookie %+v (raw %q)", sess, resp.Header.Values("Set-Cookie"))
	}
	if !strings.Contains(resp.Header.Get("Set-Cookie"), "HttpOnly") || !strings.Contains(resp.Header.Get("Set-Cookie"), "SameSite=Strict") {
		t.Fatalf("Set-Cookie %q", resp.Header.Get("Set-Cookie"))
	}
	if resp, _ := do(t, c, "GET", tc.base+"/api/settings", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the session: %d", resp.StatusCode)
	}
	// The token is used up.
	other := client(t)
	if resp, _ := do(t, other, "GET", u, nil, nil); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("second use of a login URL: %d", resp.StatusCode)
	}
	// A wrong session cookie.
	bad, _ := url.Parse(tc.base)
	other.Jar.SetCookies(bad, []*http.Cookie{{Name: sess.Name, Value: strings.Repeat("ab", 32)}})
	if resp, _ := do(t, other, "GET", tc.base+"/api/settings", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged session: %d", resp.StatusCode)
	}
	// An old login URL.
	u2, _ := tc.con.LoginURL()
	tc.clock.add(16 * time.Minute)
	if resp, _ := do(t, other, "GET", u2, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login URL after 16 minutes: %d", resp.StatusCode)
	}
	// A session unused for a day is gone.
	tc.clock.add(25 * time.Hour)
	if resp, _ := do(t, c, "GET", tc.base+"/api/settings", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after a day idle: %d", resp.StatusCode)
	}
}

// TestCSRF: every state change needs the session's CSRF token and must
// come from the console's own origin.
func TestCSRF(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	tok := tc.login(t, c)
	post := func(path, ctype, body string, hdr map[string]string) int {
		h := map[string]string{"Content-Type": ctype}
		for k, v := range hdr {
			h[k] = v
		}
		resp, _ := do(t, c, "POST", tc.base+path, strings.NewReader(body), h)
		return resp.StatusCode
	}
	const js = "application/json"
	for _, path := range []string{"/api/settings", "/api/device-password", "/api/migration/start", "/api/migration/pause", "/api/verify/start", "/api/system", "/api/upstream/test", "/api/devices/account", "/api/stores/scan", "/api/plan", "/api/pop3/test"} {
		if code := post(path, js, `{}`, nil); code != http.StatusForbidden {
			t.Errorf("%s without a token: %d", path, code)
		}
		if code := post(path, js, `{}`, map[string]string{"X-CSRF-Token": strings.Repeat("0", 64)}); code != http.StatusForbidden {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
	}
	n := len(tc.host.saved)
	if code := post("/api/settings", js, `{}`, map[string]string{"X-CSRF-Token": tok, "Origin": "http://evil.example.com"}); code != http.StatusForbidden {
		t.Errorf("foreign Origin: %d", code)
	}
	if code := post("/api/settings", js, `{}`, map[string]string{"X-CSRF-Token": tok, "Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("cross-site request: %d", code)
	}
	if len(tc.host.saved) != n {
		t.Fatal("a refused request changed the settings")
	}
	if code := post("/api/settings", js, `{}`, map[string]string{"X-CSRF-Token": tok, "Origin": tc.base, "Sec-Fetch-Site": "same-origin"}); code != http.StatusOK {
		t.Errorf("the console's own request: %d", code)
	}
	if len(tc.host.saved) != n+1 {
		t.Fatal("the console's own request did not reach the settings")
	}
	// The plain forms carry the token as a field.
	if code := post("/lang", "application/x-www-form-urlencoded", "lang=ja&next=/move", nil); code != http.StatusForbidden {
		t.Errorf("language form without a token: %d", code)
	}
	resp, _ := do(t, c, "POST", tc.base+"/lang", strings.NewReader("lang=ja&next=//evil.example.com&csrf="+tok), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("language form: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code := post("/logout", "application/x-www-form-urlencoded", "", nil); code != http.StatusForbidden {
		t.Errorf("logout without a token: %d", code)
	}
}

// TestSystemCalls: the switches and buttons of the desktop integration
// (autostart, sign-in, uninstall) change something only with the session's
// CSRF token from the console's own origin; the plan and the log need a
// session; the log is bounded.
func TestSystemCalls(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	tok := tc.login(t, c)
	for _, body := range []string{`{"autostart":true}`, `{"sign_in":"microsoft"}`, `{"uninstall":true,"remove_data":true}`, `{"quit":true}`, `{"uninstall":true,"quit":true}`} {
		for _, hdr := range []map[string]string{
			{},
			{"X-CSRF-Token": strings.Repeat("0", 64)},
			{"X-CSRF-Token": tok, "Origin": "http://evil.example.com"},
			{"X-CSRF-Token": tok, "Sec-Fetch-Site": "cross-site"},
		} {
			h := map[string]string{"Content-Type": "application/json"}
			for k, v := range hdr {
				h[k] = v
			}
			if resp, _ := do(t, c, "POST", tc.base+"/api/system", strings.NewReader(body), h); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s with %v: %d", body, hdr, resp.StatusCode)
			}
		}
		// Another browser without a session, with a token it guessed.
		if resp, _ := do(t, client(t), "POST", tc.base+"/api/system", strings.NewReader(body), map[string]string{"Content-Type": "application/json", "X-CSRF-Token": tok}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d", body, resp.StatusCode)
		}
	}
	if n, _, _ := tc.sys.calls(); n != 0 {
		t.Fatalf("%d refused requests reached the desktop integration", n)
	}
	h := map[string]string{"Content-Type": "application/json", "X-CSRF-Token": tok, "Origin": tc.base, "Sec-Fetch-Site": "same-origin"}
	if resp, body := do(t, c, "POST", tc.base+"/api/system", strings.NewReader(`{"autostart":true}`), h); resp.StatusCode != 200 || !strings.Contains(body, `"log_file"`) {
		t.Errorf("the console's own request: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, c, "GET", tc.base+"/api/system/log?lines=5000", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, "msg=one") {
		t.Errorf("log: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, c, "GET", tc.base+"/api/system/uninstall", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `"archives":["/home/me/Mail"]`) {
		t.Errorf("uninstall plan: %d %s", resp.StatusCode, body)
	}
	n, lines, plans := tc.sys.calls()
	if n != 1 || len(lines) != 1 || lines[0] != 1000 || plans != 1 {
		t.Errorf("reached the desktop integration: %d changes, log lines %v, %d plans", n, lines, plans)
	}
}

// TestHeadersAndPages: every answer carries the security headers; pages
// have no inline script, handler or style (the CSP would block them), and
// they are in the language the browser asks for, or the one chosen.
func TestHeadersAndPages(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	tok := tc.login(t, c)
	scripts := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	inline := regexp.MustCompile(`(?i)\son[a-z]+\s*=|\sstyle\s*=|<style`)
	catalogAttr := regexp.MustCompile(`data-i18n="[^"]*"`)
	for _, lang := range []struct{ accept, want, text string }{{"ja-JP,ja;q=0.9,en;q=0.8", "ja", "サーバーへ移す"}, {"en-US,en", "en", "Move to the server"}, {"fr-FR", "en", "Move to the server"}, {"", "en", "Overview"}} {
		for _, path := range []string{"/", "/setup", "/move", "/devices", "/settings"} {
			resp, page := do(t, c, "GET", tc.base+path, nil, map[string]string{"Accept-Language": lang.accept})
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d", path, resp.StatusCode)
			}
			if resp.Header.Get("Content-Security-Policy") != contentSecurityPolicy || resp.Header.Get("X-Frame-Options") != "DENY" ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s headers: %v", path, resp.Header)
			}
			if !strings.Contains(page, `<html lang="`+lang.want+`">`) || !strings.Contains(page, lang.text) {
				t.Errorf("%s with Accept-Language %q: not in %s", path, lang.accept, lang.want)
			}
			for _, m := range scripts.FindAllStringSubmatch(page, -1) {
				if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
					t.Errorf("%s has an inline script: %q", path, m[0])
				}
			}
			if m := inline.FindString(catalogAttr.ReplaceAllString(page, "")); m != "" {
				t.Errorf("%s has an inline handler or style: %q", path, m)
			}
		}
	}
	for _, path := range []string{"/static/console.js", "/static/console.css", "/api/settings", "/login?token=x"} {
		resp, _ := do(t, c, "GET", tc.base+path, nil, nil)
		if resp.Header.Get("Content-Security-Policy") != contentSecurityPolicy || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: security headers missing: %v", path, resp.Header)
		}
	}
	// The language chosen in the console wins over the browser's.
	do(t, c, "POST", tc.base+"/lang", strings.NewReader("lang=ja&next=/devices&csrf="+tok), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	_, page := do(t, c, "GET", tc.base+"/devices", nil, map[string]string{"Accept-Language": "en"})
	if !strings.Contains(page, `<html lang="ja">`) || !strings.Contains(page, "端末をつなぐ") {
		t.Error("the chosen language was not remembered")
	}
	// Without a session the page explains the way in, in both languages.
	_, page = do(t, client(t), "GET", tc.base+"/", nil, nil)
	if !strings.Contains(page, "popbridge console") || !strings.Contains(page, "コンソール") || !strings.Contains(page, "Please open") {
		t.Errorf("no-session page:\n%s", page)
	}
}

// TestBrowseStaysHome: the folder picker lists the home directory and
// refuses anything outside it.
func TestBrowseStaysHome(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	tc.login(t, c)
	resp, body := do(t, c, "GET", tc.base+"/api/browse", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"home"`) {
		t.Fatalf("browse home: %d %s", resp.StatusCode, body)
	}
	for _, dir := range []string{"/", "/etc", "/tmp/..", "relative"} {
		resp, body := do(t, c, "GET", tc.base+"/api/browse?dir="+url.QueryEscape(dir), nil, nil)
		if resp.StatusCode == 200 {
			t.Errorf("browse %q: %d %s", dir, resp.StatusCode, body)
		}
	}
}

// TestIdleCostsNothing: an open page's event stream is the only listener
// the Service has; when the page goes, nothing is left watching.
func TestIdleCostsNothing(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	tc.login(t, c)
	if n := tc.svc.Listeners(); n != 0 {
		t.Fatalf("%d listeners before any page", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", tc.base+"/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 64)
	if n, _ := resp.Body.Read(line); n == 0 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: %q %v", line[:n], resp.Header)
	}
	if n := tc.svc.Listeners(); n != 1 {
		t.Fatalf("%d listeners with one page open", n)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for tc.svc.Listeners() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners after the page went away", tc.svc.Listeners())
		}
		time.Sleep(10 * time.Millisecond) // polling for the stream to end
	}
}

// TestCADownload: the Devices page's certificate link serves popbridge's
// CA (PEM, as a CA certificate to install, named .crt) to a session only;
// with the user's own certificate it says, in the console's words, that
// there is none.
func TestCADownload(t *testing.T) {
	tc := newTestConsole(t)
	b, err := certs.Ensure(certs.Options{Dir: filepath.Join(t.TempDir(), "tls")})
	if err != nil {
		t.Fatal(err)
	}
	tc.svc.Attach(&control.Runtime{Listeners: []control.Listener{{Kind: "imaps", Addr: "127.0.0.1:1993", Port: 1993}}, CACert: b.CACert.Raw, CAFingerprint: b.CAFingerprintSHA256})
	c := client(t)
	if resp, body := do(t, c, "GET", tc.base+"/devices/popbridge-ca.crt", nil, nil); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "CERTIFICATE") {
		t.Fatalf("without a session: %d", resp.StatusCode)
	}
	tc.login(t, c)
	resp, body := do(t, c, "GET", tc.base+"/devices/popbridge-ca.crt", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-x509-ca-cert" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="popbridge-ca.crt"` || body != string(b.CACertPEM) {
		t.Fatalf("download: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	_, page := do(t, c, "GET", tc.base+"/devices", nil, map[string]string{"Accept-Language": "en"})
	if !strings.Contains(page, `href="/devices/popbridge-ca.crt"`) || !strings.Contains(page, "Encryption &amp; credentials") || !strings.Contains(page, "Trusted Root Certification Authorities") {
		t.Error("the Devices page lacks the certificate link or its steps")
	}

	tc.svc.Attach(&control.Runtime{Listeners: []control.Listener{{Kind: "imaps", Addr: "127.0.0.1:1993", Port: 1993}}, OwnCert: "/srv/mail.pem", OwnCertFingerprint: "AB:CD"})
	resp, body = do(t, c, "GET", tc.base+"/devices/popbridge-ca.crt", nil, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `"code":"nothing"`) || !strings.Contains(body, "/srv/mail.pem") {
		t.Fatalf("download with the user's own certificate: %d %s", resp.StatusCode, body)
	}
	if _, body := do(t, c, "GET", tc.base+"/api/devices", nil, nil); !strings.Contains(body, `"own_cert":"/srv/mail.pem"`) || strings.Contains(body, "ca_fingerprint") {
		t.Fatalf("devices with the user's own certificate: %s", body)
	}
}
