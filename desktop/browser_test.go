package desktop

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestOpenBrowserEnv: $BROWSER is honoured, with %s, and a command that
// cannot run is skipped for the next one.
func TestOpenBrowserEnv(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell script")
	}
	dir := t.TempDir()
	got := filepath.Join(dir, "url")
	script := filepath.Join(dir, "browser.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s' \"$2\" > "+got+".tmp && mv "+got+".tmp "+got+"\n"), 0o755)
	t.Setenv("BROWSER", "/nonexistent/browser:"+script+" --new-tab %s")
	const u = "http://127.0.0.1:8080/login?token=abc"
	if err := OpenBrowser(u); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(got)
		if err == nil {
			if string(b) != u {
				t.Errorf("browser got %q, want %q", b, u)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("browser script did not run")
		}
		time.Sleep(10 * time.Millisecond) // polling for the script's file
	}
}
