package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/certs"
	"github.com/popbridge/popbridge/control"
)

// consoleShell is popbridge running as serve runs it (the shell, with the
// console), for HTTP tests of the console.
type consoleShell struct {
	cfg       *Config
	out       *syncBuffer
	done      chan error // runShell's answer
	base      string     // the console, http://127.0.0.1:port
	imapsAddr string
	c         *http.Client // a browser, logged in
}

// startConsoleShell starts popbridge with an archive, both IMAP listeners
// and the console, and logs a browser in.
func startConsoleShell(t *testing.T) *consoleShell {
	t.Helper()
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), archiveSource(t), "")
	imapsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), `imaps = "off"`, fmt.Sprintf("imaps = %q", imapsAddr), 1) + "[console]\nlisten = \"127.0.0.1:0\"\n"
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s := &consoleShell{cfg: cfg, out: &syncBuffer{}, done: make(chan error, 1), imapsAddr: imapsAddr}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { s.done <- runShell(ctx, cfg, shellOptions{ready: func(u string) { ready <- u }}, s.out, s.out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("popbridge did not stop")
		}
		if t.Failed() {
			t.Logf("popbridge:\n%s", s.out.String())
		}
	})
	var loginURL string
	select {
	case loginURL = <-ready:
	case err := <-s.done:
		t.Fatalf("popbridge ended: %v\n%s", err, s.out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("popbridge did not start")
	}
	s.base = loginURL[:strings.Index(loginURL, "/login")]
	jar, _ := cookiejar.New(nil)
	s.c = &http.Client{Jar: jar, Timeout: 60 * time.Second}
	if resp, _ := s.do(t, "GET", loginURL[len(s.base):], "", nil); resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	// Ready when the bridge runs (the listeners are up).
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, body := s.do(t, "GET", "/api/dashboard", "", nil)
		if strings.Contains(body, `"state":"running"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bridge never ran: %s", body)
		}
		time.Sleep(20 * time.Millisecond) // polling for readiness
	}
	return s
}

// do sends a request as the console page does: POSTs carry JSON and the
// headers given (the CSRF token among them, or not).
func (s *consoleShell) do(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestConsoleCADownload: the Devices page offers popbridge's CA: the
// download is a CA certificate (PEM, application/x-x509-ca-cert), the one
// whose fingerprint the page shows, and it verifies the certificate the
// IMAPS listener serves; no answer of the console carries a private key.
func TestConsoleCADownload(t *testing.T) {
	s := startConsoleShell(t)
	keys := []string{"PRIVATE KEY"}
	for _, name := range []string{certs.CAKeyFile, certs.ServerKeyFile} {
		b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, "tls", name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s is not PEM", name)
		}
		// The key's base64 lines, any of which would give it away.
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				keys = append(keys, line)
			}
		}
	}
	noKey := func(what, body string) {
		t.Helper()
		for _, k := range keys {
			if strings.Contains(body, k) {
				t.Errorf("%s: the answer holds a private key (%.12s…)", what, k)
			}
		}
	}

	resp, pemText := s.do(t, "GET", "/devices/popbridge-ca.crt", "", nil)
	noKey("the CA download", pemText)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-x509-ca-cert" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="popbridge-ca.crt"` {
		t.Fatalf("CA download: %d %v", resp.StatusCode, resp.Header)
	}
	blk, rest := pem.Decode([]byte(pemText))
	if blk == nil || blk.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("not one PEM certificate:\n%s", pemText)
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("the download is no CA certificate: %v", err)
	}
	_, body := s.do(t, "GET", "/api/devices", "", nil)
	noKey("devices", body)
	var d control.Devices
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.CAFingerprint != certs.Fingerprint(ca.Raw) || d.OwnCert != "" {
		t.Fatalf("the page shows fingerprint %q, the download is %q (own cert %q)", d.CAFingerprint, certs.Fingerprint(ca.Raw), d.OwnCert)
	}
	// The IMAPS listener's certificate chains to it (and to nothing else
	// this test trusts).
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	conn, err := tls.Dial("tcp", s.imapsAddr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("IMAPS with the downloaded CA: %v", err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if leaf.IsCA || certs.Fingerprint(leaf.Raw) != d.ServerFingerprint {
		t.Errorf("served certificate: CA %v, fingerprint %s, the page shows %s", leaf.IsCA, certs.Fingerprint(leaf.Raw), d.ServerFingerprint)
	}
	for _, p := range []string{"/devices", "/settings", "/api/system", "/api/settings", "/devices/popbridge.mobileconfig", "/static/console.js"} {
		_, body := s.do(t, "GET", p, "", nil)
		noKey(p, body)
	}
	// Not without a session.
	jar, _ := cookiejar.New(nil)
	other := &http.Client{Jar: jar}
	r, err := other.Get(s.base + "/devices/popbridge-ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("CA download without a session: %d", r.StatusCode)
	}
}

// TestConsoleQuit: "Quit popbridge" needs the page's CSRF token; an
// uninstall without "delete data" and without quit leaves popbridge
// running; quit stops everything — runShell returns, control.json goes,
// the data dir is free, the console, the IMAP listeners and an open event
// stream close.
func TestConsoleQuit(t *testing.T) {
	env := fakeAutostart(t)
	s := startConsoleShell(t)
	tok := csrf(t, s.c, s.base)
	own := map[string]string{"X-CSRF-Token": tok, "Origin": s.base, "Sec-Fetch-Site": "same-origin"}
	running := func(what string) {
		t.Helper()
		select {
		case err := <-s.done:
			t.Fatalf("%s: popbridge stopped (%v)\n%s", what, err, s.out.String())
		default:
		}
		if resp, body := s.do(t, "GET", "/api/system", "", nil); resp.StatusCode != 200 || !strings.Contains(body, `"quit":true`) {
			t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
		}
		if _, err := os.Stat(filepath.Join(s.cfg.DataDir, control.InfoFile)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Uninstall, keeping the data and not quitting: autostart goes,
	// popbridge stays.
	if resp, body := s.do(t, "POST", "/api/system", `{"autostart":true}`, own); resp.StatusCode != 200 || !strings.Contains(body, `"autostart":true`) {
		t.Fatalf("autostart on: %d %s", resp.StatusCode, body)
	}
	entry := filepath.Join(env.Home, ".config", "autostart", "popbridge.desktop")
	if _, err := os.Stat(entry); err != nil {
		t.Fatal(err)
	}
	resp, body := s.do(t, "POST", "/api/system", `{"uninstall":true}`, own)
	if resp.StatusCode != 200 || strings.Contains(body, `"stopping"`) || !strings.Contains(body, `"autostart":false`) {
		t.Fatalf("uninstall without quit: %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Errorf("the autostart entry after the uninstall: %v", err)
	}
	running("after an uninstall without quit")

	// Quit without the page's token, from another site, without a
	// session: refused.
	for _, hdr := range []map[string]string{
		{},
		{"X-CSRF-Token": strings.Repeat("0", 64)},
		{"X-CSRF-Token": tok, "Origin": "http://evil.example.com"},
		{"X-CSRF-Token": tok, "Sec-Fetch-Site": "cross-site"},
	} {
		if resp, body := s.do(t, "POST", "/api/system", `{"quit":true}`, hdr); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"code":"csrf"`) {
			t.Errorf("quit with %v: %d %s", hdr, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest("POST", s.base+"/api/system", strings.NewReader(`{"quit":true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", tok)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("quit without a session: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	running("after refused quits")

	// A page's open event stream does not hold the stop up.
	evReq, _ := http.NewRequest("GET", s.base+"/events", nil)
	evResp, err := s.c.Do(evReq)
	if err != nil || evResp.StatusCode != 200 {
		t.Fatalf("events: %v", err)
	}
	streamEnded := make(chan struct{})
	go func() {
		defer close(streamEnded)
		sc := bufio.NewScanner(evResp.Body)
		for sc.Scan() {
		}
		evResp.Body.Close()
	}()

	// Quit, as the page asks.
	resp, body = s.do(t, "POST", "/api/system", `{"quit":true}`, own)
	if resp.StatusCode != 200 || !strings.Contains(body, `"stopping":true`) {
		t.Fatalf("quit: %d %s", resp.StatusCode, body)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("runShell after quit: %v", err)
		}
		s.done <- nil // for the cleanup
	case <-time.After(60 * time.Second):
		t.Fatalf("popbridge did not stop\n%s", s.out.String())
	}
	select {
	case <-streamEnded:
	case <-time.After(30 * time.Second):
		t.Error("the event stream outlived popbridge")
	}
	if _, err := os.Stat(filepath.Join(s.cfg.DataDir, control.InfoFile)); !os.IsNotExist(err) {
		t.Errorf("control.json after quit: %v", err)
	}
	claim, err := control.ClaimDataDir(s.cfg.DataDir)
	if err != nil {
		t.Errorf("the data dir is still held after quit: %v", err)
	} else {
		claim.Release()
	}
	if _, err := s.c.Get(s.base + "/static/console.css"); err == nil {
		t.Error("the console still answers")
	}
	for _, addr := range []string{s.cfg.Listen.IMAP, s.imapsAddr} {
		if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections", addr)
		}
	}
	if !strings.Contains(s.out.String(), "popbridge: stopped, as asked in the console") {
		t.Errorf("output:\n%s", s.out.String())
	}
	// The data dir and the archive are as they were.
	if _, err := os.Stat(s.cfg.DataDir); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(s.cfg.Archive.Sources[0].Path); err != nil {
		t.Error(err)
	}
}

// TestQuitCLI: `popbridge quit` stops the running popbridge through the
// control API and returns once the data dir is free; with none running it
// says so.
func TestQuitCLI(t *testing.T) {
	s := startConsoleShell(t)
	var out, errb strings.Builder
	if code := run([]string{"quit", "-config", s.cfg.Path}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "has stopped") {
		t.Fatalf("quit: %d %q %q", code, out.String(), errb.String())
	}
	if _, held := control.Held(s.cfg.DataDir); held {
		t.Error("the data dir is still held after quit returned")
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("runShell after quit: %v", err)
		}
		s.done <- nil // for the cleanup
	case <-time.After(60 * time.Second):
		t.Fatal("runShell did not return")
	}
	out.Reset()
	if code := run([]string{"quit", "-config", s.cfg.Path}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "not running") {
		t.Errorf("quit with nothing running: %d %q", code, out.String())
	}
}
