package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/popbridge/popbridge/store"
)

// The tests' "bridge" is a child process of the test binary (TestMain
// below): it holds the real database lock (store.Open, bbolt's flock),
// serves a control endpoint with Register and publishes control.json, as
// serve does.
const childEnv = "POPBRIDGE_INSTANCE_TEST_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir, os.Getenv(childEnv+"_HOLD") == "1"))
	}
	os.Exit(m.Run())
}

// runChild opens the database, then (after a line on stdin when hold)
// publishes its control endpoint and prints "ready"; it runs until stdin
// closes.
func runChild(dir string, hold bool) int {
	db, err := store.Open(filepath.Join(dir, "popbridge.db"), store.Options{})
	if err != nil {
		fmt.Println("child: ", err)
		return 1
	}
	defer db.Close()
	in := bufio.NewReader(os.Stdin)
	if hold {
		fmt.Println("locked")
		if _, err := in.ReadString('\n'); err != nil {
			return 0
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	info, err := Publish(dir, ln.Addr().String())
	if err != nil {
		fmt.Println("child:", err)
		return 1
	}
	var n atomic.Int64
	mux := http.NewServeMux()
	Register(mux, Auth(info), func(context.Context) (string, error) {
		return fmt.Sprintf("http://127.0.0.1:%d/console/login?token=one-time-%d", ln.Addr().(*net.TCPAddr).Port, n.Add(1)), nil
	})
	go http.Serve(ln, mux)
	fmt.Printf("ready %d\n", os.Getpid())
	io.Copy(io.Discard, in)
	Unpublish(dir, info)
	return 0
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startChild(t *testing.T, dir string, hold bool) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(exe, "-test.run=^$"), lines: make(chan string, 16)}
	c.cmd.Env = append(os.Environ(), childEnv+"="+dir)
	if hold {
		c.cmd.Env = append(c.cmd.Env, childEnv+"_HOLD=1")
	}
	c.stdin, _ = c.cmd.StdinPipe()
	out, _ := c.cmd.StdoutPipe()
	c.cmd.Stderr = os.Stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		c.stdin.Close()
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	return c
}

// expect waits for the child's next line and checks its prefix.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok || !strings.HasPrefix(l, prefix) {
			t.Fatalf("child said %q (open %v), want %q…", l, ok, prefix)
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatalf("child did not say %q", prefix)
	}
	return ""
}

type opened struct {
	mu   sync.Mutex
	urls []string
}

func (o *opened) open(u string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.urls = append(o.urls, u)
	return nil
}

func noServe(t *testing.T) func(context.Context) error {
	return func(context.Context) error {
		t.Error("Run served although a bridge is running")
		return nil
	}
}

// TestSecondStartOpensConsole: with a bridge running on the data dir, a
// second start does not serve; it opens the running bridge's console URL
// (a fresh one-time URL each time) and prints it.
func TestSecondStartOpensConsole(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir, false)
	c.expect(t, "ready")
	info, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		var out strings.Builder
		var o opened
		a, err := Run(context.Background(), Options{DataDir: dir, Serve: noServe(t), Open: o.open, Out: &out})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("http://%s/console/login?token=one-time-%d", info.Addr, i)
		if a == nil || a.URL != want || a.Info.PID != c.cmd.Process.Pid {
			t.Fatalf("Run = %+v, want the console URL %s of pid %d", a, want, c.cmd.Process.Pid)
		}
		if len(o.urls) != 1 || o.urls[0] != want {
			t.Errorf("browser opened %q, want %s", o.urls, want)
		}
		if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), fmt.Sprintf("pid %d", c.cmd.Process.Pid)) {
			t.Errorf("printed %q", out.String())
		}
	}
	// Autostart: no browser, a note.
	var out strings.Builder
	var o opened
	a, err := Run(context.Background(), Options{DataDir: dir, Serve: noServe(t), Open: o.open, Out: &out, Quiet: true})
	if err != nil || a == nil || a.URL != "" || len(o.urls) != 0 || !strings.Contains(out.String(), "already running") {
		t.Errorf("quiet Run = %+v, %v; opened %q; printed %q", a, err, o.urls, out.String())
	}
}

