package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/control"
)

// TestDesktopStart: popbridge without a command and without a
// configuration creates one, starts in setup mode and opens the console
// (browser opener stubbed); a second start opens the running one's console;
// `popbridge console -print` prints a fresh login link; `status -json`
// names the console's address.
func TestDesktopStart(t *testing.T) {
	// A new configuration uses the documented ports.
	for _, addr := range []string{defaultIMAP, defaultIMAPS} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("%s is taken on this machine: %v", addr, err)
		}
		ln.Close()
	}
	home := t.TempDir()
	useHome(t, home)
	opened := make(chan string, 4)
	old := openBrowser
	openBrowser = func(u string) error { opened <- u; return nil }
	defer func() { openBrowser = old }()

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- desktop(ctx, "", false, out, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("desktop: %v", err)
		}
	}()
	var first string
	select {
	case first = <-opened:
	case err := <-done:
		t.Fatalf("desktop ended: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no browser opened\n%s", out.String())
	}
	cfgPath := filepath.Join(home, ".config", "popbridge", "popbridge.toml")
	st, err := os.Stat(cfgPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config %s: %v %v", cfgPath, st, err)
	}
	if !strings.Contains(out.String(), "created "+cfgPath) || !strings.Contains(out.String(), first) || !strings.Contains(first, "/login?token=") {
		t.Fatalf("output:\n%s\nopened %s", out.String(), first)
	}
	// The link logs in and shows the setup (nothing is configured).
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(first)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %v %v", resp, err)
	}
	resp.Body.Close()
	base := first[:strings.Index(first, "/login")]
	resp, err = c.Get(base + "/api/settings")
	if err != nil {
		t.Fatal(err)
	}
	var set control.Settings
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if set.Configured || set.ConfigPath != cfgPath {
		t.Fatalf("settings %+v", set)
	}

	// A second double-click opens the running one's console.
	out2 := &syncBuffer{}
	if err := desktop(context.Background(), "", false, out2, out2); err != nil {
		t.Fatalf("second start: %v\n%s", err, out2.String())
	}
	second := <-opened
	if second == first || !strings.HasPrefix(second, base+"/login?token=") || !strings.Contains(out2.String(), "already running") {
		t.Fatalf("second start opened %q (first %q)\n%s", second, first, out2.String())
	}

	// popbridge console -print, and status -json.
	var stdout, stderr strings.Builder
	if code := run([]string{"console", "-print"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("console -print: %d %s", code, stderr.String())
	}
	if u := strings.TrimSpace(stdout.String()); !strings.HasPrefix(u, base+"/login?token=") || u == first || u == second {
		t.Fatalf("console -print: %q", u)
	}
	select {
	case u := <-opened:
		t.Fatalf("console -print opened the browser (%s)", u)
	default:
	}
	stdout.Reset()
	if code := run([]string{"status", "-json"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("status -json: %d %s", code, stderr.String())
	}
	var rep control.Status
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil || !rep.Running || "http://"+rep.Console != base {
		t.Fatalf("status -json: %v %s", err, stdout.String())
	}
}

// TestConsoleCommandWithoutBridge: a plain explanation, exit 1.
func TestConsoleCommandWithoutBridge(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), map[string]string{}, "")
	var stdout, stderr strings.Builder
	if code := run([]string{"console", "-config", cfgPath}, nil, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "popbridge is not running") {
		t.Fatalf("console without a bridge: %d %q", code, stderr.String())
	}
}