// TestRecoverAfterSIGKILL: a bridge killed with SIGKILL leaves
// control.json behind; the next start sees it is stale, serves (the
// kernel released the database lock) and replaces the file.
func TestRecoverAfterSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	dir := t.TempDir()
	c := startChild(t, dir, false)
	c.expect(t, "ready")
	old, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	if _, err := Read(dir); err != nil {
		t.Fatalf("control.json should outlive a SIGKILL: %v", err)
	}
	if _, err := Find(context.Background(), dir); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "has ended") {
		t.Fatalf("Find after SIGKILL = %v, want ErrNotRunning (pid ended)", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan *Info, 1)
	done := make(chan error, 1)
	go func() {
		a, err := Run(ctx, Options{DataDir: dir, Out: io.Discard, Serve: func(ctx context.Context) error {
			db, err := store.Open(filepath.Join(dir, "popbridge.db"), store.Options{})
			if err != nil {
				return err
			}
			defer db.Close()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			in, err := Publish(dir, ln.Addr().String())
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			Register(mux, Auth(in), nil)
			srv := &http.Server{Handler: mux}
			go srv.Serve(ln)
			served <- in
			<-ctx.Done()
			srv.Close()
			Unpublish(dir, in)
			return nil
		}})
		if a != nil {
			err = fmt.Errorf("attached to %+v instead of serving", a.Info)
		}
		done <- err
	}()
	var in *Info
	select {
	case in = <-served:
	case err := <-done:
		t.Fatalf("Run ended without serving: %v", err)
	}
	cur, err := Find(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cur.PID != os.Getpid() || cur.Token == old.Token || cur.Token != in.Token {
		t.Errorf("control.json after recovery = %+v, want this process (%d) with a new token", cur, os.Getpid())
	}
	// Its console: none in this test bridge.
	if _, err := ConsoleURL(context.Background(), cur); !errors.Is(err, ErrNoConsole) {
		t.Errorf("ConsoleURL without a console = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(File(dir)); !os.IsNotExist(err) {
		t.Errorf("control.json left after a clean stop: %v", err)
	}
}

// TestStartWaitsForStartingBridge: the data dir is locked by a bridge that
// has not published its control endpoint yet; the second start waits for
// it and then opens its console.
func TestStartWaitsForStartingBridge(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir, true)
	c.expect(t, "locked")
	out := &syncWriter{}
	var o opened
	done := make(chan *Attached, 1)
	go func() {
		a, err := Run(context.Background(), Options{DataDir: dir, Out: out, Open: o.open,
			Serve: func(context.Context) error {
				_, err := store.Open(filepath.Join(dir, "popbridge.db"), store.Options{Timeout: 50 * time.Millisecond})
				return err
			},
			Locked: func(err error) bool { return errors.Is(err, store.ErrLocked) },
		})
		if err != nil {
			t.Error(err)
		}
		done <- a
	}()
	out.waitFor(t, "waiting for it to answer")
	fmt.Fprintln(c.stdin, "go")
	c.expect(t, "ready")
	a := <-done
	if a == nil || !strings.Contains(a.URL, "/console/login?token=one-time-1") || len(o.urls) != 1 {
		t.Errorf("Run = %+v, opened %q", a, o.urls)
	}
}

// TestLockedWithoutBridge: a command holds the data dir and never serves
// a control endpoint: start says so after waiting.
func TestLockedWithoutBridge(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir, true)
	c.expect(t, "locked")
	_, err := Run(context.Background(), Options{DataDir: dir, Wait: 300 * time.Millisecond,
		Serve: func(context.Context) error {
			_, err := store.Open(filepath.Join(dir, "popbridge.db"), store.Options{Timeout: 50 * time.Millisecond})
			return err
		},
		Locked: func(err error) bool { return errors.Is(err, store.ErrLocked) },
	})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "import or migrate") {
		t.Errorf("Run = %v, want the lock error explained", err)
	}
}

// TestStaleRecycledPort: control.json names a live pid (this one) and an
// address where another server now answers 401: stale.
func TestStaleRecycledPort(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "who are you", http.StatusUnauthorized)
	}))
	defer srv.Close()
	os.WriteFile(File(dir), []byte(fmt.Sprintf(`{"addr":%q,"token":"old","pid":%d}`, srv.Listener.Addr().String(), os.Getpid())), 0o600)
	if _, err := Find(context.Background(), dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Find = %v, want ErrNotRunning", err)
	}
	// Nothing listening at all.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	os.WriteFile(File(dir), []byte(fmt.Sprintf(`{"addr":%q,"token":"old","pid":%d}`, addr, os.Getpid())), 0o600)
	if _, err := Find(context.Background(), dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Find with nothing listening = %v, want ErrNotRunning", err)
	}
	os.WriteFile(File(dir), []byte(`{"addr":`), 0o600)
	if _, err := Find(context.Background(), dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Find with a damaged file = %v, want ErrNotRunning", err)
	}
}

// TestOpenBrowserEnv: $BROWSER is honoured with %s.
func TestOpenBrowserEnv(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell script")
	}
	dir := t.TempDir()
	got := filepath.Join(dir, "url")
	script := filepath.Join(dir, "browser.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s' \"$2\" > "+got+".tmp && mv "+got+".tmp "+got+"\n"), 0o755)
	t.Setenv("BROWSER", "/nonexistent/browser:"+script+" --new-tab %s")
	const u = "http://127.0.0.1:8080/console/login?token=abc"
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

type syncWriter struct {
	mu  sync.Mutex
	b   strings.Builder
	new chan struct{}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.new != nil {
		close(w.new)
		w.new = nil
	}
	return w.b.Write(p)
}

func (w *syncWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		if strings.Contains(w.b.String(), s) {
			w.mu.Unlock()
			return
		}
		ch := make(chan struct{})
		w.new = ch
		w.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("never printed %q; got %q", s, w.b.String())
		}
	}
}
